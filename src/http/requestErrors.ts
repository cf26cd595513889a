// Failures before GraphQL runs (the body parser, mostly, and paths the server
// does not serve), answered in the same shape as GraphQL errors so every
// client error has extensions.code.
import type { ErrorRequestHandler, RequestHandler } from "express";
import { AppError } from "../errors.js";
import type { Logger } from "../logger.js";
import { LIMIT_ERROR_CODE } from "./limits.js";

interface HttpErrorLike {
  status?: unknown;
  type?: unknown;
  limit?: unknown;
}

export function requestErrorHandler(logger: Logger, bodySizeSetting: string): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const httpError = (error ?? {}) as HttpErrorLike;
    const status =
      typeof httpError.status === "number" && httpError.status >= 400 && httpError.status < 500 ? httpError.status : 500;
    let message = "Something went wrong on our side.";
    let code = status === 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST";
    if (error instanceof AppError) {
      message = error.message;
      code = error.code;
    } else if (httpError.type === "entity.too.large") {
      // A limit like the operation limits: named, with its value.
      message = `Request body size limit of ${bodySizeSetting} (${String(httpError.limit)} bytes) exceeded.`;
      code = LIMIT_ERROR_CODE;
    } else if (httpError.type === "entity.parse.failed") message = "Request body is not valid JSON.";
    else if (httpError.type === "charset.unsupported") message = "Request body must be UTF-8.";
    else if (httpError.type === "encoding.unsupported") message = "Request body encoding is not supported.";
    else if (status < 500) message = "The request could not be read.";
    // body-parser errors carry the raw body, which may hold a password: only
    // the message and stack are logged.
    if (status === 500) {
      const err = error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) };
      logger.error({ err }, "unexpected HTTP error");
    }
    res.status(error instanceof AppError ? 401 : status).json({ errors: [{ message, extensions: { code } }] });
  };
}

/**
 * Any path or method no route answers: 404 with a coded JSON error instead
 * of Express's HTML page, pointing at what the listener does serve (the
 * GraphQL endpoint, or /metrics on the metrics listener).
 */
export function notFoundHandler(endpointPath: string, endpoint = "GraphQL"): RequestHandler {
  return (req, res) => {
    res.status(404).json({
      errors: [
        {
          message: `Nothing is served at ${req.method} ${req.path.slice(0, 200)}. The ${endpoint} endpoint is ${endpointPath}.`,
          extensions: { code: "NOT_FOUND" },
        },
      ],
    });
  };
}

// The last stop of every error on its way to a client. Our own errors and
// Apollo's request-level errors pass through; Prisma's known errors are
// translated; everything else is masked as INTERNAL_SERVER_ERROR, so no stack,
// SQL or file path reaches the client. The request-logging plugin logs the
// masked ones in full with the request id (isUnexpectedError).
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { translatePrismaError } from "../db/prismaErrors.js";
import { AppError, internalError } from "../errors.js";
import { asBatchingLimitError, asTokenLimitError } from "./limits.js";

// Codes Apollo Server and graphql-js give errors about the request itself.
const REQUEST_ERROR_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "BAD_USER_INPUT",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

const APQ_CODES = new Set(["PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED"]);

function fromAppError(error: AppError, formatted: GraphQLFormattedError): GraphQLFormattedError {
  // `http` is Apollo's instruction for the response status, not for clients.
  const { http: _http, ...extensions } = error.extensions;
  return {
    message: error.message,
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions,
  };
}

/** The errors an error wraps, outermost first (GraphQLError.originalError, a few levels). */
function* wrapped(error: unknown): Generator<Error> {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    yield current;
    current = (current as { originalError?: unknown }).originalError;
  }
}

/** The AppError an error stands for, when it is one the client may see as is. */
function knownError(error: unknown): AppError | undefined {
  // Apollo wraps errors thrown outside resolvers (the context function) too,
  // and graphql-ws wraps what a subscription's stream throws without a path
  // (a database outage during a delivery check must still read as one).
  // (A resolver's error is the first one wrapped: what unwrapResolverError gives.)
  for (const current of wrapped(error)) if (current instanceof AppError) return current;
  for (const current of wrapped(error)) {
    const translated = translatePrismaError(current);
    if (translated) return translated;
  }
  return undefined;
}

/** The codes a client received, one per error (formatError gives every error one). */
export function clientCodes(errors: readonly { extensions?: { code?: unknown } }[]): string[] {
  return errors.map((error) => String(error.extensions?.code ?? "INTERNAL_SERVER_ERROR"));
}

/**
 * An error about the request itself: no path, and a request code, or no code
 * and no cause. A codeless error that wraps a thrown one is not: graphql-ws
 * wraps whatever a subscription's stream throws that way, and that is a fault
 * of ours, to be masked and logged.
 */
function isRequestError(formatted: GraphQLFormattedError, error: unknown): boolean {
  if (formatted.path) return false;
  const code = formatted.extensions?.code;
  if (code !== undefined) return REQUEST_ERROR_CODES.has(String(code));
  const cause = error instanceof GraphQLError ? error.originalError : undefined;
  return cause === undefined || cause === null || cause instanceof GraphQLError;
}

export function isUnexpectedError(formatted: GraphQLFormattedError, error: unknown): boolean {
  return !knownError(error) && !isRequestError(formatted, error);
}

/**
 * Apollo raises a few request errors with an HTTP 4xx status but no code (a
 * persisted query whose hash does not match, an unsupported persisted query
 * version); normalised, they would read as INTERNAL_SERVER_ERROR.
 */
function isCodelessClientError(error: unknown): boolean {
  if (!(error instanceof GraphQLError) || error.path || error.originalError || error.extensions.code !== undefined) return false;
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  return typeof status === "number" && status >= 400 && status < 500;
}

export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const known = knownError(error);
  if (known) return fromAppError(known, formatted);
  if (isCodelessClientError(error)) {
    const message = formatted.message.charAt(0).toUpperCase() + formatted.message.slice(1);
    return { message: message.endsWith(".") ? message : `${message}.`, extensions: { code: "BAD_REQUEST" } };
  }
  if (isRequestError(formatted, error)) {
    if (formatted.extensions?.code === "GRAPHQL_PARSE_FAILED") {
      const tokenLimit = asTokenLimitError(formatted);
      if (tokenLimit) return tokenLimit;
    }
    // An operationName the document does not define: Apollo's own code for it
    // is not one of the API's (ERRORS.md); it is a document error like any other.
    if (formatted.extensions?.code === "OPERATION_RESOLUTION_FAILURE") {
      return { message: formatted.message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } };
    }
    // Automatic persisted queries: a hash the server has not stored yet (the
    // client then sends the query with it), or APQ turned off. Their codes are
    // not among the API's, but their messages ("PersistedQueryNotFound",
    // "PersistedQueryNotSupported") are the protocol's signal: Apollo Client
    // matches the message or the code, Apollo Kotlin and iOS the message. So
    // the message stays exactly as it is, and the code is BAD_REQUEST.
    if (APQ_CODES.has(String(formatted.extensions?.code))) {
      return { message: formatted.message, extensions: { code: "BAD_REQUEST" } };
    }
    if (formatted.extensions?.code === "BAD_REQUEST") {
      const batching = asBatchingLimitError(formatted);
      if (batching) return batching;
    }
    // `http` is Apollo's instruction for the HTTP response (Apollo drops it
    // there); graphql-ws would send it as is.
    const { stacktrace: _stacktrace, http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions: { ...extensions, code: extensions.code ?? "GRAPHQL_VALIDATION_FAILED" } };
  }
  return fromAppError(internalError(), formatted);
}

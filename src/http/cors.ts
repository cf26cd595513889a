// CORS on the GraphQL endpoint, for the origins CORS_ORIGINS allows
// (origins.ts), and the same rule for the Origin of a WebSocket upgrade.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an
// allowed origin is answered here with 204 and never reaches Apollo; from any
// other origin, with 403 and no CORS header, so the browser never sends the
// request itself. Other requests from an allowed origin get
// Access-Control-Allow-Origin echoing it. Nothing here relaxes Apollo's CSRF
// prevention: a "simple" cross-site request (no preflight) is still refused
// by Apollo, whatever its origin.
import type { IncomingMessage } from "node:http";
import type { RequestHandler } from "express";
import type { OriginPolicy } from "./origins.js";

export const CORS_ALLOWED_METHODS = ["GET", "POST", "OPTIONS"] as const;

/**
 * Request headers a page may send: the GraphQL-over-HTTP ones, the bearer
 * token, Apollo's CSRF preflight headers and client-awareness headers, and a
 * request id to follow the request through the logs.
 */
export const CORS_ALLOWED_HEADERS = [
  "accept",
  "authorization",
  "content-type",
  "apollo-require-preflight",
  "x-apollo-operation-name",
  "apollographql-client-name",
  "apollographql-client-version",
  "x-request-id",
] as const;

/** Response headers a page may read besides the CORS-safelisted ones. */
export const CORS_EXPOSED_HEADERS = ["x-request-id", "www-authenticate"] as const;

/** How long a browser may reuse a preflight's answer (Chromium caps it at 2 hours). */
export const CORS_MAX_AGE_SECONDS = 7200;

export function corsMiddleware(policy: OriginPolicy): RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    // The answer depends on Origin: a cache must not hand one origin's answer to another.
    res.vary("Origin");
    if (origin === undefined) return next();
    const allowed = policy.allows(origin);
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (preflight) {
      if (!allowed) {
        res.status(403).json({
          errors: [{ message: `Origin ${origin.slice(0, 200)} is not allowed to call this API (CORS_ORIGINS).`, extensions: { code: "FORBIDDEN" } }],
        });
        return;
      }
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-allow-methods", CORS_ALLOWED_METHODS.join(", "));
      res.setHeader("access-control-allow-headers", CORS_ALLOWED_HEADERS.join(", "));
      res.setHeader("access-control-max-age", String(CORS_MAX_AGE_SECONDS));
      res.status(204).end();
      return;
    }
    if (allowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
    }
    next();
  };
}

/**
 * Whether a WebSocket upgrade may go ahead, by its Origin. Browsers always
 * send one, and a page cannot change it: an origin the list does not allow
 * is a page elsewhere trying to use the API with a token it holds. A page
 * served by this server itself (Origin naming the host the request is for)
 * is allowed. No Origin is not a browser page (a mobile app, a server,
 * graphql-ws in Node), and is allowed.
 */
export function webSocketOriginAllowed(policy: OriginPolicy, request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  return policy.allows(origin) || isSameHost(origin, request.headers.host);
}

function isSameHost(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const page = new URL(origin);
    return page.host === new URL(`${page.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

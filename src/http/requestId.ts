import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";

// A caller-supplied id is kept when it is short and plain, so a request can be
// followed across a proxy's logs and ours; otherwise a new one is made.
const ACCEPTABLE_ID = /^[\w.:-]{1,128}$/;

export function requestIdFrom(header: unknown): string {
  return typeof header === "string" && ACCEPTABLE_ID.test(header) ? header : randomUUID();
}

const requestScope = new AsyncLocalStorage<string>();

/**
 * The id of the HTTP request being handled, for code that is not handed the
 * request (Apollo's contextCreationDidFail hook, for one).
 */
export const currentRequestId = (): string | undefined => requestScope.getStore();

export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const id = requestIdFrom(req.headers["x-request-id"]);
  res.locals.requestId = id;
  res.setHeader("x-request-id", id);
  requestScope.run(id, next);
}

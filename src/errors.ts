// The error codes of the public API (shared/api/ERRORS.md), one constructor
// each. Resolvers, services and the policy layer throw these; formatError
// (src/http/formatError.ts) passes them through and masks everything else.
import { GraphQLError } from "graphql";

export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "BAD_USER_INPUT"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "SERVICE_UNAVAILABLE"
  | "INTERNAL_SERVER_ERROR";

export class AppError extends GraphQLError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
    this.code = code;
    this.name = "AppError";
  }
}

export const unauthenticated = (message = "You must be signed in to do that.") =>
  new AppError("UNAUTHENTICATED", message);

export const invalidCredentials = () => new AppError("UNAUTHENTICATED", "Wrong email or password.");

export const forbidden = (message = "You are not allowed to do that.") => new AppError("FORBIDDEN", message);

export const notFound = (what: string) => new AppError("NOT_FOUND", `${what} not found.`);

export const badUserInput = (message: string, field?: string) =>
  new AppError("BAD_USER_INPUT", message, field ? { field } : {});

export const conflict = (message: string, field?: string) =>
  new AppError("CONFLICT", message, field ? { field } : {});

export const rateLimited = (retryAfterSeconds: number) =>
  new AppError("RATE_LIMITED", `Too many attempts. Try again in ${retryAfterSeconds} seconds.`, {
    retryAfterSeconds,
  });

export const serviceUnavailable = () =>
  new AppError("SERVICE_UNAVAILABLE", "The database is unavailable right now. Try again shortly.");

export const internalError = () => new AppError("INTERNAL_SERVER_ERROR", "Something went wrong on our side.");

/** For non-null relations: a row that vanished (or became unreadable) mid-request. */
export function orNotFound<T>(row: T | null | undefined, what: string): T {
  if (row === null || row === undefined) throw notFound(what);
  return row;
}

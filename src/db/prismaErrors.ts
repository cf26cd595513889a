// Prisma's known errors, translated in one place. Services ask the narrow
// questions (isUniqueViolation); formatError asks toAppError for the rest.
import { AppError, conflict, notFound, serviceUnavailable } from "../errors.js";

interface PrismaLikeError {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  meta?: unknown;
  cause?: unknown;
}

const asPrismaError = (error: unknown): PrismaLikeError | undefined =>
  error !== null && typeof error === "object" ? (error as PrismaLikeError) : undefined;

/** The Prisma error code (P2002, P2025…) of an error, if it has one. */
export function prismaErrorCode(error: unknown): string | undefined {
  const code = asPrismaError(error)?.code;
  return typeof code === "string" ? code : undefined;
}

export function isUniqueViolation(error: unknown): boolean {
  return prismaErrorCode(error) === "P2002";
}

// P1001 can't reach, P1002 timed out, P1008 operation timed out, P1017
// closed, P2024 pool timeout, P2028 transaction API error (a transaction that
// could not start in time, or expired while a query hung on a dead
// connection; it was rolled back, so retrying is safe).
const UNAVAILABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028"]);
const CONNECTION_ERRORS =
  /ECONNREFUSED|Query read timeout|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|Connection terminated|connection timeout|timeout exceeded when trying to connect|Can't reach database|the database system is (starting up|shutting down)|terminating connection|Client has encountered a connection error/i;

/** True for errors that mean "the database cannot be reached right now". */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = asPrismaError(error), depth = 0; current && depth < 5; depth++) {
    if (typeof current.code === "string" && UNAVAILABLE_CODES.has(current.code)) return true;
    if (current.name === "PrismaClientInitializationError") return true;
    if (typeof current.message === "string" && CONNECTION_ERRORS.test(current.message)) return true;
    current = asPrismaError(current.cause);
  }
  return false;
}

/** The public error for a Prisma error, or undefined when it is not one we know. */
export function translatePrismaError(error: unknown): AppError | undefined {
  const prismaError = asPrismaError(error);
  if (!prismaError) return undefined;
  if (isDatabaseUnavailable(error)) return serviceUnavailable();
  switch (prismaError.code) {
    case "P2002":
      return conflict("That value is already taken.");
    case "P2025":
      return notFound("Record");
    case "P2003":
      return notFound("Related record");
    case "P2034":
      return conflict("The data changed while saving. Try again.");
    default:
      return undefined;
  }
}

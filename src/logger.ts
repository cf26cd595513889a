import { pino, type DestinationStream, type Logger } from "pino";
import type { Config } from "./config.js";

export type { Logger };

// Keys that must never reach a log line, at any depth pino checks. Nothing in
// the server logs these on purpose; this is the net under that promise.
const SECRET_KEYS = ["password", "passwordHash", "token", "refreshToken", "authorization", "cookie", "variables", "connectionParams"];
const REDACTED_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  ...SECRET_KEYS.map((key) => `*.*.${key}`),
  "req.headers.authorization",
  "req.headers.cookie",
];

// Error messages are the one place where a value can hide inside free text: a
// library may quote the arguments it was called with (Prisma does), or a
// header. These patterns cut such values out of a message or stack.
const SECRET_IN_TEXT: [RegExp, string][] = [
  [/\beyJ[\w-]+\.[\w-]+\.[\w-]*/g, "[redacted]"],
  [/\b(Bearer)\s+[^\s"',}]+/gi, "$1 [redacted]"],
  [/\b((?:password\w*|(?:refresh)?token|secret|authorization)"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}]+)/gi, "$1[redacted]"],
  [/(:\/\/[^:/@\s]+:)[^@/\s]+@/g, "$1[redacted]@"],
];

export function scrubText(text: string): string {
  let result = text;
  for (const [pattern, replacement] of SECRET_IN_TEXT) result = result.replace(pattern, replacement);
  return result;
}

/** Every string in a serialized error (message, stack, causes), scrubbed. */
function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return scrubText(value);
  if (!value || typeof value !== "object" || depth > 4) return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Prisma puts the failed call's arguments under meta: data, not diagnosis.
    if (key === "meta") continue;
    copy[key] = scrubValue(item, depth + 1);
  }
  return copy;
}

/** pino's error serializer, with secrets cut out of the text. */
const serializeError = (error: unknown): unknown =>
  scrubValue(error instanceof Error ? pino.stdSerializers.err(error) : error, 0);

/**
 * The server's logger: JSON lines on stdout (or `destination`), ISO times, no
 * pid/hostname, secrets redacted by key and scrubbed from error text.
 */
export function createLogger(config: Pick<Config, "logLevel">, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    base: undefined,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: serializeError, error: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}

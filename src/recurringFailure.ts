// A failure that repeats while a dependency is away (the database for the
// event-log poll, every second; Redis for each reconnect attempt) would fill
// the log with the same warning and stack. The first one is logged at warn,
// the repeats at debug with a count, and the recovery once at info.
import type { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export interface RecurringFailure {
  failed(error: unknown): void;
  /** Call on success: logs the recovery if anything had failed. */
  recovered(): void;
}

export function recurringFailure(logger: Logger, what: string, context: Record<string, unknown> = {}): RecurringFailure {
  let failures = 0;
  return {
    failed(error) {
      failures += 1;
      if (failures === 1) logger.warn({ ...context, err: error }, `${what} failed; retrying (repeats are logged at debug)`);
      else logger.debug({ ...context, err: error, failures }, `${what} failed again`);
    },
    recovered() {
      if (failures === 0) return;
      logger.info({ ...context, failures }, `${what} recovered`);
      failures = 0;
    },
  };
}

/** A Redis client's outages: ioredis emits "error" per failed attempt while away, "ready" once back. */
export function logRedisOutages(client: Redis, logger: Logger, clientName: string): void {
  const failures = recurringFailure(logger, "redis connection", { client: clientName });
  client.on("error", (error: Error) => failures.failed(error.message));
  client.on("ready", () => failures.recovered());
}

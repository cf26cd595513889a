// Realtime wiring for one server instance: the bus, the log tailer, replay for
// resumed subscriptions, and pruning of the log past its retention.
import { setImmediate } from "node:timers/promises";
import type { Config } from "../config.js";
import type { RawPrismaClient } from "../db/database.js";
import { badUserInput } from "../errors.js";
import type { Logger } from "../logger.js";
import { createMemoryBus, createRedisBus, type EventBus } from "./bus.js";
import { createLimiter, type Limiter } from "./delivery.js";
import type { EventCursors } from "./eventCursor.js";
import type { ChangeEvent } from "./events.js";
import { toChangeEvent, type CommittedEvent } from "./eventLog.js";
import { EventTailer, type EventFilter } from "./tailer.js";

const REPLAY_PAGE = 200;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
// A tiny retention (tests use seconds) must not turn pruning into a busy loop.
const PRUNE_MIN_EVERY_MS = 1000;

export interface Realtime {
  readonly tailer: EventTailer;
  /** Bounds the per-subscriber delivery checks running at once (delivery.ts). */
  readonly deliveryChecks: Limiter;
  /** Turns event ids into the opaque cursors clients see, and back. */
  readonly cursors: EventCursors;
  /** Called after a transaction with events commits. */
  published(events: CommittedEvent[]): void;
  /** Events matching filter with id > after, in order, read from the log. */
  replay(filter: EventFilter, after: bigint): AsyncGenerator<ChangeEvent>;
  /** BAD_USER_INPUT unless `after` names an event still in the log. */
  assertCursorRetained(after: bigint): Promise<void>;
  prune(): Promise<number>;
  close(): Promise<void>;
}

export async function createRealtime(
  prisma: RawPrismaClient,
  config: Pick<Config, "redisUrl" | "eventRetentionMs" | "eventPollIntervalMs" | "database">,
  logger: Logger,
  cursors: EventCursors,
): Promise<Realtime> {
  const bus: EventBus = config.redisUrl ? createRedisBus(config.redisUrl, logger) : createMemoryBus();
  const tailer = new EventTailer(prisma, bus, logger, config.eventPollIntervalMs);
  await tailer.start();

  // Pruning removes a prefix of the log (every id up to the newest expired
  // event), never rows in between: createdAt is the time a transaction began,
  // which is not in id order, and a hole in the middle would be a gap in a
  // replay. replay() relies on this.
  const prune = async () => {
    const cutoff = new Date(Date.now() - config.eventRetentionMs);
    const boundary = await prisma.event.findFirst({
      where: { createdAt: { lt: cutoff } },
      orderBy: { id: "desc" },
      select: { id: true },
    });
    if (!boundary) return 0;
    const { count } = await prisma.event.deleteMany({ where: { id: { lte: boundary.id } } });
    return count;
  };
  const pruneTimer = setInterval(() => {
    prune().catch((error: unknown) => logger.warn({ err: error }, "event log pruning failed"));
  }, Math.max(PRUNE_MIN_EVERY_MS, Math.min(PRUNE_EVERY_MS, config.eventRetentionMs)));
  pruneTimer.unref();
  await prune().catch((error: unknown) => logger.warn({ err: error }, "event log pruning failed"));

  const retentionText = describeDuration(config.eventRetentionMs);
  const cursorExpired = () =>
    badUserInput(
      `That cursor is older than the event log's retention (${retentionText}). Reload and subscribe without 'after'.`,
      "after",
    );

  return {
    tailer,
    cursors,
    deliveryChecks: createLimiter(deliveryConcurrency(config.database)),
    published(events) {
      const last = events.at(-1);
      if (last) bus.publish(last.id);
    },
    async *replay(filter, after) {
      // Every page reads from the row the previous one ended on (the cursor's
      // own row first) and must find it. Pruning only removes a prefix of the
      // log, so a row still present proves nothing after it is missing; a row
      // gone means the log was pruned past it mid-replay.
      for (let anchor = after; ; ) {
        const rows = await prisma.event.findMany({
          where: { OR: [{ id: anchor }, { id: { gt: anchor }, ...filter }] },
          orderBy: { id: "asc" },
          take: REPLAY_PAGE + 1,
        });
        if (rows[0]?.id !== anchor) throw cursorExpired();
        const page = rows.slice(1);
        for (const row of page) {
          // Let I/O in between events: on PGlite (in-process, its queries
          // resolve without ever reaching the event loop) a long replay would
          // otherwise hold the whole server, writers and pings included, until
          // it ends.
          await setImmediate();
          yield toChangeEvent(row);
        }
        const last = page.at(-1);
        if (!last || page.length < REPLAY_PAGE) return;
        anchor = last.id;
      }
    },
    async assertCursorRetained(after) {
      if (await prisma.event.findUnique({ where: { id: after }, select: { id: true } })) return;
      const oldest = await prisma.event.findFirst({ orderBy: { id: "asc" }, select: { id: true } });
      // Inside the retained log but not an event: not a cursor this server issued.
      if (oldest && after > oldest.id) throw badUserInput("That cursor is not valid.", "after");
      throw cursorExpired();
    },
    prune,
    async close() {
      clearInterval(pruneTimer);
      await tailer.stop();
      await bus.close();
    },
  };
}

/**
 * As many delivery checks (one statement each) as the pool has connections:
 * enough to keep it busy, and a request never finds more than that many
 * checks ahead of it in the pool's queue. PGlite runs one statement at a time
 * whatever the number.
 */
function deliveryConcurrency(database: Config["database"]): number {
  return database.kind === "postgres" ? database.poolMax : 2;
}

function describeDuration(ms: number): string {
  const units: [number, string][] = [[86_400_000, "day"], [3_600_000, "hour"], [60_000, "minute"], [1000, "second"]];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? "" : "s"}`;
  }
  return `${ms} ms`;
}

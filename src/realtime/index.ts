// Realtime wiring for one server instance: the bus, the log tailer, replay for
// resumed subscriptions, and pruning of the log past its retention.
import type { Config } from "../config.js";
import type { RawPrismaClient } from "../db/database.js";
import { badUserInput } from "../errors.js";
import type { Logger } from "../logger.js";
import { createMemoryBus, createRedisBus, type EventBus } from "./bus.js";
import type { ChangeEvent } from "./events.js";
import { toChangeEvent, type CommittedEvent } from "./eventLog.js";
import { EventTailer, type EventFilter } from "./tailer.js";

const REPLAY_PAGE = 200;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

export interface Realtime {
  readonly tailer: EventTailer;
  /** Called after a transaction with events commits. */
  published(events: CommittedEvent[]): void;
  /** Events matching filter with id > after, in order, read from the log. */
  replay(filter: EventFilter, after: bigint): AsyncGenerator<ChangeEvent>;
  /** BAD_USER_INPUT unless `after` names an event still in the log (or the log's end). */
  assertCursorRetained(after: bigint): Promise<void>;
  maxSubscriptionsPerConnection: number;
  prune(): Promise<number>;
  close(): Promise<void>;
}

export async function createRealtime(
  prisma: RawPrismaClient,
  config: Pick<Config, "redisUrl" | "eventRetentionMs" | "websocket">,
  logger: Logger,
  pollIntervalMs = 1000,
): Promise<Realtime> {
  const bus: EventBus = config.redisUrl ? createRedisBus(config.redisUrl, logger) : createMemoryBus();
  const tailer = new EventTailer(prisma, bus, logger, pollIntervalMs);
  await tailer.start();

  const prune = async () => {
    const cutoff = new Date(Date.now() - config.eventRetentionMs);
    const { count } = await prisma.event.deleteMany({ where: { createdAt: { lt: cutoff } } });
    return count;
  };
  const pruneTimer = setInterval(() => {
    prune().catch((error: unknown) => logger.warn({ err: error }, "event log pruning failed"));
  }, Math.min(PRUNE_EVERY_MS, config.eventRetentionMs));
  pruneTimer.unref();
  await prune().catch((error: unknown) => logger.warn({ err: error }, "event log pruning failed"));

  const retentionText = describeDuration(config.eventRetentionMs);

  return {
    tailer,
    maxSubscriptionsPerConnection: config.websocket.maxSubscriptions,
    published(events) {
      const last = events.at(-1);
      if (last) bus.publish(last.id);
    },
    async *replay(filter, after) {
      for (let cursor = after; ; ) {
        const rows = await prisma.event.findMany({
          where: { id: { gt: cursor }, ...filter },
          orderBy: { id: "asc" },
          take: REPLAY_PAGE,
        });
        for (const row of rows) yield toChangeEvent(row);
        const last = rows.at(-1);
        if (!last || rows.length < REPLAY_PAGE) return;
        cursor = last.id;
      }
    },
    async assertCursorRetained(after) {
      if (after === 0n) return;
      const [exact, newest] = await Promise.all([
        prisma.event.findUnique({ where: { id: after }, select: { id: true } }),
        prisma.event.findFirst({ orderBy: { id: "desc" }, select: { id: true } }),
      ]);
      if (exact) return;
      if (newest && after > newest.id) throw badUserInput("That cursor is not valid.", "after");
      throw badUserInput(
        `That cursor is older than the event log's retention (${retentionText}). Reload and subscribe without 'after'.`,
        "after",
      );
    },
    prune,
    async close() {
      clearInterval(pruneTimer);
      await tailer.stop();
      await bus.close();
    },
  };
}

function describeDuration(ms: number): string {
  const units: [number, string][] = [[86_400_000, "day"], [3_600_000, "hour"], [60_000, "minute"], [1000, "second"]];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? "" : "s"}`;
  }
  return `${ms} ms`;
}

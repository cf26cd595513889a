// Realtime wiring for one server instance: the bus, the log tailer, replay for
// resumed subscriptions, and pruning of the log past its retention (run as a
// periodic job, src/jobs/index.ts).
import { setImmediate } from "node:timers/promises";
import type { Config } from "../config.js";
import type { RawPrismaClient } from "../db/database.js";
import { badUserInput } from "../errors.js";
import type { Logger } from "../logger.js";
import { createMemoryBus, createRedisBus, type EventBus } from "./bus.js";
import type { GraphQLContext } from "../context.js";
import { UncompilableRule } from "../policy/compiledRules.js";
import { compileSubscriptionRules, createBatchedAudience, type Audience, type AudienceStats } from "./audience.js";
import { createLimiter, readableEvent, type Limiter } from "./delivery.js";
import type { EventCursors } from "./eventCursor.js";
import type { ChangeEvent, DeliveredEvent } from "./events.js";
import {
  afterPosition,
  LOG_ORDER,
  LOG_ORDER_NEWEST_FIRST,
  positionOf,
  readHorizon,
  toChangeEvent,
  type CommittedEvent,
  type LogPosition,
} from "./eventLog.js";
import { createDirectFanOut, type FanOutObserver, type ForegroundWork } from "./multiplex.js";
import { createSubscribeCheck, type SubscribeTarget } from "./subscribeCheck.js";
import { EventTailer, type EventFilter, type TailedEvent } from "./tailer.js";

const REPLAY_PAGE = 200;

export interface Realtime {
  readonly tailer: EventTailer;
  /** Bounds the per-subscriber delivery checks running at once (delivery.ts). */
  readonly deliveryChecks: Limiter;
  /**
   * What the subscriber of `context` receives of the event, or undefined when
   * they may not receive it: decided once for the event's whole audience
   * (audience.ts), or per subscriber when the rules could not be compiled.
   */
  deliver(tailed: TailedEvent, context: GraphQLContext): Promise<DeliveredEvent | undefined>;
  /**
   * Whether the subscriber of `context` may read the space or list now: the
   * check when a subscription starts, decided for every subscriber asking in
   * the same turn of the event loop at once (subscribeCheck.ts).
   */
  readable(target: SubscribeTarget, context: GraphQLContext): Promise<boolean>;
  /** What batched delivery decisions have cost so far (for metrics and benchmarks). */
  readonly fanOutStats: Readonly<AudienceStats>;
  /** Turns event ids into the opaque cursors clients see, and back. */
  readonly cursors: EventCursors;
  /** Called after a transaction with events commits. */
  published(events: CommittedEvent[]): void;
  /** Events matching filter after `after`, in log order, read from the final part of the log. */
  replay(filter: EventFilter, after: LogPosition): AsyncGenerator<ChangeEvent>;
  /** Where the event a cursor names stands in the log; BAD_USER_INPUT once it has been pruned. */
  cursorPosition(eventId: bigint): Promise<LogPosition>;
  /**
   * Whether the list still exists, whoever may read it. Delivery asks only to
   * tell a deleted todo's list that is gone (its rule as it was applies) from
   * one the subscriber may not read now (delivery.ts).
   */
  listExists(listId: string): Promise<boolean>;
  prune(): Promise<number>;
  close(): Promise<void>;
}

export async function createRealtime(
  prisma: RawPrismaClient,
  config: Pick<Config, "redisUrl" | "eventRetentionMs" | "eventPollIntervalMs" | "database">,
  logger: Logger,
  cursors: EventCursors,
  options: {
    /** What a large fan-out gives way to between its slices (the HTTP requests executing here). */
    foreground?: ForegroundWork;
    /** Told of every event's direct fan-out when its last frame is written (the metrics). */
    fanOutObserver?: FanOutObserver;
  } = {},
): Promise<Realtime> {
  const bus: EventBus = config.redisUrl ? createRedisBus(config.redisUrl, logger) : createMemoryBus();
  const tailer = new EventTailer(prisma, bus, logger, config.eventPollIntervalMs);
  await tailer.start();

  // Pruning removes a prefix of the log (every event up to the newest expired
  // one, in log order), never rows in between: createdAt is the time a
  // transaction began, which is not in log order, and a hole in the middle
  // would be a gap in a replay. replay() relies on this. Only the final part
  // of the log (below the horizon) is pruned, never rows a tailer may not
  // have passed yet.
  const prune = async () => {
    const cutoff = new Date(Date.now() - config.eventRetentionMs);
    const horizon = await readHorizon(prisma);
    const boundary = await prisma.event.findFirst({
      where: { createdAt: { lt: cutoff }, txid: { lt: horizon } },
      orderBy: LOG_ORDER_NEWEST_FIRST,
      select: { id: true, txid: true },
    });
    if (!boundary) return 0;
    const { count } = await prisma.event.deleteMany({ where: { NOT: afterPosition(positionOf(boundary)) } });
    return count;
  };

  const batched = (() => {
    try {
      return createBatchedAudience(prisma, compileSubscriptionRules());
    } catch (error) {
      if (!(error instanceof UncompilableRule)) throw error;
      // Correct either way: every subscriber then reads through its own policy client.
      logger.warn({ err: error }, "subscription rules not compiled: each event is checked per subscriber");
      return undefined;
    }
  })();
  // One decision per shared event, kept as long as some subscription still
  // holds the event (a WeakMap: nothing to expire by hand).
  const decisions = new WeakMap<TailedEvent, Promise<Audience>>();
  const deliveryChecks = createLimiter(deliveryConcurrency(config.database));
  const decisionFor = (tailed: TailedEvent): Promise<Audience> => {
    let decision = decisions.get(tailed);
    if (!decision) {
      decision = batched!.decide(tailed.event, tailed.audience);
      decisions.set(tailed, decision);
    }
    return decision;
  };
  // Only decided events can be sent directly: without compiled rules every
  // subscription stays on its own path.
  if (batched) tailer.setDirectFanOut(createDirectFanOut(decisionFor, logger, options.foreground, options.fanOutObserver));

  const subscribeCheck = createSubscribeCheck(batched && ((model, id, viewers) => batched.readersOf(model, id, viewers)));

  const retentionText = describeDuration(config.eventRetentionMs);
  const cursorExpired = () =>
    badUserInput(
      `That cursor is older than the event log's retention (${retentionText}). Reload and subscribe without 'after'.`,
      "after",
    );

  return {
    tailer,
    cursors,
    deliveryChecks,
    fanOutStats: batched?.stats ?? { events: 0, sqlStatements: 0 },
    async deliver(tailed, context) {
      const viewerId = context.viewer?.id;
      if (viewerId === undefined) return undefined;
      if (!batched || !tailed.audience.has(viewerId)) return deliveryChecks.run(() => readableEvent(tailed.event, context));
      return (await decisionFor(tailed)).get(viewerId);
    },
    readable: (target, context) => subscribeCheck.readable(target, context),
    published(events) {
      if (events.length > 0) bus.publish();
    },
    async *replay(filter, after) {
      // Only below the horizon, the final part of the log: the live side of
      // the stream (stream.ts) delivers the rest, from where its tailer stood.
      const horizon = await readHorizon(prisma);
      // Every page reads from the row the previous one ended on (the cursor's
      // own row first) and must find it. Pruning only removes a prefix of the
      // log, so a row still present proves nothing after it is missing; a row
      // gone means the log was pruned past it mid-replay.
      for (let anchor = after; ; ) {
        const rows = await prisma.event.findMany({
          where: { OR: [{ id: anchor.id }, { AND: [afterPosition(anchor), filter, { txid: { lt: horizon } }] }] },
          orderBy: LOG_ORDER,
          take: REPLAY_PAGE + 1,
        });
        if (rows[0]?.id !== anchor.id) throw cursorExpired();
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
        anchor = positionOf(last);
      }
    },
    async cursorPosition(eventId) {
      // Cursors are authenticated (eventCursor.ts), so a missing event was
      // pruned since, unless its id is above every id the log holds.
      const row = await prisma.event.findUnique({ where: { id: eventId }, select: { id: true, txid: true } });
      if (row) return positionOf(row);
      // Ids come from a sequence: one above every id in the log was never an event.
      const newest = await prisma.event.aggregate({ _max: { id: true } });
      if (newest._max.id !== null && eventId > newest._max.id) throw badUserInput("That cursor is not valid.", "after");
      throw cursorExpired();
    },
    listExists: async (listId) => (await prisma.list.count({ where: { id: listId } })) > 0,
    prune,
    async close() {
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

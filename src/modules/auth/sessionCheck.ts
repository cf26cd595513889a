// Is the session behind a token still active? Asked on every authenticated
// HTTP request and at every WebSocket's connection_init, and answered from
// memory whenever it can be:
//   - an instance that ends a session announces it on a channel (Redis when
//     REDIS_URL is set, so every instance hears it at once); its sessions are
//     marked ended and the sockets opened with them are closed (4403);
//   - an active session is trusted for SESSION_CACHE_TTL (at most 4s), then
//     read again: one statement per session per TTL, not per request. That
//     bounds how long a lost announcement (Redis down) can go unnoticed;
//   - the sessions of open sockets are re-read together every TTL, for the
//     same reason, so a socket of an ended session is closed within 5s even
//     when the announcement never arrives.
// An ended session never becomes active again, so "ended" is remembered for
// good (up to a bound on memory): replaying an ended token costs no statement.
// The sessions asked for within one turn of the event loop are read together
// in one statement: when thousands of sockets connect at once (a deploy, a
// network coming back), their connection_init messages arrive in the same
// turns, and each read on its own was a statement, and about 60 KB of
// garbage in the client, per socket.
import DataLoader from "dataloader";
import type { RawPrismaClient } from "../../db/database.js";
import { outsideQueryStats } from "../../db/queryStats.js";
import { unauthenticated } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { createMemoryChannel, createRedisChannel, type Channel } from "../../realtime/bus.js";
import { recurringFailure } from "../../recurringFailure.js";

const CHANNEL = "todo-graphql:sessions-ended";
/** lastUsedAt is written at most this often per session, on the first check after it. */
export const TOUCH_EVERY_MS = 60_000;
/** Sessions remembered per instance; the oldest are forgotten first (and read again when needed). */
const MAX_REMEMBERED = 100_000;
/** Ids per statement when the sessions of open sockets are re-read. */
const SWEEP_CHUNK = 1000;

export const SESSION_ENDED_MESSAGE = "This session has ended. Sign in again.";

type Known = { ended: true } | { ended: false; userId: string; until: number };

export interface SessionCheck {
  /** Throws UNAUTHENTICATED unless the session is active and belongs to `userId`. */
  assertActive(userId: string, sessionId: string): Promise<void>;
  /** Calls onEnded once when the session ends, on this instance or another. Returns the way to stop watching. */
  watch(sessionId: string, onEnded: () => void): () => void;
  /** Tells every instance these sessions have ended (after the transaction that ended them has committed). */
  announceEnded(sessionIds: readonly string[]): void;
  close(): Promise<void>;
}

export function createSessionCheck(
  prisma: RawPrismaClient,
  options: { cacheTtlMs: number; redisUrl: string | undefined },
  logger: Logger,
): SessionCheck {
  const channel: Channel = options.redisUrl
    ? createRedisChannel(options.redisUrl, CHANNEL, logger, "sessions ")
    : createMemoryChannel();
  const known = new Map<string, Known>();
  const loading = new Map<string, Promise<Known>>();
  const watchers = new Map<string, Set<() => void>>();

  const remember = (sessionId: string, state: Known) => {
    // A read that started before the session ended must not bring it back.
    if (known.get(sessionId)?.ended && !state.ended) return;
    known.delete(sessionId); // re-inserted last: Map order is the forgetting order
    known.set(sessionId, state);
    if (known.size > MAX_REMEMBERED) known.delete(known.keys().next().value as string);
  };

  const markEnded = (sessionIds: Iterable<string>) => {
    for (const sessionId of sessionIds) {
      remember(sessionId, { ended: true });
      const callbacks = watchers.get(sessionId);
      watchers.delete(sessionId);
      for (const callback of callbacks ?? []) callback();
    }
  };

  channel.onMessage((message) => {
    try {
      const ids: unknown = JSON.parse(message);
      if (Array.isArray(ids)) markEnded(ids.filter((id): id is string => typeof id === "string"));
    } catch {
      logger.warn("ignored a malformed message on the sessions channel");
    }
  });

  const touch = (sessionIds: string[]) => {
    prisma.session
      .updateMany({ where: { id: { in: sessionIds }, endedAt: null }, data: { lastUsedAt: new Date() } })
      .catch((error: unknown) => logger.warn({ err: error, sessionIds }, "could not record sessions' lastUsedAt"));
  };

  /** Reads the sessions in one statement, remembers what it found, and touches the ones last used long ago. */
  const readMany = async (sessionIds: readonly string[]): Promise<Known[]> => {
    const rows = await prisma.session.findMany({
      where: { id: { in: [...sessionIds] } },
      select: { id: true, userId: true, endedAt: true, expiresAt: true, lastUsedAt: true },
    });
    const byId = new Map(rows.map((row) => [row.id, row]));
    const now = Date.now();
    const lastUsedLongAgo: string[] = [];
    const states = sessionIds.map((sessionId) => {
      const row = byId.get(sessionId);
      const state: Known =
        !row || row.endedAt !== null || row.expiresAt.getTime() <= now
          ? { ended: true }
          : { ended: false, userId: row.userId, until: now + options.cacheTtlMs };
      if (row && !state.ended && now - row.lastUsedAt.getTime() >= TOUCH_EVERY_MS) lastUsedLongAgo.push(sessionId);
      remember(sessionId, state);
      return known.get(sessionId) ?? state;
    });
    if (lastUsedLongAgo.length > 0) touch(lastUsedLongAgo);
    return states;
  };

  // The sessions asked for within one turn of the event loop, read together
  // (at most SWEEP_CHUNK a statement). Scheduled with setImmediate, not
  // DataLoader's default microtask: the sockets whose messages arrive in the
  // same turn each run their callback in it before the read starts. Shared by
  // every request waiting on it: no request's statement count (queryStats)
  // has it. Not cached here: `known` and `loading` are the cache.
  const reads = new DataLoader<string, Known>((sessionIds) => outsideQueryStats(() => readMany(sessionIds)), {
    cache: false,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
    maxBatchSize: SWEEP_CHUNK,
  });

  /** One read per session at a time, however many requests are waiting for it. */
  const load = (sessionId: string): Promise<Known> => {
    let pending = loading.get(sessionId);
    if (!pending) {
      pending = reads.load(sessionId).finally(() => loading.delete(sessionId));
      loading.set(sessionId, pending);
    }
    return pending;
  };

  // The sessions of open sockets, re-read together.
  const sweepFailures = recurringFailure(logger, "re-reading the sessions of open sockets");
  let sweeping = false;
  const sweep = async () => {
    if (sweeping || watchers.size === 0) return;
    sweeping = true;
    try {
      const ids = [...watchers.keys()];
      for (let start = 0; start < ids.length; start += SWEEP_CHUNK) {
        const chunk = ids.slice(start, start + SWEEP_CHUNK);
        const now = new Date();
        const active = await prisma.session.findMany({
          where: { id: { in: chunk }, endedAt: null, expiresAt: { gt: now } },
          select: { id: true, userId: true },
        });
        const stillActive = new Set(active.map((row) => row.id));
        for (const row of active) remember(row.id, { ended: false, userId: row.userId, until: now.getTime() + options.cacheTtlMs });
        markEnded(chunk.filter((id) => !stillActive.has(id)));
      }
      sweepFailures.recovered();
    } catch (error) {
      // Nothing can end a session while the database is away, either.
      sweepFailures.failed(error);
    } finally {
      sweeping = false;
    }
  };
  const sweepTimer = setInterval(() => void sweep(), Math.max(250, options.cacheTtlMs || 1000));
  sweepTimer.unref();

  return {
    async assertActive(userId, sessionId) {
      let state = known.get(sessionId);
      if (!state || (!state.ended && state.until <= Date.now())) state = await load(sessionId);
      if (state.ended || state.userId !== userId) throw unauthenticated(SESSION_ENDED_MESSAGE);
    },
    watch(sessionId, onEnded) {
      let callbacks = watchers.get(sessionId);
      if (!callbacks) watchers.set(sessionId, (callbacks = new Set()));
      let called = false;
      const once = () => {
        if (called) return;
        called = true;
        onEnded();
      };
      callbacks.add(once);
      // Ended between the check and the watch: tell at once.
      if (known.get(sessionId)?.ended) markEnded([sessionId]);
      return () => {
        callbacks.delete(once);
        if (callbacks.size === 0 && watchers.get(sessionId) === callbacks) watchers.delete(sessionId);
      };
    },
    announceEnded(sessionIds) {
      if (sessionIds.length === 0) return;
      // Delivered here at once, and to the other instances through Redis.
      channel.publish(JSON.stringify(sessionIds));
    },
    async close() {
      clearInterval(sweepTimer);
      await channel.close();
    },
  };
}

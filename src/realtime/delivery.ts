// Decides, for one subscriber and one event, whether the event may be
// delivered, by reading through that subscriber's own policy-bound client in a
// fresh context (new loaders: no row cached from an earlier event). This is
// the per-viewer path: live events are decided for all their subscribers at
// once (audience.ts), which must agree with this one; this path decides when
// the rules cannot be compiled, and is the oracle the batched one is tested
// against (tests/realtime/audience.test.ts).
//
// The rules, at delivery time (not at the time of the change):
// - the subscriber must still be a member of the event's space: after removal
//   no subscription delivers anything more from it (shared/api/ACCESS.md);
// - CREATED/UPDATED: the row must be readable now, and is delivered as it is
//   now. A row deleted since is not readable: its DELETED event follows;
// - DELETED: the row is gone. A todo's deletion is checked against its list
//   as the list is now, while the list exists: a list that became private
//   since hides it (shared/api/ACCESS.md, Subscriptions), one that became
//   readable shows it. Only when the list is gone too (and for a list's own
//   deletion) is the list rule applied to the owner and privacy the list had
//   at the change (snapshotted in the event).
//
// One statement per subscriber and event: the membership condition rides in
// the row's own read (the policy client ANDs its read filter onto it) instead
// of a second statement for the space.
import type { GraphQLContext } from "../context.js";
import type { ChangeEvent, DeliveredEvent } from "./events.js";

export async function readableEvent(event: ChangeEvent, context: GraphQLContext): Promise<DeliveredEvent | undefined> {
  const viewer = context.viewer;
  if (!viewer) return undefined;
  // The event's nested fields resolve through these same fresh loaders.
  const { db, loaders } = context.fresh();

  // Still a member of the event's space: the list rule alone would let the
  // owner of a list read it after leaving the space.
  const inSpace = { spaceId: event.spaceId, space: { members: { some: { userId: viewer.id } } } };
  if (event.kind === "DELETED") {
    if (!(await loaders.space.load(event.spaceId))) return undefined;
    if (event.subject === "TODO") {
      const list = await db.list.findFirst({ where: { id: event.listId, ...inSpace }, select: { id: true } });
      if (list) return { ...event, todo: null, list: null };
      // Not readable now: hidden, unless the list is gone as well.
      if (await context.realtime.listExists(event.listId)) return undefined;
    }
    const listReadableThen = event.listOwnerId === viewer.id || !event.listPrivate;
    return listReadableThen ? { ...event, todo: null, list: null } : undefined;
  }
  if (event.subject === "TODO") {
    if (!event.todoId) return undefined;
    const todo = await db.todo.findFirst({ where: { id: event.todoId, list: inSpace } });
    if (!todo) return undefined;
    return { ...event, todo, list: null };
  }
  const list = await db.list.findFirst({ where: { id: event.listId, ...inSpace } });
  if (!list) return undefined;
  return { ...event, todo: null, list };
}

/**
 * Runs at most `max` checks at a time, the others waiting in arrival order.
 *
 * One event reaches every subscriber of a space at once, and each check is one
 * statement: with thousands of subscribers, unbounded checks would put
 * thousands of statements in the connection pool's queue in one go, and a
 * mutation arriving then would wait behind all of them for a connection (long
 * enough for its transaction to give up). Bounded, the queue ahead of it is
 * never longer than the pool.
 */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

export function createLimiter(max: number): Limiter {
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    const next = queue.shift();
    // The slot passes straight to the next task: `active` stays as it is.
    if (next) next();
    else active--;
  };
  return {
    async run(task) {
      if (active < max) active++;
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await task();
      } finally {
        release();
      }
    },
    get waiting() {
      return queue.length;
    },
  };
}

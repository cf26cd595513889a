// The access check when a subscription starts: may the subscriber read the
// space (spaceActivity) or the list (todoChanged) now? NOT_FOUND otherwise
// (resolvers.ts).
//
// Asked by thousands of subscribers at once when their sockets connect
// together (a deploy, a network coming back), it is decided for many of them
// in one statement, as live events are (audience.ts): the checks asked
// within one turn of the event loop are grouped by space or list, each
// group's row is loaded once with what its read rule reads, and each
// subscriber is decided in memory from the same compiled rules. One
// statement per subscriber was also about 60 KB of garbage per subscriber in
// the client, made while the connections' burst waited on the pool: garbage
// that lived long enough to be promoted and left the heap fragmented.
//
// Without compiled rules (audience.ts could not compile them) every check
// reads through the subscriber's own policy client: slower, the same answer
// (tests/realtime/audience.test.ts compares the two).
import type { GraphQLContext } from "../context.js";
import { outsideQueryStats } from "../db/queryStats.js";
import type { BatchedAudience } from "./audience.js";

export interface SubscribeTarget {
  model: "space" | "list";
  id: string;
}

export interface SubscribeCheck {
  /** Whether the viewer of `context` may read the target now (false without a viewer). */
  readable(target: SubscribeTarget, context: GraphQLContext): Promise<boolean>;
}

type Decide = BatchedAudience["readersOf"];

interface Group {
  target: SubscribeTarget;
  /** Each viewer asking, with every check of theirs waiting (a viewer may subscribe twice at once). */
  waiting: Map<string, { resolve: (readable: boolean) => void; reject: (error: unknown) => void }[]>;
}

export function createSubscribeCheck(readersOf: Decide | undefined): SubscribeCheck {
  if (!readersOf) return { readable: readablePerViewer };
  const decide = readersOf;
  const queued = new Map<string, Group>();

  const decideQueued = () => {
    const groups = [...queued.values()];
    queued.clear();
    for (const { target, waiting } of groups) {
      // Shared by every subscriber of the group: no operation's statement count (queryStats) has it.
      outsideQueryStats(() => decide(target.model, target.id, new Set(waiting.keys()))).then(
        (readers) => {
          for (const [viewerId, checks] of waiting) for (const check of checks) check.resolve(readers.has(viewerId));
        },
        (error: unknown) => {
          for (const checks of waiting.values()) for (const check of checks) check.reject(error);
        },
      );
    }
  };

  return {
    readable(target, context) {
      const viewerId = context.viewer?.id;
      if (viewerId === undefined) return Promise.resolve(false);
      // setImmediate, not a microtask: the sockets whose messages arrive in
      // the same turn each run their callback in it before the group is read.
      if (queued.size === 0) setImmediate(decideQueued);
      const key = `${target.model} ${target.id}`;
      let group = queued.get(key);
      if (!group) queued.set(key, (group = { target, waiting: new Map() }));
      const checks = group.waiting.get(viewerId) ?? [];
      group.waiting.set(viewerId, checks);
      return new Promise((resolve, reject) => checks.push({ resolve, reject }));
    },
  };
}

/**
 * Through the viewer's own policy client, in a context of its own: the
 * subscription's context lives as long as the subscription, and a client
 * made in it would stay with it, unused, through every event. One row by
 * id, its id only.
 */
async function readablePerViewer(target: SubscribeTarget, context: GraphQLContext): Promise<boolean> {
  if (!context.viewer) return false;
  const { db } = context.fresh();
  const where = { where: { id: target.id }, select: { id: true } } as const;
  const row = target.model === "space" ? await db.space.findFirst(where) : await db.list.findFirst(where);
  return row !== null;
}

// Decides one event for many subscribers at once: which viewers may receive
// it, and the row they receive, at a number of statements that does not grow
// with the number of viewers.
//
// The rule is the per-viewer one of delivery.ts (readableEvent), built from
// the same rules table (src/policy/rules.ts) instead of restated:
// - the viewer may read the space now (a member: after removal nothing more
//   is delivered from it), and
// - CREATED/UPDATED: may read the row now (the todo or the list, by its read
//   rule), which is delivered as it is now;
// - DELETED todo whose list still exists: may read that list now;
// - DELETED list, or todo whose list is gone: the list rule applied to the
//   owner and privacy the list had at the change (kept in the event), with
//   the space's memberships as they are now.
//
// Each rule is compiled once (compiledRules.ts); per event the row is loaded
// once, and every candidate is decided in memory. The candidates'
// memberships the rule tests are kept between events (relationCache.ts) and
// used only while the space's membership version, loaded with the row after
// the event committed, has not moved: a removal committed before an event
// always revokes it, as if the memberships were read with every event.
//
// Every viewer allowed gets the same DeliveredEvent object: what depends on
// the row alone can then be computed once for all of them (execution.ts).
import type { RawPrismaClient } from "../db/database.js";
import type { List, Todo } from "../generated/prisma/client.js";
import { withQueryStats } from "../db/queryStats.js";
import {
  allOf,
  allowedAmong,
  compileReadRule,
  compileWhere,
  includeFor,
  rowsToFill,
  sentinelViewer,
  type RuleExpr,
} from "../policy/compiledRules.js";
import { relations, rules, type ModelName } from "../policy/rules.js";
import type { ChangeEvent, DeliveredEvent } from "./events.js";
import { createRelationCache } from "./relationCache.js";

/**
 * The viewers who may receive an event, and what they receive: the same
 * DeliveredEvent for every one of them. Over the set of viewers allowed, not
 * a map copied from it: at 10,000 viewers, the copy was a tenth of the
 * decision's time.
 */
export class Audience {
  constructor(
    private readonly viewers: ReadonlySet<string>,
    private readonly delivered: DeliveredEvent | undefined,
  ) {}
  /** What the viewer receives, or undefined when they may not receive the event. */
  get(viewerId: string): DeliveredEvent | undefined {
    return this.viewers.has(viewerId) ? this.delivered : undefined;
  }
  get size(): number {
    return this.viewers.size;
  }
  keys(): Iterable<string> {
    return this.viewers;
  }
}

const NOBODY = new Audience(new Set(), undefined);

export interface AudienceStats {
  /** Events decided (one decision may cover thousands of viewers). */
  events: number;
  /** SQL statements those decisions sent. */
  sqlStatements: number;
}

export interface BatchedAudience {
  /** `viewers`: the candidates. A set handed again for a later event (a tailer's audience) costs that event nothing per viewer until it changes. */
  decide(event: ChangeEvent, viewers: ReadonlySet<string> | readonly string[]): Promise<Audience>;
  /**
   * Of `viewers`, those who may read the space or list now, by its read rule
   * alone: the check when a subscription starts (subscribeCheck.ts), for
   * many viewers in one statement. Not counted in `stats`, which are the
   * events'.
   */
  readersOf(model: "space" | "list", id: string, viewers: ReadonlySet<string>): Promise<ReadonlySet<string>>;
  readonly stats: Readonly<AudienceStats>;
}

type Row = Record<string, unknown>;

interface CompiledSubscriptionRules {
  /** A todo event's: the todo's read rule, and its space readable. */
  todo: RuleExpr;
  /** A list event's: the list's read rule, and its space readable. */
  list: RuleExpr;
  /** The space's read rule. */
  space: RuleExpr;
  /** The list's read rule alone: what subscribing to its todos asks (todoChanged), as the policy client's read of the list does. */
  listRead: RuleExpr;
}

/** The subscription rules, compiled from rules.ts; throws UncompilableRule when they cannot be. */
export function compileSubscriptionRules(): CompiledSubscriptionRules {
  const spaceReadable = rules.space.read(sentinelViewer);
  return {
    todo: allOf(compileReadRule("todo"), compileWhere("todo", { list: { space: spaceReadable } })),
    list: allOf(compileReadRule("list"), compileWhere("list", { space: spaceReadable })),
    space: compileReadRule("space"),
    listRead: compileReadRule("list"),
  };
}

export function createBatchedAudience(prisma: RawPrismaClient, compiled: CompiledSubscriptionRules): BatchedAudience {
  // A deleted list is decided on a row made from the event: only its space
  // can be loaded for it, so its rule may follow no other relation.
  const listRelations = Object.keys(includeFor(compiled.list, []) ?? {});
  if (listRelations.some((relation) => relation !== "space")) {
    throw new Error(`The list rule follows ${listRelations.join(", ")}: a deleted list cannot be decided from its event`);
  }
  const stats: AudienceStats = { events: 0, sqlStatements: 0 };

  // Memberships kept between events while their version says they are current (relationCache.ts).
  const cache = createRelationCache(prisma);
  /** The row with what `expr` reads: the rest of it in one statement, the kept relations from the cache. */
  const load = async (expr: RuleExpr, read: (include: Record<string, unknown> | undefined) => Promise<unknown>, candidates: ReadonlySet<string>) => {
    const row = (await read(includeFor(expr, candidates, cache.handles))) as Row | null;
    if (row) for (const { test, row: parent } of rowsToFill(expr, row, cache.handles)) await cache.fill(test, parent, candidates);
    return row;
  };
  const loadTodo = (id: string, candidates: ReadonlySet<string>) =>
    load(compiled.todo, (include) => prisma.todo.findUnique({ where: { id }, include }), candidates);
  const loadList = (id: string, candidates: ReadonlySet<string>) =>
    load(compiled.list, (include) => prisma.list.findUnique({ where: { id }, include }), candidates);
  const loadSpace = (id: string, candidates: ReadonlySet<string>) =>
    load(compiled.space, (include) => prisma.space.findUnique({ where: { id }, include }), candidates);
  const loadListToRead = (id: string, candidates: ReadonlySet<string>) =>
    load(compiled.listRead, (include) => prisma.list.findUnique({ where: { id }, include }), candidates);

  async function decideUncounted(event: ChangeEvent, candidates: ReadonlySet<string>): Promise<Audience> {
    const allowed = (expr: RuleExpr, row: Row, delivered: DeliveredEvent) => {
      const viewers = allowedAmong(expr, row, candidates);
      return viewers.size > 0 ? new Audience(viewers, delivered) : NOBODY;
    };

    if (event.kind !== "DELETED") {
      if (event.subject === "TODO") {
        if (!event.todoId) return NOBODY;
        const todo = await loadTodo(event.todoId, candidates);
        if (!todo || (todo.list as Row).spaceId !== event.spaceId) return NOBODY;
        return allowed(compiled.todo, todo, { ...event, todo: ownColumns("todo", todo) as unknown as Todo, list: null });
      }
      const list = await loadList(event.listId, candidates);
      if (!list || list.spaceId !== event.spaceId) return NOBODY;
      return allowed(compiled.list, list, { ...event, todo: null, list: ownColumns("list", list) as unknown as List });
    }

    const deleted: DeliveredEvent = { ...event, todo: null, list: null };
    if (event.subject === "TODO") {
      const list = await loadList(event.listId, candidates);
      if (list) return list.spaceId === event.spaceId ? allowed(compiled.list, list, deleted) : NOBODY;
    }
    // The list is gone: its rule as it stood at the change, over the space now.
    const space = await loadSpace(event.spaceId, candidates);
    if (!space) return NOBODY;
    const listThen: Row = { id: event.listId, spaceId: event.spaceId, ownerId: event.listOwnerId, private: event.listPrivate, space };
    return allowed(compiled.list, listThen, deleted);
  }

  return {
    stats,
    async readersOf(model, id, viewers) {
      const [rule, loadRow] = model === "space" ? [compiled.space, loadSpace] : [compiled.listRead, loadListToRead];
      const row = await loadRow(id, viewers);
      return row ? allowedAmong(rule, row, viewers) : new Set();
    },
    async decide(event, viewers) {
      const counted = { sqlStatements: 0 };
      const candidates = viewers instanceof Set ? (viewers as ReadonlySet<string>) : new Set(viewers);
      try {
        return await withQueryStats(counted, () => decideUncounted(event, candidates));
      } finally {
        stats.events += 1;
        stats.sqlStatements += counted.sqlStatements;
      }
    },
  };
}

/** The row without the relations loaded to decide it: what the policy client would have returned. */
function ownColumns(model: ModelName, row: Row): Row {
  const own: Row = {};
  for (const [key, value] of Object.entries(row)) if (!(key in relations[model])) own[key] = value;
  return own;
}

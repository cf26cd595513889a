// Per-request DataLoaders over the policy-bound client. Built fresh for every
// request and every subscription event, never shared, so a loader never serves
// a row to someone who may not read it, nor a stale one.
//
// Every batch function is one SQL statement for all the keys of a tick, and
// returns results in key order (null where a row is missing or not readable).
//
// Paginated children (Space.lists, List.todos) are batched per page shape: one
// DataLoader per distinct (first, after, filter), keyed by parent id. Its
// statement reads the page of every parent of the batch at once, first+1 rows
// per parent, in page order: the parents are read with their children as a
// relation (Prisma's relationJoins: a LATERAL join with a LIMIT per parent),
// and the policy client ANDs the child model's read filter into that relation
// as into any other. So a query costs the same number of statements however
// many parents it reaches, and the rows read grow with first × parents, never
// with all the children of those parents. A batch of one parent
// (`list(id) { todos(first: 20) }`) reads the children alone, with the limit.
// totalCount is a second loader per filter (one GROUP BY for the batch), and
// runs only when the operation selects it.
import DataLoader from "dataloader";
import type { List, Space, SpaceMember, Todo } from "../generated/prisma/client.js";
import { afterCursorFilter, pageOrder, toPage, type OrderedRow, type Page, type PageArgs } from "../pagination/connection.js";
import type { PolicyClient, ReadableUser } from "../policy/client.js";

type Keyed = { id: string };

/**
 * A loader of rows by id that also answers at once, without a promise, for
 * ids whose batch has come back: `peek` is the row, null when it is missing
 * or not readable, undefined when it has not been loaded (yet).
 */
export type RowLoader<Row> = DataLoader<string, Row | null> & { peek(id: string): Row | null | undefined };

function byId<Row extends Keyed>(load: (ids: string[]) => Promise<Row[]>): RowLoader<Row> {
  const loaded = new Map<string, Row | null>();
  const loader = new DataLoader<string, Row | null>(async (ids) => {
    const rows = new Map((await load([...ids])).map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = rows.get(id) ?? null;
      loaded.set(id, row);
      return row;
    });
  });
  return Object.assign(loader, { peek: (id: string) => loaded.get(id) });
}

function groupBy<Row, Key>(rows: Row[], keyOf: (row: Row) => Key): Map<Key, Row[]> {
  const groups = new Map<Key, Row[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

/** `make`, remembered per distinct arguments (compared as JSON). */
function memoized<Args extends unknown[], Value>(make: (...args: Args) => Value): (...args: Args) => Value {
  const values = new Map<string, Value>();
  return (...args) => {
    const key = JSON.stringify(args);
    let value = values.get(key);
    if (value === undefined) {
      value = make(...args);
      values.set(key, value);
    }
    return value;
  };
}

/**
 * Counts of children per parent, one GROUP BY per batch and filter. `count`
 * answers [parentId, count] pairs for the parents that have any.
 */
const childCounts = <Filter>(count: (parentIds: string[], filter: Filter) => Promise<[string, number][]>) =>
  memoized(
    (filter: Filter) =>
      new DataLoader<string, number>(async (parentIds) => {
        const counts = new Map(await count([...parentIds], filter));
        return parentIds.map((id) => counts.get(id) ?? 0);
      }),
  );

/**
 * A page of children per parent, batched per page shape (see the top of this
 * file). `related` names the to-one relations of a child row that can be
 * loaded with the page: those the operation selects on the page's nodes are
 * loaded (one batch each, through their own loader) before the pages are
 * handed out, so their fields find the rows at hand (RowLoader.peek).
 */
function childPages<Row extends OrderedRow, Filter, Related extends string>(options: {
  /** At most `take` rows of each parent after the cursor, in page order, by parent id; one statement. */
  rows(parentIds: string[], filter: Filter, after: PageArgs["after"], take: number): Promise<Map<string, Row[]>>;
  totalCount(filter: Filter): DataLoader<string, number>;
  related: Record<Related, (rows: Row[]) => Promise<unknown>>;
}) {
  const relatedNames = Object.keys(options.related) as Related[];
  // One loader per page shape: a cursor's Date is keyed by its exact ISO time.
  const loaderFor = memoized(
    (page: PageArgs, filter: Filter, withRelated: Related[]) =>
      new DataLoader<string, Page<Row>>(async (parentIds) => {
        const byParent = await options.rows([...parentIds], filter, page.after, page.first + 1);
        if (withRelated.length > 0) {
          const rows = [...byParent.values()].flatMap((children) => children.slice(0, page.first));
          // A failed batch is left to the field, which asks its loader again and fails there alone.
          await Promise.all(withRelated.map((name) => options.related[name](rows).catch(() => undefined)));
        }
        const counts = options.totalCount(filter);
        return parentIds.map((id) => toPage(byParent.get(id) ?? [], page, () => counts.load(id)));
      }),
  );
  return (parentId: string, page: PageArgs, filter: Filter, selected: ReadonlySet<string>): Promise<Page<Row>> =>
    loaderFor(page, filter, relatedNames.filter((name) => selected.has(name))).load(parentId);
}

/** Loads the rows `idOf` names through `loader`, one batch. */
const loadAll =
  <Row, Target>(loader: RowLoader<Target>, idOf: (row: Row) => string) =>
  (rows: Row[]) =>
    loader.loadMany([...new Set(rows.map(idOf))]);

const inIds = (ids: string[]) => ({ in: ids });

export function createLoaders(db: PolicyClient) {
  const viewerId = db.viewer?.id;
  const user = byId<ReadableUser>((ids) => db.user.findMany({ where: { id: inIds(ids) } }));

  const listCounts = childCounts<null>(async (spaceIds) =>
    (await db.list.groupBy({ by: ["spaceId"], where: { spaceId: inIds(spaceIds) }, _count: { _all: true } })).map(
      (group): [string, number] => [group.spaceId, group._count._all],
    ),
  );
  const todoCounts = childCounts<boolean | null>(async (listIds, completed) =>
    (
      await db.todo.groupBy({
        by: ["listId"],
        where: { listId: inIds(listIds), ...completedFilter(completed) },
        _count: { _all: true },
      })
    ).map((group): [string, number] => [group.listId, group._count._all]),
  );

  const listPages = childPages<List, null, "owner">({
    rows: async (spaceIds, _filter, after, take) => {
      const where = { ...afterCursorFilter(after) };
      if (spaceIds.length === 1) {
        const [spaceId] = spaceIds as [string];
        return new Map([[spaceId, await db.list.findMany({ where: { spaceId, ...where }, orderBy: pageOrder, take })]]);
      }
      const spaces = await db.space.findMany({
        relationLoadStrategy: "join",
        where: { id: inIds(spaceIds) },
        select: { id: true, lists: { where, orderBy: pageOrder, take } },
      });
      return new Map(spaces.map((space) => [space.id, space.lists]));
    },
    totalCount: listCounts,
    related: { owner: loadAll(user, (list: List) => list.ownerId) },
  });
  const todoPages = childPages<Todo, boolean | null, "owner">({
    rows: async (listIds, completed, after, take) => {
      const where = { ...completedFilter(completed), ...afterCursorFilter(after) };
      if (listIds.length === 1) {
        const [listId] = listIds as [string];
        return new Map([[listId, await db.todo.findMany({ where: { listId, ...where }, orderBy: pageOrder, take })]]);
      }
      const lists = await db.list.findMany({
        relationLoadStrategy: "join",
        where: { id: inIds(listIds) },
        select: { id: true, todos: { where, orderBy: pageOrder, take } },
      });
      return new Map(lists.map((list) => [list.id, list.todos]));
    },
    totalCount: todoCounts,
    related: { owner: loadAll(user, (todo: Todo) => todo.ownerId) },
  });

  return {
    user,
    space: byId<Space>((ids) => db.space.findMany({ where: { id: inIds(ids) } })),
    spaceMember: byId<SpaceMember>((ids) => db.spaceMember.findMany({ where: { id: inIds(ids) } })),
    list: byId<List>((ids) => db.list.findMany({ where: { id: inIds(ids) } })),
    todo: byId<Todo>((ids) => db.todo.findMany({ where: { id: inIds(ids) } })),

    /** The viewer's own membership in each space (for Space.viewerRole). */
    viewerMembership: new DataLoader<string, SpaceMember | null>(async (spaceIds) => {
      if (!viewerId) return spaceIds.map(() => null);
      const rows = await db.spaceMember.findMany({ where: { spaceId: inIds([...spaceIds]), userId: viewerId } });
      const bySpace = new Map(rows.map((row) => [row.spaceId, row]));
      return spaceIds.map((id) => bySpace.get(id) ?? null);
    }),

    membersOfSpace: new DataLoader<string, SpaceMember[]>(async (spaceIds) => {
      const rows = await db.spaceMember.findMany({ where: { spaceId: inIds([...spaceIds]) }, orderBy: pageOrder });
      const bySpace = groupBy(rows, (row) => row.spaceId);
      return spaceIds.map((id) => bySpace.get(id) ?? []);
    }),

    /** `selected`: the fields the operation selects on the page's lists (see childPages). */
    listsOfSpace: (spaceId: string, page: PageArgs, selected: ReadonlySet<string>) => listPages(spaceId, page, null, selected),
    todosOfList: (listId: string, page: PageArgs, completed: boolean | undefined, selected: ReadonlySet<string>) =>
      todoPages(listId, page, completed ?? null, selected),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;

function completedFilter(completed: boolean | null) {
  if (completed === null) return {};
  return { completedAt: completed ? { not: null } : null };
}

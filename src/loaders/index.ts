// Per-request DataLoaders over the policy-bound client. Built fresh for every
// request and every subscription event, never shared, so a loader never serves
// a row to someone who may not read it, nor a stale one.
//
// Every batch function is one SQL statement for all the keys of a tick, and
// returns results in key order (null where a row is missing or not readable).
// Paginated children are batched per page shape: one DataLoader per distinct
// (first, after, filter) triple, keyed by parent id. The statement reads every
// matching child of those parents after the cursor, ordered, and slices first+1
// per parent in memory, so its cost grows with the children of the parents in
// the batch (not with the number of parents as N+1 queries would).
import DataLoader from "dataloader";
import type { List, Space, SpaceMember, Todo, User } from "../generated/prisma/client.js";
import { afterCursorFilter, pageOrder, toPage, type Page, type PageArgs } from "../pagination/connection.js";
import type { PolicyClient } from "../policy/client.js";

type Keyed = { id: string };

function byId<Row extends Keyed>(load: (ids: readonly string[]) => Promise<Row[]>) {
  return new DataLoader<string, Row | null>(async (ids) => {
    const rows = new Map((await load(ids)).map((row) => [row.id, row]));
    return ids.map((id) => rows.get(id) ?? null);
  });
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

/** One loader per page shape, created on first use. */
function perShape<Loader>(make: (shapeKey: string) => Loader) {
  const loaders = new Map<string, Loader>();
  return (shapeKey: string): Loader => {
    let loader = loaders.get(shapeKey);
    if (!loader) {
      loader = make(shapeKey);
      loaders.set(shapeKey, loader);
    }
    return loader;
  };
}

const shapeOf = (args: PageArgs, extra: unknown = null) =>
  JSON.stringify([args.first, args.after?.createdAt.getTime() ?? null, args.after?.id ?? null, extra]);

export function createLoaders(db: PolicyClient) {
  const viewerId = db.viewer?.id;

  const listCountsBySpace = new DataLoader<string, number>(async (spaceIds) => {
    const counts = await db.list.groupBy({ by: ["spaceId"], where: { spaceId: { in: [...spaceIds] } }, _count: { _all: true } });
    const bySpace = new Map(counts.map((c) => [c.spaceId, c._count._all]));
    return spaceIds.map((id) => bySpace.get(id) ?? 0);
  });

  const todoCountsByList = perShape((completedKey: string) => {
    const completed = completedKey === "any" ? undefined : completedKey === "true";
    return new DataLoader<string, number>(async (listIds) => {
      const counts = await db.todo.groupBy({
        by: ["listId"],
        where: { listId: { in: [...listIds] }, ...completedFilter(completed) },
        _count: { _all: true },
      });
      const byList = new Map(counts.map((c) => [c.listId, c._count._all]));
      return listIds.map((id) => byList.get(id) ?? 0);
    });
  });

  const listPages = perShape(
    (shape: string) =>
      new DataLoader<string, Page<List>>(async (spaceIds) => {
        const args = JSON.parse(shape) as Shape;
        const page = pageArgsFromShape(args);
        const rows = await db.list.findMany({
          where: { spaceId: { in: [...spaceIds] }, ...afterCursorFilter(page.after) },
          orderBy: pageOrder,
        });
        const bySpace = groupBy(rows, (row) => row.spaceId);
        return spaceIds.map((spaceId) =>
          toPage((bySpace.get(spaceId) ?? []).slice(0, page.first + 1), page.first, () => listCountsBySpace.load(spaceId)),
        );
      }),
  );

  const todoPages = perShape(
    (shape: string) =>
      new DataLoader<string, Page<Todo>>(async (listIds) => {
        const args = JSON.parse(shape) as Shape;
        const page = pageArgsFromShape(args);
        const completed = typeof args[3] === "boolean" ? args[3] : undefined;
        const rows = await db.todo.findMany({
          where: { listId: { in: [...listIds] }, ...completedFilter(completed), ...afterCursorFilter(page.after) },
          orderBy: pageOrder,
        });
        const byList = groupBy(rows, (row) => row.listId);
        const countKey = completed === undefined ? "any" : String(completed);
        return listIds.map((listId) =>
          toPage((byList.get(listId) ?? []).slice(0, page.first + 1), page.first, () =>
            todoCountsByList(countKey).load(listId),
          ),
        );
      }),
  );

  return {
    user: byId<User>((ids) => db.user.findMany({ where: { id: { in: [...ids] } } })),
    space: byId<Space>((ids) => db.space.findMany({ where: { id: { in: [...ids] } } })),
    spaceMember: byId<SpaceMember>((ids) => db.spaceMember.findMany({ where: { id: { in: [...ids] } } })),
    list: byId<List>((ids) => db.list.findMany({ where: { id: { in: [...ids] } } })),
    todo: byId<Todo>((ids) => db.todo.findMany({ where: { id: { in: [...ids] } } })),

    /** The viewer's own membership in each space (for Space.viewerRole). */
    viewerMembership: new DataLoader<string, SpaceMember | null>(async (spaceIds) => {
      if (!viewerId) return spaceIds.map(() => null);
      const rows = await db.spaceMember.findMany({ where: { spaceId: { in: [...spaceIds] }, userId: viewerId } });
      const bySpace = new Map(rows.map((row) => [row.spaceId, row]));
      return spaceIds.map((id) => bySpace.get(id) ?? null);
    }),

    membersOfSpace: new DataLoader<string, SpaceMember[]>(async (spaceIds) => {
      const rows = await db.spaceMember.findMany({ where: { spaceId: { in: [...spaceIds] } }, orderBy: pageOrder });
      const bySpace = groupBy(rows, (row) => row.spaceId);
      return spaceIds.map((id) => bySpace.get(id) ?? []);
    }),

    listsOfSpace: (spaceId: string, args: PageArgs) => listPages(shapeOf(args)).load(spaceId),
    todosOfList: (listId: string, args: PageArgs, completed: boolean | undefined) =>
      todoPages(shapeOf(args, completed ?? null)).load(listId),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;

// Shapes are JSON, where an absent cursor is null.
type Shape = [number, number | null, string | null, ...unknown[]];

function pageArgsFromShape([first, afterTime, afterId]: Shape): PageArgs {
  return {
    first,
    after: afterTime === null || afterId === null ? undefined : { createdAt: new Date(afterTime), id: afterId },
  };
}

function completedFilter(completed: boolean | undefined) {
  if (completed === undefined) return {};
  return { completedAt: completed ? { not: null } : null };
}

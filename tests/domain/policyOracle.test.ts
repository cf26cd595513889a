// A randomized property test of the access policy: random worlds (worlds.ts:
// users, spaces, memberships with roles, members who left, public and private
// lists, todos, tied timestamps), written through the raw client; then, for every
// user of every world, what the API returns is compared with an oracle that
// evaluates shared/api/ACCESS.md in plain TypeScript over the generated rows.
//
// POLICY_FUZZ_WORLDS (default 200) sets the number of worlds, POLICY_FUZZ_SEED
// the seed; a mismatch names the seed and world so it can be replayed.
import { isDeepStrictEqual } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import type { TestServer } from "../helpers/server.js";
import { insertWorlds, mintToken, serverPerFile, type ListRow, type SpaceRow, type TodoRow, type UserRow, type World } from "./support.js";
import { generateWorld as generateWorldFrom, type GeneratedWorld } from "./worlds.js";

const WORLDS = Number(process.env.POLICY_FUZZ_WORLDS ?? 200);
const SEED = Number(process.env.POLICY_FUZZ_SEED ?? 0x5eed2026);
const BATCH = 50;

let server: TestServer;
let prisma: RawPrismaClient;
// The oracle asks for every row of a world in one operation per user, past
// the default alias, root-field and cost limits meant for clients.
serverPerFile(
  (started, raw) => {
    server = started;
    prisma = raw;
  },
  {
    env: {
      LIMIT_MAX_ALIASES: "0",
      LIMIT_MAX_ROOT_FIELDS: "0",
      LIMIT_MAX_TOKENS: "0",
      LIMIT_MAX_COST: "0",
      LIMIT_MAX_DEPTH: "0",
      LIMIT_BODY_SIZE: "1mb",
    },
  },
);

const generateWorld = (index: number): GeneratedWorld => generateWorldFrom(SEED, index);

// -------------------------------------------------------------------- oracle

/** ACCESS.md over the generated rows, for one viewer. */
function accessFor(world: World, viewerId: string) {
  const membership = (spaceId: string) => world.members.find((m) => m.spaceId === spaceId && m.userId === viewerId);
  const mySpaces = new Set(world.members.filter((m) => m.userId === viewerId).map((m) => m.spaceId));
  const listById = new Map(world.lists.map((list) => [list.id, list]));
  const access = {
    membership,
    // Space: I am a member.
    space: (space: SpaceRow) => mySpaces.has(space.id),
    // User email (field rule): the user is me, or shares at least one space with me now.
    email: (userId: string) =>
      userId === viewerId || world.members.some((m) => m.userId === userId && mySpaces.has(m.spaceId)),
    // User: the email rule, or the user owns a list or todo I may read.
    user: (userId: string) =>
      access.email(userId) ||
      world.lists.some((l) => l.ownerId === userId && access.list(l)) ||
      world.todos.some((t) => t.ownerId === userId && access.todo(t)),
    // List: I own it; or I am a member of its space and it is not private.
    list: (list: ListRow) => list.ownerId === viewerId || (mySpaces.has(list.spaceId) && !list.private),
    // Todo: exactly when I may read its list.
    todo: (todo: TodoRow) => access.list(listById.get(todo.listId)!),
  };
  return access;
}

const byPosition = <Row extends { createdAt: Date; id: string }>(rows: Row[]) =>
  [...rows].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/** A page of `first` rows after the first `skip` of `rows` (already filtered and ordered). */
function page<Row>(rows: Row[], first: number, skip = 0) {
  const slice = rows.slice(skip, skip + first);
  return { rows: slice, totalCount: rows.length, hasNextPage: rows.length > skip + first };
}

const ids = (rows: { id: string }[]) => rows.map((row) => ({ id: row.id }));

/** `{ id email }` of a user the viewer may read: the email only where the field rule allows. */
function userAnswer(world: World, can: ReturnType<typeof accessFor>, userId: string) {
  const email = world.users.find((user) => user.id === userId)!.email;
  return { id: userId, email: can.email(userId) ? email : null };
}
const isCompleted = (todo: TodoRow) => todo.completedAt !== null;

// ----------------------------------------------------------------- operations

// Cursors are opaque: the oracle compares everything else and reads them
// back from the answer only to ask for the next page.
const PAGE_FIELDS = `totalCount pageInfo { hasNextPage endCursor } nodes { id }`;

function firstQuery(k: number): string {
  return `query OracleConnections {
    spaces(first: 100) {
      totalCount pageInfo { hasNextPage }
      nodes {
        id viewerRole owner { id email }
        members { id role user { id email } }
        lists(first: 100) {
          totalCount pageInfo { hasNextPage }
          nodes {
            id private
            todos(first: 100) { totalCount nodes { id completed } }
            done: todos(first: 100, completed: true) { totalCount nodes { id } }
            open: todos(first: ${k}, completed: false) { ${PAGE_FIELDS} }
          }
        }
        page: lists(first: ${k}) { ${PAGE_FIELDS} }
      }
    }
    page: spaces(first: ${k}) { ${PAGE_FIELDS} }
  }`;
}

interface PageAnswer {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: { id: string }[];
}

/** What OracleConnections must answer, except for endCursor (opaque). */
function expectedFirst(world: GeneratedWorld, viewerId: string) {
  const can = accessFor(world, viewerId);
  const spaces = byPosition(world.spaces.filter(can.space));
  const pageOf = <Row extends { id: string }>(rows: Row[], first: number) => {
    const p = page(rows, first);
    return { totalCount: p.totalCount, pageInfo: { hasNextPage: p.hasNextPage }, nodes: ids(p.rows) };
  };
  const listsOf = (space: SpaceRow) => byPosition(world.lists.filter((l) => l.spaceId === space.id && can.list(l)));
  const todosOf = (list: ListRow) => byPosition(world.todos.filter((t) => t.listId === list.id));
  return {
    spaces: {
      ...pageOf(spaces, 100),
      nodes: spaces.map((space) => ({
        id: space.id,
        viewerRole: can.membership(space.id)!.role,
        owner: space.ownerId !== null && can.user(space.ownerId) ? userAnswer(world, can, space.ownerId) : null,
        members: byPosition(world.members.filter((m) => m.spaceId === space.id)).map((m) => ({
          id: m.id,
          role: m.role,
          user: userAnswer(world, can, m.userId),
        })),
        lists: {
          ...pageOf(listsOf(space), 100),
          nodes: listsOf(space).map((list) => {
            const todos = todosOf(list);
            return {
              id: list.id,
              private: list.private,
              todos: { totalCount: todos.length, nodes: todos.map((t) => ({ id: t.id, completed: isCompleted(t) })) },
              done: { totalCount: todos.filter(isCompleted).length, nodes: ids(todos.filter(isCompleted)) },
              open: pageOf(todos.filter((t) => !isCompleted(t)), world.k),
            };
          }),
        },
        page: pageOf(listsOf(space), world.k),
      })),
    },
    page: pageOf(spaces, world.k),
  };
}

/** The answer with every endCursor taken out, to compare with the oracle. */
function withoutCursors(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCursors);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "endCursor")
      .map(([key, inner]) => [key, withoutCursors(inner)]),
  );
}

interface FirstAnswer {
  spaces: { nodes: { id: string; lists: { nodes: { id: string; open: PageAnswer }[] }; page: PageAnswer }[] };
  page: PageAnswer;
}

/**
 * The second operation: the next pages (read from the first answer's
 * cursors), and every row of the world by id. Returns the query and its oracle.
 */
function secondOperation(world: GeneratedWorld, viewerId: string, first: FirstAnswer | undefined) {
  const can = accessFor(world, viewerId);
  const k = world.k;
  const nextPage = <Row extends { id: string }>(rows: Row[]) => {
    const p = page(rows, k, k);
    return { totalCount: p.totalCount, pageInfo: { hasNextPage: p.hasNextPage }, nodes: ids(p.rows) };
  };
  const fields: string[] = [];
  const expected: Record<string, unknown> = {};
  const expectedErrors: string[] = [];
  const variables: Record<string, unknown> = {};

  const spaces = byPosition(world.spaces.filter(can.space));
  if (spaces.length > k) {
    fields.push(`nextSpaces: spaces(first: ${k}, after: $spacesAfter) { ${PAGE_FIELDS} }`);
    variables.spacesAfter = first?.page.pageInfo.endCursor;
    expected.nextSpaces = nextPage(spaces);
  }
  // The first space, and the first list, with a second page.
  const listsOf = (space: SpaceRow) => byPosition(world.lists.filter((l) => l.spaceId === space.id && can.list(l)));
  const spaceWithMore = spaces.find((space) => listsOf(space).length > k);
  if (spaceWithMore) {
    fields.push(`nextLists: space(id: "${spaceWithMore.id}") { lists(first: ${k}, after: $listsAfter) { ${PAGE_FIELDS} } }`);
    variables.listsAfter = first?.spaces.nodes.find((s) => s.id === spaceWithMore.id)?.page.pageInfo.endCursor;
    expected.nextLists = { lists: nextPage(listsOf(spaceWithMore)) };
  }
  const openTodos = (list: ListRow) => byPosition(world.todos.filter((t) => t.listId === list.id && !isCompleted(t)));
  const listWithMore = spaces.flatMap(listsOf).find((list) => openTodos(list).length > k);
  if (listWithMore) {
    fields.push(`nextTodos: list(id: "${listWithMore.id}") { todos(first: ${k}, completed: false, after: $todosAfter) { ${PAGE_FIELDS} } }`);
    variables.todosAfter = first?.spaces.nodes
      .flatMap((s) => s.lists.nodes)
      .find((l) => l.id === listWithMore.id)?.open.pageInfo.endCursor;
    expected.nextTodos = { todos: nextPage(openTodos(listWithMore)) };
  }

  // Every row by id. List.owner and Todo.owner are non-null in the contract;
  // the owner of a list or todo I may read is always readable (ACCESS.md,
  // User read), so a readable row never fails on its owner. Should the server
  // disagree, the owner field fails with NOT_FOUND and the row answers null.
  const withOwner = (alias: string, readable: boolean, ownerId: string, row: Record<string, unknown>) => {
    if (!readable) return null;
    if (can.user(ownerId)) return { ...row, owner: userAnswer(world, can, ownerId) };
    expectedErrors.push(`${alias}.owner:NOT_FOUND`);
    return null;
  };
  world.users.forEach((user, i) => {
    fields.push(`u${i}: user(id: "${user.id}") { id email }`);
    expected[`u${i}`] = can.user(user.id) ? userAnswer(world, can, user.id) : null;
  });
  world.spaces.forEach((space, i) => {
    fields.push(`s${i}: space(id: "${space.id}") { id }`);
    expected[`s${i}`] = can.space(space) ? { id: space.id } : null;
  });
  world.lists.forEach((list, i) => {
    fields.push(`l${i}: list(id: "${list.id}") { id private owner { id email } }`);
    expected[`l${i}`] = withOwner(`l${i}`, can.list(list), list.ownerId, { id: list.id, private: list.private });
  });
  world.todos.forEach((todo, i) => {
    fields.push(`t${i}: todo(id: "${todo.id}") { id completed owner { id email } }`);
    expected[`t${i}`] = withOwner(`t${i}`, can.todo(todo), todo.ownerId, { id: todo.id, completed: isCompleted(todo) });
  });

  // GraphQL refuses declared variables that are not used.
  const declared = Object.keys(variables).map((name) => `$${name}: String`);
  const signature = declared.length > 0 ? `(${declared.join(", ")})` : "";
  const query = `query OracleRows${signature} {\n${fields.join("\n")}\n}`;
  return { query, variables, expected: { data: expected, errors: expectedErrors.sort() } };
}

// ---------------------------------------------------------------------- run

interface Mismatch {
  world: number;
  seed: number;
  viewer: string;
  operation: string;
  expected: unknown;
  actual: unknown;
}

const totals = { worlds: 0, users: 0, rows: 0, requests: 0, resent: 0 };

/**
 * Sends one (read-only) operation. The test client and the server share one
 * event loop, and PGlite runs its queries on it: on a loaded machine the loop
 * can stall for seconds, long enough for the server to close a keep-alive
 * connection (Node's 5 s keepAliveTimeout) that the client is just reusing.
 * That reset says nothing about the policy, and the operations only read, so
 * one that fails on the socket is sent again, on a new connection, and counted.
 */
async function send<Data>(query: string, variables: Record<string, unknown>, token: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await server.gql<Data>(query, variables, token);
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      const socketError = error instanceof TypeError && ["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(code ?? "");
      if (!socketError || attempt >= 3) throw error;
      totals.resent += 1;
    }
  }
}

async function checkViewer(world: GeneratedWorld, viewer: UserRow): Promise<Mismatch[]> {
  const token = await mintToken(prisma, viewer.id);
  const mismatches: Mismatch[] = [];
  const report = (operation: string, expected: unknown, actual: unknown) => {
    if (!isDeepStrictEqual(actual, expected)) {
      mismatches.push({ world: world.index, seed: world.seed, viewer: viewer.id, operation, expected, actual });
    }
  };

  const first = await send<FirstAnswer>(firstQuery(world.k), {}, token);
  report("OracleConnections", { data: expectedFirst(world, viewer.id), errors: undefined }, {
    data: withoutCursors(first.data),
    errors: first.errors,
  });

  const second = secondOperation(world, viewer.id, first.data ?? undefined);
  const answer = await send(second.query, second.variables, token);
  const errors = (answer.errors ?? []).map((e) => `${(e.path ?? []).join(".")}:${String(e.extensions?.code)}`).sort();
  report("OracleRows", second.expected, { data: withoutCursors(answer.data), errors });
  return mismatches;
}

const batches = Array.from({ length: Math.ceil(WORLDS / BATCH) }, (_, b) => [b * BATCH, Math.min(WORLDS, (b + 1) * BATCH)] as const);

describe(`access policy against an ACCESS.md oracle (${WORLDS} worlds, seed ${SEED})`, () => {
  it.each(batches)("worlds %i to %i", async (from, to) => {
    const worlds = Array.from({ length: to - from }, (_, i) => generateWorld(from + i));
    await insertWorlds(prisma, worlds);
    const mismatches: Mismatch[] = [];
    // A few worlds at a time: enough to overlap HTTP and database work.
    for (let start = 0; start < worlds.length; start += 4) {
      const group = worlds.slice(start, start + 4);
      const results = await Promise.all(group.flatMap((world) => world.users.map((user) => checkViewer(world, user))));
      mismatches.push(...results.flat());
    }
    for (const world of worlds) {
      totals.worlds += 1;
      totals.users += world.users.length;
      totals.requests += world.users.length * 2;
      totals.rows += world.users.length + world.spaces.length + world.members.length + world.lists.length + world.todos.length;
    }
    if (mismatches.length > 0) {
      console.log(`${mismatches.length} mismatches; first:\n${JSON.stringify(mismatches.slice(0, 2), null, 2)}`);
    }
    expect(mismatches.map((m) => `world ${m.world} (seed ${m.seed}) viewer ${m.viewer} ${m.operation}`)).toEqual([]);
  }, 300_000);

  afterAll(() => {
    console.log(
      `policy oracle: ${totals.worlds} worlds, ${totals.users} users, ${totals.rows} rows, ${totals.requests} requests (${totals.resent} resent after a connection reset), 0 mismatches expected`,
    );
  });

  it("generates worlds that exercise every rule", () => {
    // Guards against a generator that never produces the interesting cases.
    const worlds = Array.from({ length: Math.min(WORLDS, 200) }, (_, i) => generateWorld(i));
    const seen = new Set<string>();
    for (const world of worlds) {
      for (const viewer of world.users) {
        const can = accessFor(world, viewer.id);
        for (const list of world.lists) {
          const member = can.membership(list.spaceId) !== undefined;
          const owner = list.ownerId === viewer.id;
          seen.add(`list private=${list.private} member=${member} owner=${owner} readable=${can.list(list)}`);
        }
        for (const user of world.users) if (!can.user(user.id)) seen.add("unreadable user");
        for (const user of world.users) if (can.user(user.id) && !can.email(user.id)) seen.add("readable user, hidden email");
        for (const todo of world.todos) if (can.todo(todo) && !can.email(todo.ownerId)) seen.add("readable todo, owner's email hidden");
        for (const list of world.lists) if (can.list(list) && !can.email(list.ownerId)) seen.add("readable list, owner's email hidden");
      }
      if (world.spaces.some((s) => s.ownerId === null)) seen.add("space without owner");
      if (new Set(world.todos.map((t) => t.createdAt.getTime())).size < world.todos.length) seen.add("createdAt tie");
    }
    for (const isPrivate of [true, false]) {
      for (const member of [true, false]) {
        for (const owner of [true, false]) {
          const readable = owner || (member && !isPrivate);
          expect(seen).toContain(`list private=${isPrivate} member=${member} owner=${owner} readable=${readable}`);
        }
      }
    }
    for (const label of [
      "unreadable user",
      "readable user, hidden email",
      "readable todo, owner's email hidden",
      "readable list, owner's email hidden",
      "space without owner",
      "createdAt tie",
    ]) {
      expect(seen).toContain(label);
    }
  });
});

// DataLoader batching, measured: the same three-level query (spaces → lists →
// todos → owner, with totalCount at each level, Space.members/user and
// viewerRole) must send the same number of SQL statements whether the viewer
// sees 2 × 2 × 2 rows or 20 × 20 × 5. The count comes from the server's own
// `extensions.queryStats` (GRAPHQL_QUERY_STATS, turned on by the test server
// helper), which counts every statement the driver adapter sends for the
// request. Each answer is also checked against the data written, so a query
// that returned nothing could not pass.
//
// The statements (one per loader per wave of the query): spaces page, spaces
// count, viewer memberships, members (when selected), lists pages, lists
// counts, todos pages, todos counts, users, and the users whose email the
// viewer may see (the email field rule, one statement for the batch of users
// other than the viewer): 10 with members, 9 without.
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { usePostgres } from "../helpers/database.js";
import { startTestServer, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { dataOf, insertWorlds, mintToken, serverPerFile, worldBuilder, type ListRow, type SpaceRow } from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

interface Size {
  spaces: number;
  lists: number;
  todos: number;
}

/**
 * One viewer in `spaces` spaces, each with two other members, `lists` lists the
 * viewer may read (half the viewer's, one of them private; half the others'),
 * `todos` todos per list owned by the viewer and the others in turn. Around
 * them, rows the viewer must not see: a private list of another member in
 * every space (with todos), and a space the viewer is not in.
 */
function buildWorld(size: Size) {
  const build = worldBuilder();
  const viewer = build.user("Viewer");
  const others = [build.user("Ann"), build.user("Bob"), build.user("Cid")];
  const stranger = build.user("Stranger");
  const spaces: { space: SpaceRow; role: "ADMIN" | "USER"; lists: { list: ListRow; todos: number; completed: number }[] }[] = [];
  for (let s = 0; s < size.spaces; s++) {
    const a = others[s % others.length]!;
    const b = others[(s + 1) % others.length]!;
    const role = s % 2 === 0 ? "ADMIN" : "USER";
    // Odd spaces are someone else's, with the viewer as a USER member.
    const space = role === "ADMIN" ? build.space(viewer, [[a, "USER"], [b, "USER"]]) : build.space(a, [[viewer, "USER"], [b, "ADMIN"]]);
    const lists: (typeof spaces)[number]["lists"] = [];
    for (let l = 0; l < size.lists; l++) {
      const owner = l % 2 === 0 ? viewer : l % 4 === 1 ? a : b;
      const list = build.list(space, owner, l === 0);
      let completed = 0;
      for (let t = 0; t < size.todos; t++) {
        const done = t % 3 === 0;
        // Owners rotate over the whole space, so that at both sizes the todo
        // owners are exactly the space's members: whichever of the two waves
        // of user loads (members' users, todo owners) runs first fetches them
        // all and the other is served from the loader's cache, however the
        // database's answers interleave.
        build.todo(list, [viewer, a, b][(l * size.todos + t) % 3]!, done);
        if (done) completed += 1;
      }
      lists.push({ list, todos: size.todos, completed });
    }
    const hidden = build.list(space, b, true);
    build.todo(hidden, b);
    build.todo(hidden, b);
    spaces.push({ space, role, lists });
  }
  const elsewhere = build.space(stranger, [[others[0]!, "USER"]]);
  build.todo(build.list(elsewhere, stranger), stranger);
  const owners = new Set([viewer.id, ...others.map((user) => user.id)]);
  return { world: build.world, viewer, owners, spaces };
}

const TREE = /* GraphQL */ `
  query Tree($withMembers: Boolean!) {
    spaces(first: 20) {
      totalCount
      pageInfo { hasNextPage }
      nodes {
        id
        viewerRole
        members @include(if: $withMembers) { id role user { id } }
        lists(first: 20) {
          totalCount
          pageInfo { hasNextPage }
          nodes {
            id
            private
            todos(first: 20) {
              totalCount
              pageInfo { hasNextPage }
              nodes { id completed owner { id } }
            }
          }
        }
      }
    }
  }
`;

interface Tree {
  spaces: {
    totalCount: number;
    pageInfo: { hasNextPage: boolean };
    nodes: {
      id: string;
      viewerRole: string;
      members?: { id: string; role: string; user: { id: string } }[];
      lists: {
        totalCount: number;
        pageInfo: { hasNextPage: boolean };
        nodes: {
          id: string;
          private: boolean;
          todos: { totalCount: number; pageInfo: { hasNextPage: boolean }; nodes: { id: string; completed: boolean; owner: { id: string } }[] };
        }[];
      };
    }[];
  };
}

/** Asserts the answer holds exactly what buildWorld wrote for the viewer. */
function expectComplete(tree: Tree, built: ReturnType<typeof buildWorld>, withMembers: boolean): void {
  const { spaces } = built;
  expect(tree.spaces.totalCount).toBe(spaces.length);
  expect(tree.spaces.pageInfo.hasNextPage).toBe(false);
  expect(tree.spaces.nodes.map((node) => node.id)).toEqual(spaces.map(({ space }) => space.id));
  tree.spaces.nodes.forEach((node, s) => {
    const expected = spaces[s]!;
    expect(node.viewerRole).toBe(expected.role);
    if (withMembers) {
      expect(node.members).toHaveLength(3);
      expect(node.members?.map((member) => member.user.id)).toContain(built.viewer.id);
    } else {
      expect(node.members).toBeUndefined();
    }
    // The hidden private list is neither listed nor counted.
    expect(node.lists.totalCount).toBe(expected.lists.length);
    expect(node.lists.nodes.map((list) => list.id)).toEqual(expected.lists.map(({ list }) => list.id));
    node.lists.nodes.forEach((list, l) => {
      const { todos, completed } = expected.lists[l]!;
      expect(list.private).toBe(l === 0);
      expect(list.todos.totalCount).toBe(todos);
      expect(list.todos.nodes).toHaveLength(todos);
      expect(list.todos.pageInfo.hasNextPage).toBe(false);
      expect(list.todos.nodes.filter((todo) => todo.completed)).toHaveLength(completed);
      for (const todo of list.todos.nodes) expect(built.owners).toContain(todo.owner.id);
    });
  });
}

const countRows = (tree: Tree) =>
  tree.spaces.nodes.reduce(
    (sum, space) => sum + space.lists.nodes.reduce((inner, list) => inner + 1 + list.todos.nodes.length, 1),
    0,
  );

async function measure(size: Size, withMembers: boolean) {
  const built = buildWorld(size);
  await insertWorlds(prisma, [built.world]);
  const result: GraphQLResult<Tree> = await server.gql<Tree>(TREE, { withMembers }, await mintToken(prisma, built.viewer.id));
  const tree = dataOf(result);
  expectComplete(tree, built, withMembers);
  const stats = result.extensions?.queryStats;
  expect(stats, "GRAPHQL_QUERY_STATS is on: every response carries queryStats").toBeDefined();
  return { sqlStatements: stats!.sqlStatements, rows: countRows(tree), owners: new Set(collectOwners(tree)).size };
}

const collectOwners = (tree: Tree) =>
  tree.spaces.nodes.flatMap((space) => space.lists.nodes.flatMap((list) => list.todos.nodes.map((todo) => todo.owner.id)));

const SMALL: Size = { spaces: 2, lists: 2, todos: 2 };
const LARGE: Size = { spaces: 20, lists: 20, todos: 5 };

describe("DataLoader batching: SQL statements per operation do not grow with the data", () => {
  for (const withMembers of [true, false]) {
    const label = withMembers ? "with Space.members { user }" : "todo owners batched on their own";
    it(`3-level query, ${label}`, async () => {
      const small = await measure(SMALL, withMembers);
      const large = await measure(LARGE, withMembers);
      console.log(
        `batching (${label}): ${small.sqlStatements} SQL statements for ${small.rows} spaces+lists+todos, ` +
          `${large.sqlStatements} for ${large.rows}`,
      );
      // 2 spaces + 4 lists + 8 todos; 20 + 400 + 2000.
      expect(small.rows).toBe(14);
      expect(large.rows).toBe(2420);
      expect(large.owners).toBe(4);
      expect(small.sqlStatements).toBeGreaterThan(0);
      expect(large.sqlStatements).toBe(small.sqlStatements);
      // One statement per loader (see the top of this file), not per row.
      expect(large.sqlStatements).toBeLessThanOrEqual(withMembers ? 10 : 9);
    });
  }
});

describe("GRAPHQL_QUERY_STATS", () => {
  it("off: responses carry no extensions.queryStats", async () => {
    const quiet = await startTestServer({ env: { GRAPHQL_QUERY_STATS: "false" } });
    try {
      const built = buildWorld(SMALL);
      await insertWorlds(quiet.database.prisma, [built.world]);
      const result = await quiet.gql<Tree>(TREE, { withMembers: true }, await mintToken(quiet.database.prisma, built.viewer.id));
      expectComplete(dataOf(result), built, true);
      expect(result.extensions?.queryStats).toBeUndefined();
    } finally {
      await quiet.close();
    }
  });

  it("on: the statement count is the request's own", async () => {
    // `me` for a signed-in viewer is one user lookup (the viewer's own email
    // needs no field-rule statement); an anonymous `me` is none.
    const built = buildWorld({ spaces: 1, lists: 1, todos: 1 });
    await insertWorlds(prisma, [built.world]);
    const signedIn = await server.gql(`{ me { id } }`, {}, await mintToken(prisma, built.viewer.id));
    expect(dataOf(signedIn)).toEqual({ me: { id: built.viewer.id } });
    expect(signedIn.extensions?.queryStats?.sqlStatements).toBe(1);
    const anonymous = await server.gql(`{ me { id } }`);
    expect(dataOf(anonymous)).toEqual({ me: null });
    expect(anonymous.extensions?.queryStats?.sqlStatements).toBe(0);
  });
});

describe("SQL statements per mutation", () => {
  // The write path, counted the same way: the policy check, the write and its
  // event in as few statements as correctness allows. createTodo: the list
  // (read once, for the readability check and the event's snapshot), the
  // todo, the event; updateTodo and deleteTodo: the todo through the read
  // filter (the todo rule grants writes to exactly its readers, so no second
  // check), the write, the list for the event, the event. The transaction's
  // BEGIN and COMMIT are counted as well. Appending an event takes no lock.
  it("createTodo, updateTodo and deleteTodo each send a fixed, small number", async () => {
    const built = buildWorld({ spaces: 1, lists: 1, todos: 1 });
    await insertWorlds(prisma, [built.world]);
    const token = await mintToken(prisma, built.viewer.id);
    // The first space is the viewer's own (ADMIN); a public list in it.
    const listId = (
      await server.gql<{ createList: { id: string } }>(
        `mutation ($s: ID!) { createList(input: { spaceId: $s, title: "Counted" }) { id } }`,
        { s: built.world.spaces[0]!.id },
        token,
      )
    ).data!.createList.id;
    const statements = (result: GraphQLResult<unknown>) => {
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      return result.extensions?.queryStats?.sqlStatements;
    };
    const created = await server.gql<{ createTodo: { id: string } }>(
      `mutation ($l: ID!) { createTodo(input: { listId: $l, title: "Counted" }) { id } }`,
      { l: listId },
      token,
    );
    const id = created.data!.createTodo.id;
    const updated = await server.gql(`mutation ($id: ID!) { updateTodo(id: $id, input: { completed: true }) { id } }`, { id }, token);
    const deleted = await server.gql(`mutation ($id: ID!) { deleteTodo(id: $id) }`, { id }, token);
    // The PostgreSQL driver adapter sends one transaction-control statement
    // more than the embedded one does.
    const control = usePostgres ? 1 : 0;
    expect({ createTodo: statements(created), updateTodo: statements(updated), deleteTodo: statements(deleted) }).toEqual({
      createTodo: 4 + control,
      updateTodo: 5 + control,
      deleteTodo: 5 + control,
    });
    expect(await prisma.event.count({ where: { todoId: id } })).toBe(3);
  });
});

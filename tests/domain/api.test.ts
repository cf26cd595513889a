// Every query and mutation of the contract (subscriptions aside), through the
// real server over HTTP: the happy paths, input validation, CONFLICTs, and
// Relay pagination. Every failure path re-reads the database through the raw
// client to show that nothing changed.
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { signUp, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { dataOf, expectRejected, insertWorlds, mintToken, newId, serverPerFile, worldBuilder } from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

interface Ref {
  id: string;
}
interface Member {
  id: string;
  role: "USER" | "ADMIN";
  user: Ref & { email: string };
  space: Ref;
  createdAt: string;
}
interface Space {
  id: string;
  name: string;
  slug: string;
  owner: Ref | null;
  viewerRole: "USER" | "ADMIN";
  members: Member[];
  createdAt: string;
  updatedAt: string;
}
interface List {
  id: string;
  title: string;
  private: boolean;
  owner: Ref;
  space: Ref;
  createdAt: string;
  updatedAt: string;
}
interface Todo {
  id: string;
  title: string;
  completed: boolean;
  completedAt: string | null;
  owner: Ref;
  list: Ref;
  createdAt: string;
  updatedAt: string;
}
interface Connection<Node> {
  edges: { cursor: string; node: Node }[];
  nodes: Node[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: number;
}

const MEMBER = `id role user { id email } space { id } createdAt`;
const SPACE = `id name slug owner { id } viewerRole members { ${MEMBER} } createdAt updatedAt`;
const LIST = `id title private owner { id } space { id } createdAt updatedAt`;
const TODO = `id title completed completedAt owner { id } list { id } createdAt updatedAt`;
const PAGE = (node: string) => `edges { cursor node { ${node} } } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount`;

type Result<Data> = Promise<GraphQLResult<Data>>;
const gql = <Data>(query: string, variables: Record<string, unknown>, token?: string): Result<Data> =>
  server.gql<Data>(query, variables, token);

// The mutations, as a client would send them.
const api = {
  createSpace: (token: string, input: Record<string, unknown>) =>
    gql<{ createSpace: Space }>(`mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { ${SPACE} } }`, { input }, token),
  updateSpace: (token: string, id: string, input: Record<string, unknown>) =>
    gql<{ updateSpace: Space }>(
      `mutation ($id: ID!, $input: UpdateSpaceInput!) { updateSpace(id: $id, input: $input) { ${SPACE} } }`,
      { id, input },
      token,
    ),
  deleteSpace: (token: string, id: string) => gql<{ deleteSpace: string }>(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id }, token),
  addSpaceMember: (token: string, spaceId: string, email: string, role?: string) =>
    gql<{ addSpaceMember: Member }>(
      `mutation ($spaceId: ID!, $email: String!, $role: SpaceRole) { addSpaceMember(spaceId: $spaceId, email: $email, role: $role) { ${MEMBER} } }`,
      { spaceId, email, ...(role ? { role } : {}) },
      token,
    ),
  updateSpaceMember: (token: string, id: string, role: string) =>
    gql<{ updateSpaceMember: Member }>(
      `mutation ($id: ID!, $role: SpaceRole!) { updateSpaceMember(id: $id, role: $role) { ${MEMBER} } }`,
      { id, role },
      token,
    ),
  removeSpaceMember: (token: string, id: string) =>
    gql<{ removeSpaceMember: string }>(`mutation ($id: ID!) { removeSpaceMember(id: $id) }`, { id }, token),
  createList: (token: string, input: Record<string, unknown>) =>
    gql<{ createList: List }>(`mutation ($input: CreateListInput!) { createList(input: $input) { ${LIST} } }`, { input }, token),
  updateList: (token: string, id: string, input: Record<string, unknown>) =>
    gql<{ updateList: List }>(
      `mutation ($id: ID!, $input: UpdateListInput!) { updateList(id: $id, input: $input) { ${LIST} } }`,
      { id, input },
      token,
    ),
  deleteList: (token: string, id: string) => gql<{ deleteList: string }>(`mutation ($id: ID!) { deleteList(id: $id) }`, { id }, token),
  createTodo: (token: string, input: Record<string, unknown>) =>
    gql<{ createTodo: Todo }>(`mutation ($input: CreateTodoInput!) { createTodo(input: $input) { ${TODO} } }`, { input }, token),
  updateTodo: (token: string, id: string, input: Record<string, unknown>) =>
    gql<{ updateTodo: Todo }>(
      `mutation ($id: ID!, $input: UpdateTodoInput!) { updateTodo(id: $id, input: $input) { ${TODO} } }`,
      { id, input },
      token,
    ),
  deleteTodo: (token: string, id: string) => gql<{ deleteTodo: string }>(`mutation ($id: ID!) { deleteTodo(id: $id) }`, { id }, token),
};

let slugs = 0;
const freshSlug = () => `sl${process.pid.toString(36)}${(++slugs).toString(36)}`.slice(0, 16);

/** A signed-up user with a space of their own, a list in it and a todo in that. */
async function setUp() {
  const owner = await signUp(server);
  const space = dataOf(await api.createSpace(owner.token, { name: "Home team", slug: freshSlug() })).createSpace;
  const list = dataOf(await api.createList(owner.token, { spaceId: space.id, title: "Groceries" })).createList;
  const todo = dataOf(await api.createTodo(owner.token, { listId: list.id, title: "Milk" })).createTodo;
  return { owner, space, list, todo };
}

const rejected = (operation: () => Promise<GraphQLResult<unknown>>, code: string, field?: string) =>
  expectRejected(prisma, operation, code, field === undefined ? {} : { field });

describe("users", () => {
  it("reads me, myself and the users I share a space with; others are null", async () => {
    const { owner, space } = await setUp();
    const friend = await signUp(server);
    const stranger = await signUp(server);
    dataOf(await api.addSpaceMember(owner.token, space.id, friend.email));

    const query = `query ($friend: ID!, $stranger: ID!, $me: ID!) {
      me { id email name image createdAt }
      self: user(id: $me) { id email }
      friend: user(id: $friend) { id email }
      stranger: user(id: $stranger) { id }
      unknown: user(id: "doesnotexist") { id }
      malformed: user(id: "not an id!") { id }
    }`;
    const data = dataOf(
      await gql<Record<string, { id: string; email?: string } | null>>(
        query,
        { friend: friend.user.id, stranger: stranger.user.id, me: owner.user.id },
        owner.token,
      ),
    );
    expect(data.me).toMatchObject({ id: owner.user.id, email: owner.email, name: null, image: null });
    expect(data.self).toEqual({ id: owner.user.id, email: owner.email });
    expect(data.friend).toEqual({ id: friend.user.id, email: friend.email });
    expect(data.stranger).toBeNull();
    expect(data.unknown).toBeNull();
    expect(data.malformed).toBeNull();
  });

  it("updates only the caller with updateMe, and rejects bad input unchanged", async () => {
    const me = await signUp(server);
    const updated = dataOf(
      await gql<{ updateMe: { id: string; name: string; image: string } }>(
        `mutation { updateMe(input: { name: " Ada ", image: "https://example.com/ada.png" }) { id name image } }`,
        {},
        me.token,
      ),
    );
    expect(updated.updateMe).toEqual({ id: me.user.id, name: "Ada", image: "https://example.com/ada.png" });
    expect(await prisma.user.findUniqueOrThrow({ where: { id: me.user.id } })).toMatchObject({ name: "Ada" });
    await rejected(() => gql(`mutation { updateMe(input: { image: "ftp://x" }) { id } }`, {}, me.token), "BAD_USER_INPUT", "image");
    await rejected(() => gql(`mutation { updateMe(input: { name: "${"n".repeat(101)}" }) { id } }`, {}, me.token), "BAD_USER_INPUT", "name");
  });
});

describe("spaces", () => {
  it("creates a space whose creator is its owner and only, ADMIN, member", async () => {
    const me = await signUp(server);
    const slug = freshSlug();
    const space = dataOf(await api.createSpace(me.token, { name: "  Book club  ", slug })).createSpace;
    expect(space).toMatchObject({ name: "Book club", slug, owner: { id: me.user.id }, viewerRole: "ADMIN" });
    expect(space.members).toEqual([
      { id: expect.any(String), role: "ADMIN", user: { id: me.user.id, email: me.email }, space: { id: space.id }, createdAt: expect.any(String) },
    ]);
    expect(space.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const row = await prisma.space.findUniqueOrThrow({ where: { id: space.id }, include: { members: true } });
    expect(row).toMatchObject({ name: "Book club", slug, ownerId: me.user.id });
    expect(row.members.map((m) => [m.userId, m.role])).toEqual([[me.user.id, "ADMIN"]]);
  });

  it("accepts names of 4 and 50 characters and slugs of 4 and 16 letters or digits", async () => {
    const me = await signUp(server);
    const base = freshSlug();
    for (const input of [
      { name: "abcd", slug: `${base}Ab`.slice(-4) },
      { name: "n".repeat(50), slug: `Z9${base}`.padEnd(16, "0").slice(0, 16) },
    ]) {
      expect(dataOf(await api.createSpace(me.token, input)).createSpace).toMatchObject(input);
    }
  });

  it.each([
    [{ name: "abc", slug: "valid1" }, "name"],
    [{ name: "   abc   ", slug: "valid1" }, "name"],
    [{ name: "n".repeat(51), slug: "valid1" }, "name"],
    [{ name: "Valid name", slug: "abc" }, "slug"],
    [{ name: "Valid name", slug: "a".repeat(17) }, "slug"],
    [{ name: "Valid name", slug: "with-dash" }, "slug"],
    [{ name: "Valid name", slug: "with space" }, "slug"],
    [{ name: "Valid name", slug: "ünïcode1" }, "slug"],
  ])("rejects createSpace %j with BAD_USER_INPUT on %s", async (input, field) => {
    const me = await signUp(server);
    await rejected(() => api.createSpace(me.token, input), "BAD_USER_INPUT", field);
  });

  it("rejects a taken slug with CONFLICT, on create and on update", async () => {
    const { owner, space } = await setUp();
    const other = await signUp(server);
    await rejected(() => api.createSpace(other.token, { name: "Copycat", slug: space.slug }), "CONFLICT", "slug");
    const mine = dataOf(await api.createSpace(owner.token, { name: "Second", slug: freshSlug() })).createSpace;
    await rejected(() => api.updateSpace(owner.token, mine.id, { slug: space.slug }), "CONFLICT", "slug");
  });

  it("finds a space by id or by slug, and null when it is not mine or does not exist", async () => {
    const { owner, space } = await setUp();
    const stranger = await signUp(server);
    const query = `query ($id: ID, $slug: String) { space(id: $id, slug: $slug) { id slug } }`;
    const expected = { space: { id: space.id, slug: space.slug } };
    expect(dataOf(await gql(query, { id: space.id }, owner.token))).toEqual(expected);
    expect(dataOf(await gql(query, { slug: space.slug }, owner.token))).toEqual(expected);
    expect(dataOf(await gql(query, { id: space.id }, stranger.token))).toEqual({ space: null });
    expect(dataOf(await gql(query, { slug: space.slug }, stranger.token))).toEqual({ space: null });
    expect(dataOf(await gql(query, { slug: "nosuchslug" }, owner.token))).toEqual({ space: null });
    expect(dataOf(await gql(query, { id: "nosuchid" }, owner.token))).toEqual({ space: null });
  });

  it.each([
    ["neither id nor slug", {}],
    ["both id and slug", { id: "someid", slug: "someslug" }],
  ])("rejects space() with %s as BAD_USER_INPUT naming a field", async (_case, variables) => {
    const me = await signUp(server);
    const result = await rejected(
      () => gql(`query ($id: ID, $slug: String) { space(id: $id, slug: $slug) { id } }`, variables, me.token),
      "BAD_USER_INPUT",
    );
    expect(["id", "slug"]).toContain(result.errors?.[0]?.extensions?.field);
  });

  it("updates a space's name and slug", async () => {
    const { owner, space } = await setUp();
    const slug = freshSlug();
    const updated = dataOf(await api.updateSpace(owner.token, space.id, { name: "Renamed", slug })).updateSpace;
    expect(updated).toMatchObject({ id: space.id, name: "Renamed", slug });
    expect(await prisma.space.findUniqueOrThrow({ where: { id: space.id } })).toMatchObject({ name: "Renamed", slug });
    // An empty input changes nothing and still answers with the space.
    expect(dataOf(await api.updateSpace(owner.token, space.id, {})).updateSpace).toMatchObject({ name: "Renamed", slug });
  });

  it.each([
    [{ name: "abc" }, "name"],
    [{ name: null }, "name"],
    [{ slug: "no" }, "slug"],
    [{ slug: null }, "slug"],
  ])("rejects updateSpace %j with BAD_USER_INPUT on %s", async (input, field) => {
    const { owner, space } = await setUp();
    await rejected(() => api.updateSpace(owner.token, space.id, input), "BAD_USER_INPUT", field);
  });

  it("deletes a space with its memberships, lists and todos, and returns its id", async () => {
    const { owner, space, list, todo } = await setUp();
    expect(dataOf(await api.deleteSpace(owner.token, space.id))).toEqual({ deleteSpace: space.id });
    expect(await prisma.space.findUnique({ where: { id: space.id } })).toBeNull();
    expect(await prisma.spaceMember.count({ where: { spaceId: space.id } })).toBe(0);
    expect(await prisma.list.findUnique({ where: { id: list.id } })).toBeNull();
    expect(await prisma.todo.findUnique({ where: { id: todo.id } })).toBeNull();
    await rejected(() => api.deleteSpace(owner.token, space.id), "NOT_FOUND");
  });
});

describe("space members", () => {
  it("adds a member (USER by default, or ADMIN), who then sees the space", async () => {
    const { owner, space } = await setUp();
    const [plain, admin] = [await signUp(server), await signUp(server)];
    const added = dataOf(await api.addSpaceMember(owner.token, space.id, plain.email.toUpperCase())).addSpaceMember;
    expect(added).toMatchObject({ role: "USER", user: { id: plain.user.id, email: plain.email }, space: { id: space.id } });
    const addedAdmin = dataOf(await api.addSpaceMember(owner.token, space.id, admin.email, "ADMIN")).addSpaceMember;
    expect(addedAdmin.role).toBe("ADMIN");

    const seen = dataOf(
      await gql<{ space: Space }>(`query ($id: ID!) { space(id: $id) { ${SPACE} } }`, { id: space.id }, plain.token),
    ).space;
    expect(seen.viewerRole).toBe("USER");
    expect(seen.members.map((m) => [m.user.id, m.role])).toEqual([
      [owner.user.id, "ADMIN"],
      [plain.user.id, "USER"],
      [admin.user.id, "ADMIN"],
    ]);
    const rows = await prisma.spaceMember.findMany({ where: { spaceId: space.id }, orderBy: { createdAt: "asc" } });
    expect(rows.map((m) => [m.userId, m.role])).toEqual(seen.members.map((m) => [m.user.id, m.role]));
  });

  it("rejects adding a user who is already a member with CONFLICT", async () => {
    const { owner, space } = await setUp();
    const friend = await signUp(server);
    dataOf(await api.addSpaceMember(owner.token, space.id, friend.email));
    await rejected(() => api.addSpaceMember(owner.token, space.id, friend.email, "ADMIN"), "CONFLICT");
  });

  it("rejects an unknown email with NOT_FOUND and a malformed one with BAD_USER_INPUT", async () => {
    const { owner, space } = await setUp();
    await rejected(() => api.addSpaceMember(owner.token, space.id, `nobody-${newId("x")}@example.com`), "NOT_FOUND");
    await rejected(() => api.addSpaceMember(owner.token, space.id, "not-an-email"), "BAD_USER_INPUT", "email");
  });

  it("promotes and demotes members", async () => {
    const { owner, space } = await setUp();
    const friend = await signUp(server);
    const member = dataOf(await api.addSpaceMember(owner.token, space.id, friend.email)).addSpaceMember;
    expect(dataOf(await api.updateSpaceMember(owner.token, member.id, "ADMIN")).updateSpaceMember).toMatchObject({
      id: member.id,
      role: "ADMIN",
      user: { id: friend.user.id },
    });
    // With a second admin, the first may step down.
    const ownMembership = await prisma.spaceMember.findFirstOrThrow({ where: { spaceId: space.id, userId: owner.user.id } });
    expect(dataOf(await api.updateSpaceMember(owner.token, ownMembership.id, "USER")).updateSpaceMember.role).toBe("USER");
    expect((await prisma.spaceMember.findUniqueOrThrow({ where: { id: ownMembership.id } })).role).toBe("USER");
  });

  it("refuses to demote or remove the last ADMIN with CONFLICT", async () => {
    const { owner, space } = await setUp();
    const friend = await signUp(server);
    dataOf(await api.addSpaceMember(owner.token, space.id, friend.email));
    const ownMembership = await prisma.spaceMember.findFirstOrThrow({ where: { spaceId: space.id, userId: owner.user.id } });
    await rejected(() => api.updateSpaceMember(owner.token, ownMembership.id, "USER"), "CONFLICT");
    await rejected(() => api.removeSpaceMember(owner.token, ownMembership.id), "CONFLICT");
    // Setting ADMIN on the last admin keeps one: allowed.
    expect(dataOf(await api.updateSpaceMember(owner.token, ownMembership.id, "ADMIN")).updateSpaceMember.role).toBe("ADMIN");
  });

  it("removes a member, and lets a member leave", async () => {
    const { owner, space } = await setUp();
    const [first, second] = [await signUp(server), await signUp(server)];
    const removed = dataOf(await api.addSpaceMember(owner.token, space.id, first.email)).addSpaceMember;
    const leaving = dataOf(await api.addSpaceMember(owner.token, space.id, second.email)).addSpaceMember;
    expect(dataOf(await api.removeSpaceMember(owner.token, removed.id))).toEqual({ removeSpaceMember: removed.id });
    expect(dataOf(await api.removeSpaceMember(second.token, leaving.id))).toEqual({ removeSpaceMember: leaving.id });
    expect(await prisma.spaceMember.count({ where: { id: { in: [removed.id, leaving.id] } } })).toBe(0);
    const seen = await gql<{ space: Ref | null }>(`query ($id: ID!) { space(id: $id) { id } }`, { id: space.id }, second.token);
    expect(dataOf(seen).space).toBeNull();
  });
});

describe("lists", () => {
  it("creates public (by default) and private lists owned by the caller", async () => {
    const { owner, space } = await setUp();
    const open = dataOf(await api.createList(owner.token, { spaceId: space.id, title: "  Chores " })).createList;
    expect(open).toMatchObject({ title: "Chores", private: false, owner: { id: owner.user.id }, space: { id: space.id } });
    const closed = dataOf(await api.createList(owner.token, { spaceId: space.id, title: "x", private: true })).createList;
    expect(closed.private).toBe(true);
    const longest = dataOf(await api.createList(owner.token, { spaceId: space.id, title: "t".repeat(100) })).createList;
    expect(longest.title).toHaveLength(100);
    expect(await prisma.list.findUniqueOrThrow({ where: { id: closed.id } })).toMatchObject({
      ownerId: owner.user.id,
      spaceId: space.id,
      private: true,
      title: "x",
    });
  });

  it.each([[""], ["   "], ["t".repeat(101)]])("rejects the list title %j with BAD_USER_INPUT", async (title) => {
    const { owner, space, list } = await setUp();
    await rejected(() => api.createList(owner.token, { spaceId: space.id, title }), "BAD_USER_INPUT", "title");
    await rejected(() => api.updateList(owner.token, list.id, { title }), "BAD_USER_INPUT", "title");
  });

  it("rejects null for a list's title or privacy", async () => {
    const { owner, list } = await setUp();
    await rejected(() => api.updateList(owner.token, list.id, { title: null }), "BAD_USER_INPUT", "title");
    await rejected(() => api.updateList(owner.token, list.id, { private: null }), "BAD_USER_INPUT", "private");
  });

  it("updates a list's title and privacy", async () => {
    const { owner, list } = await setUp();
    const updated = dataOf(await api.updateList(owner.token, list.id, { title: "Renamed", private: true })).updateList;
    expect(updated).toMatchObject({ id: list.id, title: "Renamed", private: true });
    const onlyTitle = dataOf(await api.updateList(owner.token, list.id, { title: "Again" })).updateList;
    expect(onlyTitle).toMatchObject({ title: "Again", private: true });
    expect(await prisma.list.findUniqueOrThrow({ where: { id: list.id } })).toMatchObject({ title: "Again", private: true });
  });

  it("deletes a list with its todos and returns its id", async () => {
    const { owner, list, todo } = await setUp();
    expect(dataOf(await api.deleteList(owner.token, list.id))).toEqual({ deleteList: list.id });
    expect(await prisma.list.findUnique({ where: { id: list.id } })).toBeNull();
    expect(await prisma.todo.findUnique({ where: { id: todo.id } })).toBeNull();
    await rejected(() => api.deleteList(owner.token, list.id), "NOT_FOUND");
  });

  it("reads a list by id with its owner, space and todos", async () => {
    const { owner, space, list, todo } = await setUp();
    const query = `query ($id: ID!) { list(id: $id) { ${LIST} todos { ${PAGE("id title")} } } }`;
    const read = dataOf(await gql<{ list: List & { todos: Connection<Ref> } }>(query, { id: list.id }, owner.token)).list;
    expect(read).toMatchObject({ id: list.id, title: "Groceries", private: false, owner: { id: owner.user.id }, space: { id: space.id } });
    expect(read.todos.nodes).toEqual([{ id: todo.id }]);
    expect(read.todos.totalCount).toBe(1);
    expect(dataOf(await gql(query, { id: "nosuchlist" }, owner.token))).toEqual({ list: null });
  });
});

describe("todos", () => {
  it("creates a todo owned by the caller, open", async () => {
    const { owner, list } = await setUp();
    const todo = dataOf(await api.createTodo(owner.token, { listId: list.id, title: " Bread " })).createTodo;
    expect(todo).toMatchObject({ title: "Bread", completed: false, completedAt: null, owner: { id: owner.user.id }, list: { id: list.id } });
    expect(await prisma.todo.findUniqueOrThrow({ where: { id: todo.id } })).toMatchObject({ ownerId: owner.user.id, listId: list.id });
  });

  it.each([[""], ["  "], ["t".repeat(101)]])("rejects the todo title %j with BAD_USER_INPUT", async (title) => {
    const { owner, list, todo } = await setUp();
    await rejected(() => api.createTodo(owner.token, { listId: list.id, title }), "BAD_USER_INPUT", "title");
    await rejected(() => api.updateTodo(owner.token, todo.id, { title }), "BAD_USER_INPUT", "title");
  });

  it("sets completedAt to now on completed: true (every time) and clears it on false", async () => {
    const { owner, todo } = await setUp();
    const completeAt = async () => {
      const before = Date.now();
      const updated = dataOf(await api.updateTodo(owner.token, todo.id, { completed: true })).updateTodo;
      const after = Date.now();
      expect(updated.completed).toBe(true);
      const at = Date.parse(updated.completedAt ?? "");
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(after);
      expect((await prisma.todo.findUniqueOrThrow({ where: { id: todo.id } })).completedAt?.getTime()).toBe(at);
      return at;
    };
    const first = await completeAt();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await completeAt()).toBeGreaterThan(first);

    const reopened = dataOf(await api.updateTodo(owner.token, todo.id, { completed: false })).updateTodo;
    expect(reopened).toMatchObject({ completed: false, completedAt: null });
    expect((await prisma.todo.findUniqueOrThrow({ where: { id: todo.id } })).completedAt).toBeNull();
  });

  it("renames a todo without touching its completion", async () => {
    const { owner, todo } = await setUp();
    dataOf(await api.updateTodo(owner.token, todo.id, { completed: true }));
    const completedAt = (await prisma.todo.findUniqueOrThrow({ where: { id: todo.id } })).completedAt;
    const renamed = dataOf(await api.updateTodo(owner.token, todo.id, { title: "Oat milk" })).updateTodo;
    expect(renamed).toMatchObject({ title: "Oat milk", completed: true, completedAt: completedAt?.toISOString() });
    await rejected(() => api.updateTodo(owner.token, todo.id, { completed: null }), "BAD_USER_INPUT", "completed");
  });

  it("deletes a todo and returns its id", async () => {
    const { owner, todo } = await setUp();
    expect(dataOf(await api.deleteTodo(owner.token, todo.id))).toEqual({ deleteTodo: todo.id });
    expect(await prisma.todo.findUnique({ where: { id: todo.id } })).toBeNull();
    await rejected(() => api.deleteTodo(owner.token, todo.id), "NOT_FOUND");
  });

  it("reads a todo by id with its owner and list", async () => {
    const { owner, list, todo } = await setUp();
    const read = dataOf(await gql<{ todo: Todo }>(`query ($id: ID!) { todo(id: $id) { ${TODO} } }`, { id: todo.id }, owner.token)).todo;
    expect(read).toEqual({ ...todo, owner: { id: owner.user.id }, list: { id: list.id } });
    expect(dataOf(await gql(`{ todo(id: "nosuchtodo") { id } }`, {}, owner.token))).toEqual({ todo: null });
  });
});

describe("pagination", () => {
  // Worlds written through the raw client so that the test decides the
  // timestamps and ids, including ties on createdAt.
  async function paginationWorld() {
    const build = worldBuilder();
    const me = build.user("Me");
    const other = build.user("Other");
    const spaces = [0, 1, 2, 3, 4].map(() => build.space(me, [[other, "USER"]]));
    const space = spaces[0]!;
    const mine = [0, 1, 2].map(() => build.list(space, me));
    build.list(space, other, true); // private to other: never visible to me
    const shared = build.list(space, other);
    const list = mine[0]!;
    const todos = [0, 1, 2, 3, 4, 5].map((i) => build.todo(list, i % 2 ? other : me, i % 3 === 0));
    await insertWorlds(prisma, [build.world]);
    return { me, other, spaces, space, lists: [...mine, shared], list, todos, token: await mintToken(prisma, me.id) };
  }

  /** Follows endCursor from the first page to the last. */
  async function pageThrough<Node extends Ref>(
    fetchPage: (after: string | null) => Promise<Connection<Node>>,
  ): Promise<{ ids: string[]; pages: Connection<Node>[] }> {
    const pages: Connection<Node>[] = [];
    let after: string | null = null;
    do {
      const page: Connection<Node> = await fetchPage(after);
      pages.push(page);
      expect(page.edges.map((edge) => edge.node.id)).toEqual(page.nodes.map((node) => node.id));
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
      // Relay: a page asked for with 'after' starts after the first row.
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after !== null && pages.length < 20);
    return { ids: pages.flatMap((page) => page.nodes.map((node) => node.id)), pages };
  }

  it("pages through my spaces oldest first, with a stable totalCount", async () => {
    const { spaces, token } = await paginationWorld();
    const query = `query ($after: String) { spaces(first: 2, after: $after) { ${PAGE("id")} } }`;
    const { ids, pages } = await pageThrough(async (after) =>
      dataOf(await gql<{ spaces: Connection<Ref> }>(query, { after }, token)).spaces,
    );
    expect(ids).toEqual(spaces.map((space) => space.id));
    expect(pages.map((page) => page.nodes.length)).toEqual([2, 2, 1]);
    expect(pages.map((page) => page.pageInfo.hasNextPage)).toEqual([true, true, false]);
    expect(pages.every((page) => page.totalCount === 5)).toBe(true);
  });

  it("pages through a space's lists, counting only the lists I may read", async () => {
    const { space, lists, token } = await paginationWorld();
    const query = `query ($id: ID!, $after: String) { space(id: $id) { lists(first: 3, after: $after) { ${PAGE("id")} } } }`;
    const { ids, pages } = await pageThrough(async (after) =>
      dataOf(await gql<{ space: { lists: Connection<Ref> } }>(query, { id: space.id, after }, token)).space.lists,
    );
    expect(ids).toEqual(lists.map((list) => list.id));
    expect(pages.map((page) => page.totalCount)).toEqual([4, 4]);
  });

  it("pages through a list's todos, filtered by completion, with totalCount following the filter", async () => {
    const { list, todos, token } = await paginationWorld();
    const query = `query ($id: ID!, $after: String, $completed: Boolean) {
      list(id: $id) { todos(first: 2, after: $after, completed: $completed) { ${PAGE("id completed")} } } }`;
    for (const completed of [undefined, true, false]) {
      const expected = todos.filter((todo) => completed === undefined || (todo.completedAt !== null) === completed);
      const { ids, pages } = await pageThrough(async (after) =>
        dataOf(await gql<{ list: { todos: Connection<Ref> } }>(query, { id: list.id, after, completed }, token)).list.todos,
      );
      expect(ids).toEqual(expected.map((todo) => todo.id));
      expect(new Set(pages.map((page) => page.totalCount))).toEqual(new Set([expected.length]));
    }
    expect(todos.filter((todo) => todo.completedAt !== null)).toHaveLength(2);
  });

  it("orders by createdAt, then id, when timestamps tie", async () => {
    const build = worldBuilder();
    const me = build.user("Me");
    const space = build.space(me);
    const list = build.list(space, me);
    const instant = new Date(Date.UTC(2026, 5, 1));
    // Inserted out of id order, all at one instant, plus one earlier with the largest id.
    const ids = ["zz9", "aa1", "mm5", "bb2"].map((suffix) => newId("t") + suffix);
    for (const id of ids) build.world.todos.push({ id, listId: list.id, ownerId: me.id, title: id, completedAt: null, createdAt: instant });
    const earliest = { id: `${newId("t")}zzzz`, listId: list.id, ownerId: me.id, title: "early", completedAt: null, createdAt: new Date(instant.getTime() - 1) };
    build.world.todos.push(earliest);
    await insertWorlds(prisma, [build.world]);
    const token = await mintToken(prisma, me.id);
    const query = `query ($id: ID!, $after: String) { list(id: $id) { todos(first: 1, after: $after) { ${PAGE("id")} } } }`;
    const { ids: seen } = await pageThrough(async (after) =>
      dataOf(await gql<{ list: { todos: Connection<Ref> } }>(query, { id: list.id, after }, token)).list.todos,
    );
    expect(seen).toEqual([earliest.id, ...[...ids].sort()]);
  });

  it("answers first: 0 with an empty page that still knows what follows", async () => {
    const { token, spaces } = await paginationWorld();
    const page = dataOf(await gql<{ spaces: Connection<Ref> }>(`{ spaces(first: 0) { ${PAGE("id")} } }`, {}, token)).spaces;
    expect(page).toEqual({ edges: [], nodes: [], pageInfo: { hasNextPage: true, hasPreviousPage: false, startCursor: null, endCursor: null }, totalCount: spaces.length });
    const full = dataOf(await gql<{ spaces: Connection<Ref> }>(`{ spaces(first: 100) { ${PAGE("id")} } }`, {}, token)).spaces;
    expect(full.nodes).toHaveLength(spaces.length);
    expect(full.pageInfo.hasNextPage).toBe(false);
  });

  /** spaces, Space.lists and List.todos, each asked with one bad page argument: BAD_USER_INPUT naming it. */
  async function rejectedAtEveryLevel(argument: "first" | "after", value: unknown) {
    const { token, space, list } = await paginationWorld();
    const type = argument === "first" ? "Int" : "String";
    const levels = [
      { query: `query ($v: ${type}) { spaces(${argument}: $v) { totalCount } }`, variables: {} },
      { query: `query ($id: ID!, $v: ${type}) { space(id: $id) { lists(${argument}: $v) { totalCount } } }`, variables: { id: space.id } },
      { query: `query ($id: ID!, $v: ${type}) { list(id: $id) { todos(${argument}: $v) { totalCount } } }`, variables: { id: list.id } },
    ];
    for (const level of levels) {
      await rejected(() => gql(level.query, { ...level.variables, v: value }, token), "BAD_USER_INPUT", argument);
    }
  }

  it.each([-1, 101])("rejects first: %i with BAD_USER_INPUT on first, at every level", (first) =>
    rejectedAtEveryLevel("first", first),
  );

  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  it.each([
    ["garbage", "not a cursor"],
    ["empty", ""],
    ["not JSON", Buffer.from("hello").toString("base64url")],
    ["wrong shape", encode({ createdAt: 1, id: "x" })],
    ["id not a string", encode([1, 2])],
    ["time not an integer", encode([1.5, "abc"])],
    ["time out of range", encode([9_000_000_000_000_000, "abc"])],
    ["valid with junk around it", `%%${encode([1, "abc"])}!!`],
  ])("rejects a malformed cursor (%s) with BAD_USER_INPUT on after, at every level", (_case, after) =>
    rejectedAtEveryLevel("after", after),
  );
});

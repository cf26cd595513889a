// Every row of shared/api/ACCESS.md against every kind of caller, through the
// real server. Each case runs on a fresh world written through the raw client:
//
//   owner    created the space, owns the public list L (todo T) and the private
//            list P (todo U), and has the role USER, so that owning shows
//            exactly what it grants on its own (on a space: nothing);
//   admin    the space's only ADMIN; member, a USER member;
//   stranger signed in, in no space; outsider, the user an admin may add;
//   anonymous no token.
//
// Variant "owner left": the owner's membership is gone (lists and todos stay),
// which ACCESS.md distinguishes for lists ("... and am still a member").
//
// Outcomes: ok (the data, or the write took effect), null (a single-object read
// answers null), hidden (a connection leaves the row out and does not count
// it), or an error code; every denied write is checked to have changed nothing.
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { uniqueEmail, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { expectRejected, insertWorlds, mintToken, newId, serverPerFile, snapshot, worldBuilder, type ListRow, type TodoRow, type UserRow } from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

const IDENTITIES = ["anonymous", "stranger", "member", "admin", "owner"] as const;
type Identity = (typeof IDENTITIES)[number];
type ErrorCode = "UNAUTHENTICATED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "GRAPHQL_VALIDATION_FAILED";
type Outcome = "ok" | "null" | "hidden" | ErrorCode;
type Variant = "owner left";

function fixture(variant?: Variant) {
  const build = worldBuilder();
  const owner = build.user("Owner");
  const admin = build.user("Admin");
  const member = build.user("Member");
  const stranger = build.user("Stranger");
  const outsider = build.user("Outsider");
  const space = build.space(owner, [[admin, "ADMIN"], [member, "USER"]], "USER");
  const [ownerMembership, adminMembership, memberMembership] = build.world.members;
  const L = build.list(space, owner);
  const P = build.list(space, owner, true);
  const T = build.todo(L, owner);
  const U = build.todo(P, owner);
  if (variant === "owner left") build.world.members.splice(build.world.members.indexOf(ownerMembership!), 1);
  const users: Record<Exclude<Identity, "anonymous">, UserRow> = { owner, admin, member, stranger };
  return {
    world: build.world,
    users,
    outsider,
    space,
    memberships: { owner: ownerMembership!, admin: adminMembership!, member: memberMembership! },
    L,
    P,
    T,
    U,
  };
}
type Fixture = ReturnType<typeof fixture>;

interface CheckContext {
  w: Fixture;
  /** The caller; undefined when anonymous. */
  me: UserRow | undefined;
  data: Record<string, unknown>;
  /** For reads: whether the row must be visible (ok) or absent (hidden). */
  visible: boolean;
}

interface Case {
  model: "User" | "Space" | "SpaceMember" | "List" | "Todo";
  operation: string;
  /** The row of ACCESS.md, in its words. */
  rule: string;
  variant?: Variant;
  request(w: Fixture, me: UserRow | undefined): { query: string; variables?: Record<string, unknown> };
  expected: Record<Identity, Outcome>;
  /** Runs for ok and hidden: asserts the answer and the write's effect. */
  check(context: CheckContext): Promise<void> | void;
}

// Outcome rows that recur: everyone signed in, or only some identities.
const everyone = (outcome: Outcome): Record<Identity, Outcome> => ({
  anonymous: "UNAUTHENTICATED",
  stranger: outcome,
  member: outcome,
  admin: outcome,
  owner: outcome,
});
const outcomes = (stranger: Outcome, member: Outcome, admin: Outcome, owner: Outcome): Record<Identity, Outcome> => ({
  anonymous: "UNAUTHENTICATED",
  stranger,
  member,
  admin,
  owner,
});

const idOf = (value: unknown) => (value as { id: string } | null)?.id;
const connectionIds = (value: unknown) => {
  const connection = value as { nodes: { id: string }[]; totalCount: number };
  expect(connection.totalCount).toBe(connection.nodes.length);
  return connection.nodes.map((node) => node.id);
};
/** For a connection read: the row is there (ok) or absent and uncounted (hidden). */
const expectInConnection = (value: unknown, id: string, visible: boolean) =>
  visible ? expect(connectionIds(value)).toContain(id) : expect(connectionIds(value)).not.toContain(id);

const readById = (field: "user" | "space" | "list" | "todo", target: (w: Fixture) => { id: string }) => ({
  request: (w: Fixture) => ({ query: `query ($id: ID!) { ${field}(id: $id) { id } }`, variables: { id: target(w).id } }),
  check: ({ w, data }: CheckContext) => expect(idOf(data[field])).toBe(target(w).id),
});

const updateList = (target: (w: Fixture) => ListRow) => ({
  request: (w: Fixture) => ({
    query: `mutation ($id: ID!) { updateList(id: $id, input: { title: "Changed" }) { id title } }`,
    variables: { id: target(w).id },
  }),
  check: async ({ w }: CheckContext) =>
    expect((await prisma.list.findUniqueOrThrow({ where: { id: target(w).id } })).title).toBe("Changed"),
});
const deleteList = (target: (w: Fixture) => ListRow) => ({
  request: (w: Fixture) => ({ query: `mutation ($id: ID!) { deleteList(id: $id) }`, variables: { id: target(w).id } }),
  check: async ({ w, data }: CheckContext) => {
    expect(data.deleteList).toBe(target(w).id);
    expect(await prisma.list.findUnique({ where: { id: target(w).id } })).toBeNull();
  },
});
const createTodo = (target: (w: Fixture) => ListRow) => ({
  request: (w: Fixture) => ({
    query: `mutation ($listId: ID!) { createTodo(input: { listId: $listId, title: "New" }) { id } }`,
    variables: { listId: target(w).id },
  }),
  check: async ({ w, me, data }: CheckContext) =>
    expect(await prisma.todo.findUniqueOrThrow({ where: { id: idOf(data.createTodo) } })).toMatchObject({
      listId: target(w).id,
      ownerId: me?.id,
    }),
});
const updateTodo = (target: (w: Fixture) => TodoRow) => ({
  request: (w: Fixture) => ({
    query: `mutation ($id: ID!) { updateTodo(id: $id, input: { title: "Changed", completed: true }) { id } }`,
    variables: { id: target(w).id },
  }),
  check: async ({ w }: CheckContext) =>
    expect(await prisma.todo.findUniqueOrThrow({ where: { id: target(w).id } })).toMatchObject({
      title: "Changed",
      completedAt: expect.any(Date),
    }),
});
const deleteTodo = (target: (w: Fixture) => TodoRow) => ({
  request: (w: Fixture) => ({ query: `mutation ($id: ID!) { deleteTodo(id: $id) }`, variables: { id: target(w).id } }),
  check: async ({ w }: CheckContext) => expect(await prisma.todo.findUnique({ where: { id: target(w).id } })).toBeNull(),
});
const createList = {
  request: (w: Fixture) => ({
    query: `mutation ($spaceId: ID!) { createList(input: { spaceId: $spaceId, title: "New" }) { id } }`,
    variables: { spaceId: w.space.id },
  }),
  check: async ({ w, me, data }: CheckContext) =>
    expect(await prisma.list.findUniqueOrThrow({ where: { id: idOf(data.createList) } })).toMatchObject({
      spaceId: w.space.id,
      ownerId: me?.id,
    }),
};
const setRole = (whose: "owner" | "admin", role: "USER" | "ADMIN") => ({
  request: (w: Fixture) => ({
    query: `mutation ($id: ID!) { updateSpaceMember(id: $id, role: ${role}) { id role } }`,
    variables: { id: w.memberships[whose].id },
  }),
  check: async ({ w }: CheckContext) =>
    expect((await prisma.spaceMember.findUniqueOrThrow({ where: { id: w.memberships[whose].id } })).role).toBe(role),
});
const removeMember = (whose: "owner" | "admin" | "member") => ({
  request: (w: Fixture) => ({ query: `mutation ($id: ID!) { removeSpaceMember(id: $id) }`, variables: { id: w.memberships[whose].id } }),
  check: async ({ w, data }: CheckContext) => {
    expect(data.removeSpaceMember).toBe(w.memberships[whose].id);
    expect(await prisma.spaceMember.findUnique({ where: { id: w.memberships[whose].id } })).toBeNull();
  },
});

const cases: Case[] = [
  // ---- User
  {
    model: "User", operation: "read", rule: "the user is me, or shares at least one space with me",
    ...readById("user", (w) => w.users.owner),
    expected: outcomes("null", "ok", "ok", "ok"),
  },
  {
    model: "User", operation: "read", rule: "a user who shares no space with me is not readable (the stranger)",
    ...readById("user", (w) => w.users.stranger),
    expected: outcomes("ok", "null", "null", "null"),
  },
  {
    model: "User", operation: "read", variant: "owner left",
    rule: "a user who owns a list or todo I may read is readable (a member who left)",
    ...readById("user", (w) => w.users.owner),
    expected: outcomes("null", "ok", "ok", "ok"),
  },
  {
    model: "User", operation: "read email", rule: "email: visible to the user and to users who share a space with them now",
    request: (w) => ({ query: `query ($id: ID!) { user(id: $id) { id email } }`, variables: { id: w.users.member.id } }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, data }) => expect(data.user).toEqual({ id: w.users.member.id, email: w.users.member.email }),
  },
  {
    model: "User", operation: "read email", variant: "owner left",
    rule: "email: null for anyone else who may read the user (a member who left, to those still in the space)",
    request: (w) => ({ query: `query ($id: ID!) { user(id: $id) { id email } }`, variables: { id: w.users.owner.id } }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, me, data }) =>
      expect(data.user).toEqual({ id: w.users.owner.id, email: me?.id === w.users.owner.id ? w.users.owner.email : null }),
  },
  {
    model: "User", operation: "read owner", variant: "owner left",
    rule: "a member leaving never breaks anyone's query: lists and todos stay readable, owner included",
    request: (w) => ({
      query: `query ($id: ID!) { list(id: $id) { id owner { id email } todos { nodes { id owner { id email } } } } }`,
      variables: { id: w.L.id },
    }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, me, data }) => {
      const owner = { id: w.users.owner.id, email: me?.id === w.users.owner.id ? w.users.owner.email : null };
      expect(data.list).toEqual({ id: w.L.id, owner, todos: { nodes: [{ id: w.T.id, owner }] } });
    },
  },
  {
    model: "User", operation: "read (me)", rule: "anonymous callers may call me, which returns null for them",
    request: () => ({ query: `{ me { id } }` }),
    expected: { ...everyone("ok"), anonymous: "null" },
    check: ({ me, data }) => expect(idOf(data.me)).toBe(me?.id),
  },
  {
    model: "User", operation: "read", rule: "the password hash is never readable through any path",
    request: (w) => ({ query: `query ($id: ID!) { user(id: $id) { id passwordHash } }`, variables: { id: w.users.owner.id } }),
    expected: { ...everyone("GRAPHQL_VALIDATION_FAILED"), anonymous: "GRAPHQL_VALIDATION_FAILED" },
    check: () => undefined,
  },
  {
    model: "User", operation: "create", rule: "anyone, through signUp",
    request: () => ({
      query: `mutation ($email: String!) { signUp(input: { email: $email, password: "long-enough-1" }) { user { id email } } }`,
      variables: { email: uniqueEmail("matrix") },
    }),
    expected: { ...everyone("ok"), anonymous: "ok" },
    check: async ({ data }) => {
      const user = (data.signUp as { user: { id: string; email: string } }).user;
      expect((await prisma.user.findUniqueOrThrow({ where: { id: user.id } })).email).toBe(user.email);
    },
  },
  {
    model: "User", operation: "update", rule: "the user is me (updateMe)",
    request: () => ({ query: `mutation { updateMe(input: { name: "Renamed" }) { id name } }` }),
    expected: everyone("ok"),
    check: async ({ w, me, data }) => {
      expect(data.updateMe).toEqual({ id: me?.id, name: "Renamed" });
      const names = await prisma.user.findMany({ where: { id: { in: w.world.users.map((u) => u.id) } } });
      for (const user of names) expect(user.name === "Renamed").toBe(user.id === me?.id);
    },
  },
  {
    model: "User", operation: "delete", rule: "not offered by the API",
    request: (w) => ({ query: `mutation ($id: ID!) { deleteUser(id: $id) }`, variables: { id: w.users.owner.id } }),
    expected: { ...everyone("GRAPHQL_VALIDATION_FAILED"), anonymous: "GRAPHQL_VALIDATION_FAILED" },
    check: () => undefined,
  },

  // ---- Space
  {
    model: "Space", operation: "create", rule: "any signed-in user; the creator becomes owner and an ADMIN member",
    request: () => ({ query: `mutation ($slug: String!) { createSpace(input: { name: "New space", slug: $slug }) { id } }`, variables: { slug: newId("sl") } }),
    expected: everyone("ok"),
    check: async ({ me, data }) => {
      const space = await prisma.space.findUniqueOrThrow({ where: { id: idOf(data.createSpace) }, include: { members: true } });
      expect(space.ownerId).toBe(me?.id);
      expect(space.members.map((m) => [m.userId, m.role])).toEqual([[me?.id, "ADMIN"]]);
    },
  },
  {
    model: "Space", operation: "read", rule: "I am a member (space by id)",
    ...readById("space", (w) => w.space),
    expected: outcomes("null", "ok", "ok", "ok"),
  },
  {
    model: "Space", operation: "read", rule: "I am a member (space by slug)",
    request: (w) => ({ query: `query ($slug: String!) { space(slug: $slug) { id } }`, variables: { slug: w.space.slug } }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, data }) => expect(idOf(data.space)).toBe(w.space.id),
  },
  {
    model: "Space", operation: "read", rule: "I am a member (the spaces connection)",
    request: () => ({ query: `{ spaces(first: 100) { totalCount nodes { id } } }` }),
    expected: outcomes("hidden", "ok", "ok", "ok"),
    check: ({ w, data, visible }) => expectInConnection(data.spaces, w.space.id, visible),
  },
  {
    model: "Space", operation: "update", rule: "I am an admin (owning it alone grants nothing)",
    request: (w) => ({ query: `mutation ($id: ID!) { updateSpace(id: $id, input: { name: "Changed" }) { id } }`, variables: { id: w.space.id } }),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "FORBIDDEN"),
    check: async ({ w }) => expect((await prisma.space.findUniqueOrThrow({ where: { id: w.space.id } })).name).toBe("Changed"),
  },
  {
    model: "Space", operation: "delete", rule: "I am an admin (owning it alone grants nothing)",
    request: (w) => ({ query: `mutation ($id: ID!) { deleteSpace(id: $id) }`, variables: { id: w.space.id } }),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "FORBIDDEN"),
    check: async ({ w }) => {
      expect(await prisma.space.findUnique({ where: { id: w.space.id } })).toBeNull();
      expect(await prisma.list.count({ where: { spaceId: w.space.id } })).toBe(0);
    },
  },

  // ---- SpaceMember
  {
    model: "SpaceMember", operation: "create", rule: "I am an admin of the space, and the new member is not me (adding someone else)",
    request: (w) => ({
      query: `mutation ($spaceId: ID!, $email: String!) { addSpaceMember(spaceId: $spaceId, email: $email) { id role user { id } } }`,
      variables: { spaceId: w.space.id, email: w.outsider.email },
    }),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "FORBIDDEN"),
    check: async ({ w }) =>
      expect(await prisma.spaceMember.findFirstOrThrow({ where: { spaceId: w.space.id, userId: w.outsider.id } })).toMatchObject({ role: "USER" }),
  },
  {
    model: "SpaceMember", operation: "create", rule: "I am an admin of the space, and the new member is not me (adding myself)",
    request: (w, me) => ({
      query: `mutation ($spaceId: ID!, $email: String!) { addSpaceMember(spaceId: $spaceId, email: $email, role: ADMIN) { id } }`,
      variables: { spaceId: w.space.id, email: me?.email ?? w.outsider.email },
    }),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN"),
    check: () => undefined,
  },
  {
    model: "SpaceMember", operation: "read", rule: "I am a member of that space",
    request: (w) => ({ query: `query ($id: ID!) { space(id: $id) { members { id user { id } } } }`, variables: { id: w.space.id } }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, data }) => {
      const members = (data.space as { members: { id: string; user: { id: string } }[] }).members;
      expect(members.map((m) => m.id)).toEqual(w.world.members.map((m) => m.id));
    },
  },
  {
    model: "SpaceMember", operation: "update", rule: "I am an admin of the space (promoting the owner's membership)",
    ...setRole("owner", "ADMIN"),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "FORBIDDEN"),
  },
  {
    model: "SpaceMember", operation: "delete", rule: "I am an admin of the space; and anyone may delete their own membership (the owner's)",
    ...removeMember("owner"),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "ok"),
  },
  {
    model: "SpaceMember", operation: "delete", rule: "I am an admin of the space; and anyone may delete their own membership (the member's)",
    ...removeMember("member"),
    expected: outcomes("NOT_FOUND", "ok", "ok", "FORBIDDEN"),
  },
  {
    model: "SpaceMember", operation: "update", rule: "invariant: a space always keeps at least one ADMIN (demoting the only admin)",
    ...setRole("admin", "USER"),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "CONFLICT", "FORBIDDEN"),
  },
  {
    model: "SpaceMember", operation: "delete", rule: "invariant: a space always keeps at least one ADMIN (removing the only admin)",
    ...removeMember("admin"),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "CONFLICT", "FORBIDDEN"),
  },

  // ---- List
  {
    model: "List", operation: "read", rule: "I own it; or I am a member of its space and it is not private (public list)",
    ...readById("list", (w) => w.L),
    expected: outcomes("null", "ok", "ok", "ok"),
  },
  {
    model: "List", operation: "read", rule: "I own it; or I am a member of its space and it is not private (private list)",
    ...readById("list", (w) => w.P),
    expected: outcomes("null", "null", "null", "ok"),
  },
  {
    model: "List", operation: "read", rule: "a connection leaves out and does not count a private list of someone else",
    request: (w) => ({ query: `query ($id: ID!) { space(id: $id) { lists(first: 100) { totalCount nodes { id } } } }`, variables: { id: w.space.id } }),
    expected: outcomes("null", "hidden", "hidden", "ok"),
    check: ({ w, data, visible }) => {
      const lists = (data.space as { lists: unknown }).lists;
      expectInConnection(lists, w.L.id, true);
      expectInConnection(lists, w.P.id, visible);
    },
  },
  {
    model: "List", operation: "create", rule: "the owner is me and I am a member of the space",
    ...createList,
    expected: outcomes("NOT_FOUND", "ok", "ok", "ok"),
  },
  {
    model: "List", operation: "update", rule: "I own it and am still a member of the space; or I am an admin (public list)",
    ...updateList((w) => w.L),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "ok"),
  },
  {
    model: "List", operation: "update", rule: "a private list of someone else is not readable, so NOT_FOUND even for an admin",
    ...updateList((w) => w.P),
    expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok"),
  },
  {
    model: "List", operation: "delete", rule: "I own it; or I am an admin of the space (public list)",
    ...deleteList((w) => w.L),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "ok"),
  },
  {
    model: "List", operation: "delete", rule: "I own it; or I am an admin of the space (private list, readable by its owner only)",
    ...deleteList((w) => w.P),
    expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok"),
  },
  {
    model: "List", operation: "read", rule: "I own it (after leaving the space, public list)", variant: "owner left",
    ...readById("list", (w) => w.L),
    expected: outcomes("null", "ok", "ok", "ok"),
  },
  {
    model: "List", operation: "read", rule: "I own it (after leaving the space, private list)", variant: "owner left",
    ...readById("list", (w) => w.P),
    expected: outcomes("null", "null", "null", "ok"),
  },
  {
    model: "List", operation: "create", rule: "I am a member of the space (the owner has left it)", variant: "owner left",
    ...createList,
    expected: outcomes("NOT_FOUND", "ok", "ok", "NOT_FOUND"),
  },
  {
    model: "List", operation: "update", rule: "I own it and am STILL a member of the space (the owner has left it)", variant: "owner left",
    ...updateList((w) => w.L),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "FORBIDDEN"),
  },
  {
    model: "List", operation: "update", rule: "I own it and am still a member (owner left, private list)", variant: "owner left",
    ...updateList((w) => w.P),
    expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "FORBIDDEN"),
  },
  {
    model: "List", operation: "delete", rule: "I own it (membership not required)", variant: "owner left",
    ...deleteList((w) => w.L),
    expected: outcomes("NOT_FOUND", "FORBIDDEN", "ok", "ok"),
  },
  {
    model: "List", operation: "delete", rule: "I own it (membership not required, private list)", variant: "owner left",
    ...deleteList((w) => w.P),
    expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok"),
  },

  // ---- Todo: every operation exactly when I may read the todo's list
  { model: "Todo", operation: "read", rule: "I may read its list (public list)", ...readById("todo", (w) => w.T), expected: outcomes("null", "ok", "ok", "ok") },
  { model: "Todo", operation: "read", rule: "I may read its list (private list)", ...readById("todo", (w) => w.U), expected: outcomes("null", "null", "null", "ok") },
  {
    model: "Todo", operation: "read", rule: "I may read its list (a list's todos connection)",
    request: (w) => ({ query: `query ($id: ID!) { list(id: $id) { todos(first: 100) { totalCount nodes { id } } } }`, variables: { id: w.L.id } }),
    expected: outcomes("null", "ok", "ok", "ok"),
    check: ({ w, data, visible }) => expectInConnection((data.list as { todos: unknown }).todos, w.T.id, visible),
  },
  { model: "Todo", operation: "create", rule: "I may read its list (public list)", ...createTodo((w) => w.L), expected: outcomes("NOT_FOUND", "ok", "ok", "ok") },
  { model: "Todo", operation: "create", rule: "I may read its list (private list)", ...createTodo((w) => w.P), expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok") },
  { model: "Todo", operation: "update", rule: "I may read its list (public list)", ...updateTodo((w) => w.T), expected: outcomes("NOT_FOUND", "ok", "ok", "ok") },
  { model: "Todo", operation: "update", rule: "I may read its list (private list)", ...updateTodo((w) => w.U), expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok") },
  { model: "Todo", operation: "delete", rule: "I may read its list (public list)", ...deleteTodo((w) => w.T), expected: outcomes("NOT_FOUND", "ok", "ok", "ok") },
  { model: "Todo", operation: "delete", rule: "I may read its list (private list)", ...deleteTodo((w) => w.U), expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok") },
  {
    model: "Todo", operation: "create", rule: "I may read its list (owner left; owns the private list)", variant: "owner left",
    ...createTodo((w) => w.P),
    expected: outcomes("NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "ok"),
  },
  {
    model: "Todo", operation: "update", rule: "I may read its list (owner left; owns the public list)", variant: "owner left",
    ...updateTodo((w) => w.T),
    expected: outcomes("NOT_FOUND", "ok", "ok", "ok"),
  },
];

const title = (c: Case) => `${c.model} ${c.operation}: ${c.rule}${c.variant ? ` [${c.variant}]` : ""}`;

describe.each(cases.map((c) => [title(c), c] as const))("%s", (_title, c) => {
  it.each(IDENTITIES.map((identity) => [identity, c.expected[identity]] as const))("%s -> %s", async (identity, outcome) => {
    const w = fixture(c.variant);
    await insertWorlds(prisma, [w.world]);
    const me = identity === "anonymous" ? undefined : w.users[identity];
    const token = me ? await mintToken(prisma, me.id) : undefined;
    const { query, variables } = c.request(w, me);
    const send = () => server.gql<Record<string, unknown>>(query, variables, token);
    const userIds = w.world.users.map((user) => user.id);

    if (outcome !== "ok" && outcome !== "null" && outcome !== "hidden") {
      await expectRejected(prisma, send, outcome, { userIds });
      return;
    }
    const before = outcome === "ok" ? undefined : await snapshot(prisma, userIds);
    const result: GraphQLResult<Record<string, unknown>> = await send();
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    const data = result.data ?? {};
    if (outcome === "null") {
      for (const value of Object.values(data)) expect(value).toBeNull();
    } else {
      await c.check({ w, me, data, visible: outcome === "ok" });
    }
    // Reads that answer null or hide a row change nothing either.
    if (before) expect(await snapshot(prisma, userIds)).toEqual(before);
  });
});

// A member who leaves never breaks anyone's query (ACCESS.md, User): the lists
// and todos they made stay readable, owner included, and their email is no
// longer shown to the people they shared the space with. Played through the
// API as it happens, then the field rule checked inside the policy client.
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { createPolicyClient, PolicyUsageError } from "../../src/policy/client.js";
import { signUp, uniqueEmail, type TestServer } from "../helpers/server.js";
import { dataOf, serverPerFile } from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

const TREE = `{ spaces { nodes { lists { nodes { title owner { id name email } todos { nodes { title owner { id email } } } } } } } }`;

interface Tree {
  spaces: {
    nodes: {
      lists: {
        nodes: { title: string; owner: { id: string; name: string | null; email: string | null }; todos: { nodes: { title: string; owner: { id: string; email: string | null } }[] } }[];
      };
    }[];
  };
}

async function daveJoinsMakesAndLeaves() {
  const bob = await signUp(server, uniqueEmail("bob"));
  const dave = await signUp(server, uniqueEmail("dave"));
  const space = dataOf(
    await server.gql<{ createSpace: { id: string } }>(
      `mutation ($slug: String!) { createSpace(input: { name: "Bob's", slug: $slug }) { id } }`,
      { slug: `bob${Math.random().toString(36).slice(2, 12)}` },
      bob.token,
    ),
  ).createSpace;
  const membership = dataOf(
    await server.gql<{ addSpaceMember: { id: string } }>(
      `mutation ($s: ID!, $e: String!) { addSpaceMember(spaceId: $s, email: $e) { id } }`,
      { s: space.id, e: dave.user.email },
      bob.token,
    ),
  ).addSpaceMember;
  await server.gql(`mutation { updateMe(input: { name: "Dave" }) { id } }`, {}, dave.token);
  const list = dataOf(
    await server.gql<{ createList: { id: string } }>(
      `mutation ($s: ID!) { createList(input: { spaceId: $s, title: "Dave's list" }) { id } }`,
      { s: space.id },
      dave.token,
    ),
  ).createList;
  dataOf(await server.gql(`mutation ($l: ID!) { createTodo(input: { listId: $l, title: "Dave's todo" }) { id } }`, { l: list.id }, dave.token));
  return { bob, dave, space, membership, list };
}

describe("a member who leaves", () => {
  it("still shows, by name and without email, as the owner of what they made; Bob's query does not fail", async () => {
    const { bob, dave, membership } = await daveJoinsMakesAndLeaves();
    const before = dataOf(await server.gql<Tree>(TREE, {}, bob.token));
    expect(before.spaces.nodes[0]!.lists.nodes[0]!.owner).toEqual({ id: dave.user.id, name: "Dave", email: dave.user.email });

    dataOf(await server.gql(`mutation ($id: ID!) { removeSpaceMember(id: $id) }`, { id: membership.id }, dave.token));

    const result = await server.gql<Tree>(TREE, {}, bob.token);
    const after = dataOf(result);
    const list = after.spaces.nodes[0]!.lists.nodes[0]!;
    expect(list.title).toBe("Dave's list");
    expect(list.owner).toEqual({ id: dave.user.id, name: "Dave", email: null });
    expect(list.todos.nodes).toEqual([{ title: "Dave's todo", owner: { id: dave.user.id, email: null } }]);
    // And by id: readable, email hidden.
    const user = dataOf(await server.gql<{ user: unknown }>(`query ($id: ID!) { user(id: $id) { id email } }`, { id: dave.user.id }, bob.token));
    expect(user.user).toEqual({ id: dave.user.id, email: null });
    // Dave still sees his own email.
    expect(dataOf(await server.gql<{ me: unknown }>(`{ me { email } }`, {}, dave.token)).me).toEqual({ email: dave.user.email });
  });

  it("is not readable at all once nothing of theirs is readable", async () => {
    const { bob, dave, membership, list } = await daveJoinsMakesAndLeaves();
    dataOf(await server.gql(`mutation ($id: ID!) { removeSpaceMember(id: $id) }`, { id: membership.id }, dave.token));
    dataOf(await server.gql(`mutation ($id: ID!) { deleteList(id: $id) }`, { id: list.id }, bob.token));
    const user = dataOf(await server.gql<{ user: unknown }>(`query ($id: ID!) { user(id: $id) { id email } }`, { id: dave.user.id }, bob.token));
    expect(user.user).toBeNull();
  });
});

describe("the email field rule in the policy client", () => {
  it("hides the email on every row the rule does not cover, and refuses to filter, order or group by it", async () => {
    const { bob, dave, membership } = await daveJoinsMakesAndLeaves();
    await prisma.spaceMember.delete({ where: { id: membership.id } });
    const db = createPolicyClient(prisma, { id: bob.user.id });

    const rows = await db.user.findMany({ where: { id: { in: [bob.user.id, dave.user.id] } }, orderBy: { id: "asc" } });
    expect(new Map(rows.map((row) => [row.id, row.email]))).toEqual(
      new Map([
        [bob.user.id, bob.user.email],
        [dave.user.id, null],
      ]),
    );
    expect((await db.user.findUnique({ where: { id: dave.user.id } }))?.email).toBeNull();
    expect((await db.user.findFirst({ where: { id: dave.user.id }, select: { id: true, email: true } }))?.email).toBeNull();

    // Each of these would tell Bob something about Dave's email.
    await expect(db.user.findMany({ where: { email: dave.user.email } })).rejects.toThrow(PolicyUsageError);
    await expect(db.user.findMany({ where: { OR: [{ email: { startsWith: "d" } }] } })).rejects.toThrow(PolicyUsageError);
    await expect(db.user.count({ where: { NOT: { email: { contains: "@" } } } })).rejects.toThrow(PolicyUsageError);
    await expect(db.user.findMany({ orderBy: { email: "asc" } })).rejects.toThrow(PolicyUsageError);
    await expect(db.user.groupBy({ by: ["email"], _count: true } as never)).rejects.toThrow(PolicyUsageError);
    await expect(db.list.findMany({ where: { owner: { email: dave.user.email } } })).rejects.toThrow(PolicyUsageError);
    await expect(db.todo.findMany({ where: { owner: { is: { email: dave.user.email } } } })).rejects.toThrow(PolicyUsageError);
    await expect(db.space.findMany({ where: { members: { some: { user: { email: dave.user.email } } } } })).rejects.toThrow(
      PolicyUsageError,
    );
    await expect(db.list.findMany({ orderBy: { owner: { email: "asc" } } })).rejects.toThrow(PolicyUsageError);
    // A filter on another field of the same rows is fine.
    expect(await db.user.count({ where: { name: "Dave" } })).toBe(1);
  });
});

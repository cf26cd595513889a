// Row ids carry no counter. A cuid v1 is a timestamp, a per-process counter
// and a fingerprint: two ids a client sees tell how many ids the server made
// in between, for anyone, in any space (ACCESS.md, "What nobody learns").
// New rows get cuid2 ids (random-looking, no shared prefix); rows that already
// have a cuid v1 id keep working, since an id is just a string.
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { signUp, type TestServer } from "../helpers/server.js";
import { dataOf, mintToken, serverPerFile } from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

const CUID2 = /^[a-z][a-z0-9]{23}$/;

const commonPrefix = (a: string, b: string) => {
  let length = 0;
  while (length < a.length && a[length] === b[length]) length++;
  return length;
};

describe("ids of new rows", () => {
  it("are cuid2 for users, spaces, members, lists and todos, and ids made one after another share nothing", async () => {
    const made: { kind: string; id: string }[] = [];
    for (let round = 0; round < 4; round++) {
      const owner = await signUp(server);
      const guest = await signUp(server);
      made.push({ kind: "user", id: owner.user.id }, { kind: "user", id: guest.user.id });
      const gql = <Data>(query: string, variables: Record<string, unknown>) =>
        server.gql<Data>(query, variables, owner.token).then(dataOf);
      const { createSpace } = await gql<{ createSpace: { id: string; members: { id: string }[] } }>(
        `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id members { id } } }`,
        { input: { name: "Ids space", slug: `ids${round}${Math.random().toString(36).slice(2, 10)}` } },
      );
      made.push({ kind: "space", id: createSpace.id }, { kind: "member (the creator)", id: createSpace.members[0]!.id });
      const { addSpaceMember } = await gql<{ addSpaceMember: { id: string } }>(
        `mutation ($spaceId: ID!, $email: String!) { addSpaceMember(spaceId: $spaceId, email: $email) { id } }`,
        { spaceId: createSpace.id, email: guest.email },
      );
      made.push({ kind: "member", id: addSpaceMember.id });
      const { createList } = await gql<{ createList: { id: string } }>(
        `mutation ($input: CreateListInput!) { createList(input: $input) { id } }`,
        { input: { spaceId: createSpace.id, title: "Ids list" } },
      );
      made.push({ kind: "list", id: createList.id });
      for (const title of ["one", "two"]) {
        const { createTodo } = await gql<{ createTodo: { id: string } }>(
          `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
          { input: { listId: createList.id, title } },
        );
        made.push({ kind: "todo", id: createTodo.id });
      }
    }

    for (const { kind, id } of made) expect(id, kind).toMatch(CUID2);
    expect(new Set(made.map(({ id }) => id)).size).toBe(made.length);
    // cuid v1 ids made in the same second share their first six or more
    // characters (the timestamp); random ones share four or more with
    // probability about one in a million per pair.
    for (let index = 1; index < made.length; index++) {
      const [previous, current] = [made[index - 1]!, made[index]!];
      expect(commonPrefix(previous.id, current.id), `${previous.kind} ${previous.id} / ${current.kind} ${current.id}`).toBeLessThan(4);
    }
  });
});

describe("rows whose ids are cuid v1", () => {
  it("are read, written and extended through the API as before", async () => {
    const ids = { user: "cmww8lmac0000t37dejbibywk", space: "cmww8lmac0001t37d4w3x9a1q", member: "cmww8lmac0002t37dh0k2m5vz", list: "cmww8lmac0003t37dq7n1c8rb", todo: "cmww8lmac0004t37dv2e6j3tx" };
    await prisma.user.create({ data: { id: ids.user, email: `v1-${process.pid}@example.com`, passwordHash: "unused" } });
    await prisma.space.create({ data: { id: ids.space, name: "Old ids", slug: `oldids${process.pid.toString(36)}`, ownerId: ids.user } });
    await prisma.spaceMember.create({ data: { id: ids.member, spaceId: ids.space, userId: ids.user, role: "ADMIN" } });
    await prisma.list.create({ data: { id: ids.list, title: "Old list", spaceId: ids.space, ownerId: ids.user } });
    await prisma.todo.create({ data: { id: ids.todo, title: "Old todo", listId: ids.list, ownerId: ids.user } });
    const token = await mintToken(prisma, ids.user);
    const gql = <Data>(query: string, variables: Record<string, unknown> = {}) => server.gql<Data>(query, variables, token).then(dataOf);

    expect(
      await gql(`query ($space: ID!, $list: ID!, $todo: ID!, $user: ID!) {
        space(id: $space) { id members { id } lists { nodes { id todos { nodes { id } } } } }
        list(id: $list) { id }
        todo(id: $todo) { id owner { id } }
        user(id: $user) { id }
      }`, ids),
    ).toEqual({
      space: { id: ids.space, members: [{ id: ids.member }], lists: { nodes: [{ id: ids.list, todos: { nodes: [{ id: ids.todo }] } }] } },
      list: { id: ids.list },
      todo: { id: ids.todo, owner: { id: ids.user } },
      user: { id: ids.user },
    });
    expect(await gql(`mutation ($id: ID!) { updateTodo(id: $id, input: { completed: true }) { id completed } }`, { id: ids.todo })).toEqual({
      updateTodo: { id: ids.todo, completed: true },
    });
    // A new todo in the old list gets a new kind of id, beside the old one.
    const { createTodo } = await gql<{ createTodo: { id: string } }>(
      `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
      { input: { listId: ids.list, title: "New todo" } },
    );
    expect(createTodo.id).toMatch(CUID2);
    expect(await prisma.todo.count({ where: { listId: ids.list } })).toBe(2);
    expect(await gql(`mutation ($id: ID!) { deleteTodo(id: $id) }`, { id: ids.todo })).toEqual({ deleteTodo: ids.todo });
  });
});

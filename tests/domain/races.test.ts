// A row deleted by someone else while my mutation runs gives NOT_FOUND, never
// FORBIDDEN (ACCESS.md, "Everywhere"). Each case races two mutations that
// touch the same rows, many times over; the loser must see NOT_FOUND (or win
// outright), whichever order the database happens to run them in. Only
// PostgreSQL runs statements of two requests concurrently: on the embedded
// database one connection serialises them, so there is no race to lose.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import type { GraphQLResult, TestServer } from "../helpers/server.js";
import { usePostgres } from "../helpers/database.js";
import { insertWorlds, mintToken, serverPerFile, worldBuilder } from "./support.js";

const ROUNDS = Number(process.env.RACE_ROUNDS ?? 40);

let server: TestServer;
let prisma: RawPrismaClient;
serverPerFile((started, raw) => {
  server = started;
  prisma = raw;
});

type Answer = Pick<GraphQLResult<unknown>, "errors">;
const codesOf = (result: Answer) => (result.errors ?? []).map((error) => error.extensions?.code);

/** Runs both operations at once, ROUNDS times on fresh rows; returns every error code seen per side. */
async function race(
  setUp: () => Promise<{ first: () => Promise<Answer>; second: () => Promise<Answer> }>,
) {
  const seen = { first: new Set<unknown>(), second: new Set<unknown>() };
  for (let round = 0; round < ROUNDS; round++) {
    const { first, second } = await setUp();
    const [a, b] = await Promise.all([first(), second()]);
    for (const code of codesOf(a)) seen.first.add(code);
    for (const code of codesOf(b)) seen.second.add(code);
  }
  return seen;
}

describe.skipIf(!usePostgres)("denials under concurrent deletes", () => {
  it("removeSpaceMember racing the member leaving: NOT_FOUND for the loser, never FORBIDDEN", async () => {
    const seen = await race(async () => {
      const build = worldBuilder();
      const admin = build.user("Admin");
      const dave = build.user("Dave");
      const space = build.space(admin, [[dave, "USER"]]);
      await insertWorlds(prisma, [build.world]);
      const membership = build.world.members.find((member) => member.userId === dave.id)!;
      const [adminToken, daveToken] = await Promise.all([mintToken(prisma, admin.id), mintToken(prisma, dave.id)]);
      const remove = `mutation ($id: ID!) { removeSpaceMember(id: $id) }`;
      expect(space.id).toBeTruthy();
      return {
        first: () => server.gql(remove, { id: membership.id }, adminToken),
        second: () => server.gql(remove, { id: membership.id }, daveToken),
      };
    });
    expect([...seen.first, ...seen.second]).not.toContain("FORBIDDEN");
    expect([...seen.first, ...seen.second].every((code) => code === "NOT_FOUND")).toBe(true);
  });

  it("addSpaceMember racing deleteSpace: NOT_FOUND, never FORBIDDEN", async () => {
    const seen = await race(async () => {
      const build = worldBuilder();
      const admin = build.user("Admin");
      const newcomer = build.user("Newcomer");
      const space = build.space(admin);
      await insertWorlds(prisma, [build.world]);
      const token = await mintToken(prisma, admin.id);
      return {
        first: () =>
          server.gql(`mutation ($s: ID!, $e: String!) { addSpaceMember(spaceId: $s, email: $e) { id } }`, { s: space.id, e: newcomer.email }, token),
        second: () => server.gql(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: space.id }, token),
      };
    });
    expect(seen.first).not.toContain("FORBIDDEN");
    expect([...seen.first].every((code) => code === "NOT_FOUND")).toBe(true);
    expect(seen.second.size).toBe(0);
  });

  it("updateTodo racing deleteSpace: NOT_FOUND, never FORBIDDEN", async () => {
    const seen = await race(async () => {
      const build = worldBuilder();
      const admin = build.user("Admin");
      const member = build.user("Member");
      const space = build.space(admin, [[member, "USER"]]);
      const list = build.list(space, member);
      // Several updates at once, so that some land between the delete's commit and their own checks.
      const todos = [1, 2, 3, 4, 5].map(() => build.todo(list, member));
      await insertWorlds(prisma, [build.world]);
      const [adminToken, memberToken] = await Promise.all([mintToken(prisma, admin.id), mintToken(prisma, member.id)]);
      const update = `mutation ($id: ID!) { updateTodo(id: $id, input: { completed: true }) { id } }`;
      return {
        first: async () => {
          const results = await Promise.all(todos.map((todo) => server.gql(update, { id: todo.id }, memberToken)));
          return { errors: results.flatMap((result) => result.errors ?? []) };
        },
        // Started a little later each round, to sweep the delete's commit across the updates' checks.
        second: async () => {
          await sleep(Math.random() * 10);
          return server.gql(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: space.id }, adminToken);
        },
      };
    });
    expect(seen.first).not.toContain("FORBIDDEN");
    expect([...seen.first].every((code) => code === "NOT_FOUND")).toBe(true);
    expect(seen.second.size).toBe(0);
  });

  it("deleteList racing deleteSpace: NOT_FOUND, never FORBIDDEN", async () => {
    const seen = await race(async () => {
      const build = worldBuilder();
      const admin = build.user("Admin");
      const owner = build.user("Owner");
      const space = build.space(admin, [[owner, "USER"]]);
      const list = build.list(space, owner);
      await insertWorlds(prisma, [build.world]);
      const [adminToken, ownerToken] = await Promise.all([mintToken(prisma, admin.id), mintToken(prisma, owner.id)]);
      return {
        first: () => server.gql(`mutation ($id: ID!) { deleteList(id: $id) }`, { id: list.id }, ownerToken),
        second: () => server.gql(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: space.id }, adminToken),
      };
    });
    expect(seen.first).not.toContain("FORBIDDEN");
    expect([...seen.first].every((code) => code === "NOT_FOUND")).toBe(true);
  });
});

// POLICY_EXPLAIN: every NOT_FOUND, FORBIDDEN or CONFLICT that the access
// policy decides names the rule of src/policy/rules.ts that said no, as
// extensions.policy { model, operation, rule }, over HTTP and WebSocket. Reads
// that filter rows out explain nothing (nothing failed), nor do errors the
// policy did not decide. Off, and by default in production, nothing is added.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../realtime/helpers.js";
import { startTestServer, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { insertWorlds, mintToken, worldBuilder } from "./support.js";

let explaining: TestServer;
let quiet: TestServer;
beforeAll(async () => {
  // NODE_ENV=test: explaining by default, as in development.
  explaining = await startTestServer();
  quiet = await startTestServer({ env: { POLICY_EXPLAIN: "false" } });
});
afterAll(async () => {
  await explaining?.close();
  await quiet?.close();
});

async function world(server: TestServer) {
  const build = worldBuilder();
  const admin = build.user("Admin");
  const member = build.user("Member");
  const stranger = build.user("Stranger");
  const newcomer = build.user("Newcomer");
  const space = build.space(admin, [[member, "USER"]]);
  const hidden = build.list(space, admin, true);
  const todo = build.todo(hidden, admin);
  const adminMembership = build.world.members.find((m) => m.userId === admin.id)!;
  await insertWorlds(server.database.prisma, [build.world]);
  const [adminToken, memberToken, strangerToken] = await Promise.all([admin, member, stranger].map((user) => mintToken(server.database.prisma, user.id)));
  return { space, hidden, todo, newcomer, adminMembership, adminToken, memberToken, strangerToken };
}

const explanation = (result: GraphQLResult<unknown>) => {
  expect(result.errors).toHaveLength(1);
  return { code: result.errors![0]!.extensions?.code, policy: result.errors![0]!.extensions?.policy };
};

describe("POLICY_EXPLAIN on", () => {
  it("names the rule behind FORBIDDEN, NOT_FOUND and CONFLICT", async () => {
    const w = await world(explaining);
    expect(explanation(await explaining.gql(`mutation ($id: ID!) { updateSpace(id: $id, input: { name: "Renamed space" }) { id } }`, { id: w.space.id }, w.memberToken))).toEqual({
      code: "FORBIDDEN",
      policy: { model: "space", operation: "update", rule: "space.update" },
    });
    expect(explanation(await explaining.gql(`mutation ($id: ID!) { updateTodo(id: $id, input: { title: "Renamed todo" }) { id } }`, { id: w.todo.id }, w.memberToken))).toEqual({
      code: "NOT_FOUND",
      policy: { model: "todo", operation: "update", rule: "todo.read" },
    });
    expect(explanation(await explaining.gql(`mutation ($id: ID!) { createTodo(input: { listId: $id, title: "X" }) { id } }`, { id: w.hidden.id }, w.memberToken))).toEqual({
      code: "NOT_FOUND",
      policy: { model: "todo", operation: "create", rule: "todo.create: list not readable" },
    });
    expect(explanation(await explaining.gql(`mutation ($id: ID!) { updateSpaceMember(id: $id, role: USER) { id } }`, { id: w.adminMembership.id }, w.adminToken))).toEqual({
      code: "CONFLICT",
      policy: { model: "spaceMember", operation: "update", rule: "spaceMember.invariant" },
    });
  });

  it("explains the authorisation addSpaceMember makes before it looks the email up", async () => {
    const w = await world(explaining);
    const add = `mutation ($s: ID!, $e: String!) { addSpaceMember(spaceId: $s, email: $e) { id } }`;
    const byMember = await explaining.gql(add, { s: w.space.id, e: w.newcomer.email }, w.memberToken);
    expect(byMember.errors?.[0]?.message).toBe("Only an admin of the space can add members.");
    expect(explanation(byMember)).toEqual({
      code: "FORBIDDEN",
      policy: { model: "spaceMember", operation: "create", rule: "spaceMember.create: not an admin of the space" },
    });
    expect(explanation(await explaining.gql(add, { s: w.space.id, e: "nobody@example.com" }, w.strangerToken))).toEqual({
      code: "NOT_FOUND",
      policy: { model: "spaceMember", operation: "create", rule: "spaceMember.create: space not readable" },
    });
  });

  it("explains over WebSocket too", async () => {
    const w = await world(explaining);
    const connection = connect(explaining, w.memberToken);
    try {
      const result = await new Promise<GraphQLResult<unknown>>((resolve, reject) => {
        let answer: unknown;
        connection.client.subscribe(
          { query: `mutation ($id: ID!) { deleteSpace(id: $id) }`, variables: { id: w.space.id } },
          { next: (value) => (answer = value), error: reject, complete: () => resolve(answer as GraphQLResult<unknown>) },
        );
      });
      expect(explanation(result)).toEqual({ code: "FORBIDDEN", policy: { model: "space", operation: "delete", rule: "space.delete" } });
    } finally {
      await connection.dispose();
    }
  });

  it("explains nothing for reads that filter rows out, nor for errors the policy did not decide", async () => {
    const w = await world(explaining);
    const read = await explaining.gql(`query ($id: ID!) { list(id: $id) { id } todo(id: "${w.todo.id}") { id } }`, { id: w.hidden.id }, w.memberToken);
    expect(read.errors).toBeUndefined();
    expect(read.data).toEqual({ list: null, todo: null });
    const badInput = await explaining.gql(`mutation ($id: ID!) { updateSpace(id: $id, input: { slug: "!" }) { id } }`, { id: w.space.id }, w.adminToken);
    expect(explanation(badInput)).toEqual({ code: "BAD_USER_INPUT", policy: undefined });
    const anonymous = await explaining.gql(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: w.space.id });
    expect(explanation(anonymous)).toEqual({ code: "UNAUTHENTICATED", policy: undefined });
  });
});

describe("POLICY_EXPLAIN off", () => {
  it("gives the same codes and messages, without extensions.policy", async () => {
    const w = await world(quiet);
    for (const [query, variables, token, code] of [
      [`mutation ($id: ID!) { updateSpace(id: $id, input: { name: "Renamed space" }) { id } }`, { id: w.space.id }, w.memberToken, "FORBIDDEN"],
      [`mutation ($id: ID!) { updateTodo(id: $id, input: { title: "Renamed todo" }) { id } }`, { id: w.todo.id }, w.memberToken, "NOT_FOUND"],
      [`mutation ($id: ID!) { updateSpaceMember(id: $id, role: USER) { id } }`, { id: w.adminMembership.id }, w.adminToken, "CONFLICT"],
    ] as const) {
      const result = await quiet.gql(query, variables, token);
      expect(explanation(result)).toEqual({ code, policy: undefined });
      expect(Object.keys(result.errors![0]!.extensions ?? {})).toEqual(["code"]);
    }
  });
});

// graphql-transport-ws conformance, with a raw `ws` peer: every close code the
// protocol defines for a misbehaving client, authentication at
// connection_init, and that one client's mistakes never affect another.
// https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUp, startTestServer } from "../helpers/server.js";
import { RawSocket, SUBPROTOCOL } from "./wsProtocol-raw.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

let server: Server;
let token: string;
let userId: string;
let spaceId: string;

beforeAll(async () => {
  server = await startTestServer();
  const user = await signUp(server);
  token = user.token;
  userId = user.user.id;
  const created = await server.gql<{ createSpace: { id: string } }>(
    `mutation { createSpace(input: { name: "Protocol", slug: "proto1" }) { id } }`,
    undefined,
    token,
  );
  spaceId = created.data!.createSpace.id;
});

afterAll(async () => {
  await server.close();
});

const open = () => RawSocket.open(server.wsUrl);
const SPACE_ACTIVITY = "subscription ($spaceId: ID!) { spaceActivity(spaceId: $spaceId) { __typename } }";

/** The server still serves a fresh, well-behaved connection. */
async function stillServes() {
  const socket = await open();
  try {
    expect(await socket.init({ authorization: `Bearer ${token}` })).toMatchObject({ type: "connection_ack" });
    expect(await socket.operation("alive", "{ me { id } }")).toEqual({ data: { me: { id: userId } } });
  } finally {
    await socket.close();
  }
}

describe("authentication at connection_init", () => {
  it("a good token: connection_ack, and `me` is the token's user", async () => {
    const socket = await open();
    expect(await socket.init({ authorization: `Bearer ${token}` })).toEqual({ type: "connection_ack" });
    expect(await socket.operation("1", "{ me { id } }")).toEqual({ data: { me: { id: userId } } });
    await socket.close();
  });

  it("no token (no payload, or an empty one): an anonymous connection", async () => {
    for (const payload of [undefined, {}, { authorization: "" }]) {
      const socket = await open();
      expect(await socket.init(payload)).toEqual({ type: "connection_ack" });
      expect(await socket.operation("1", "{ me { id } }")).toEqual({ data: { me: null } });
      await socket.close();
    }
  });

  it.each([
    ["a token that does not verify", "Bearer not-a-token"],
    ["another scheme", `Basic ${Buffer.from("a:b").toString("base64")}`],
    ["a token without its scheme", "eyJhbGciOiJIUzI1NiJ9.e30.x"],
    ["a number instead of a string", 42],
  ])("%s: closed with 4403 Forbidden, no ack", async (_label, authorization) => {
    const socket = await open();
    expect(await socket.init({ authorization })).toEqual({ code: 4403, reason: "Forbidden" });
    expect(socket.messages).toEqual([]);
  });

  it("4401 Unauthorized for a subscribe before connection_init", async () => {
    const socket = await open();
    socket.send({ id: "1", type: "subscribe", payload: { query: "{ me { id } }" } });
    expect(await socket.closed).toEqual({ code: 4401, reason: "Unauthorized" });
    expect(socket.messages).toEqual([]);
  });
});

describe("close codes for protocol violations", () => {
  it.each([
    ["invalid JSON", "{not json"],
    ["a JSON value that is not a message", "[1,2,3]"],
    ["an unknown message type", JSON.stringify({ type: "start", id: "1", payload: { query: "{ me { id } }" } })],
    ["a message without a type", JSON.stringify({ id: "1" })],
    ["a subscribe without an id", JSON.stringify({ type: "subscribe", payload: { query: "{ me { id } }" } })],
    ["a subscribe whose query is not a string", JSON.stringify({ type: "subscribe", id: "1", payload: { query: 1 } })],
    ["a subscribe with variables that are not an object", JSON.stringify({ type: "subscribe", id: "1", payload: { query: "{ me { id } }", variables: "x" } })],
    ["a connection_init whose payload is not an object", JSON.stringify({ type: "connection_init", payload: "token" })],
    ["a next message (server to client only)", JSON.stringify({ type: "next", id: "1", payload: { data: null } })],
    ["a connection_ack (server to client only)", JSON.stringify({ type: "connection_ack" })],
    ["an error message (server to client only)", JSON.stringify({ type: "error", id: "1", payload: [{ message: "x" }] })],
  ])("4400 for %s", async (_label, frame) => {
    const socket = await open();
    if (!frame.includes("connection_init")) await socket.init();
    socket.send(frame);
    expect(await socket.closed).toEqual({ code: 4400, reason: "Invalid message received" });
  });

  it("4408 when connection_init does not arrive in WS_CONNECTION_INIT_TIMEOUT", async () => {
    // A server of its own: a short timeout on the shared one could close a
    // slow test's socket before its connection_init.
    const impatient = await startTestServer({ env: { WS_CONNECTION_INIT_TIMEOUT: "300ms" } });
    try {
      expect(impatient.config.websocket.connectionInitTimeoutMs).toBe(300);
      const socket = await RawSocket.open(impatient.wsUrl);
      expect(await socket.closed).toEqual({ code: 4408, reason: "Connection initialisation timeout" });
    } finally {
      await impatient.close();
    }
  });

  it("4409 for a second subscribe with an id that is still running", async () => {
    const socket = await open();
    await socket.init({ authorization: `Bearer ${token}` });
    const subscribe = { id: "same", type: "subscribe", payload: { query: SPACE_ACTIVITY, variables: { spaceId } } };
    socket.send(subscribe);
    socket.send(subscribe);
    expect(await socket.closed).toEqual({ code: 4409, reason: "Subscriber for same already exists" });
  });

  it("an id may be reused once its operation has completed", async () => {
    const socket = await open();
    await socket.init();
    expect(await socket.operation("again", "{ __typename }")).toEqual({ data: { __typename: "Query" } });
    socket.messages.length = 0;
    expect(await socket.operation("again", "{ __typename }")).toEqual({ data: { __typename: "Query" } });
    expect(socket.isClosed).toBe(false);
    await socket.close();
  });

  it("4429 for a second connection_init", async () => {
    const socket = await open();
    expect(await socket.init()).toEqual({ type: "connection_ack" });
    socket.send({ type: "connection_init" });
    expect(await socket.closed).toEqual({ code: 4429, reason: "Too many initialisation requests" });
  });

  it("4406 for a connection that asks for no subprotocol", async () => {
    const socket = await RawSocket.open(server.wsUrl, []);
    expect(await socket.closed).toEqual({ code: 4406, reason: "Subprotocol not acceptable" });
  });

  it("refuses the legacy subscriptions-transport-ws subprotocol (the handshake selects none)", async () => {
    const socket = new WebSocket(server.wsUrl, "graphql-ws");
    const outcome = await new Promise<string>((resolve) => {
      socket.on("open", () => resolve(`open with "${socket.protocol}"`));
      socket.on("error", (error) => resolve(`error: ${error.message}`));
    });
    // ws (the client) fails a handshake that selected none of the offered
    // subprotocols; a client that carried on would be closed with 4406.
    expect(outcome).toMatch(/^error: Server sent no subprotocol/);
    socket.terminate();
  });

  it("accepts graphql-transport-ws offered among others", async () => {
    const socket = await RawSocket.open(server.wsUrl, ["graphql-ws", SUBPROTOCOL]);
    expect(socket.socket.protocol).toBe(SUBPROTOCOL);
    expect(await socket.init()).toEqual({ type: "connection_ack" });
    await socket.close();
  });

  afterAll(async () => {
    await stillServes();
  });
});

describe("a healthy connection", () => {
  it("answers ping with pong, echoing the payload", async () => {
    const socket = await open();
    await socket.init();
    socket.send({ type: "ping", payload: { n: 1 } });
    expect(await socket.waitFor((m) => m.type === "pong")).toEqual({ type: "pong", payload: { n: 1 } });
    await socket.close();
  });

  it("operation errors are error messages with a code; the socket stays open", async () => {
    const socket = await open();
    await socket.init({ authorization: `Bearer ${token}` });
    expect((await socket.operation("parse", "{ me { id ")).errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    expect((await socket.operation("valid", "{ nope }")).errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const badVariables = await socket.operation("vars", "query ($id: ID!) { user(id: $id) { id } }", { id: { no: 1 } });
    expect(badVariables.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const named = await socket.operation("name", "query A { me { id } }", undefined, "B");
    expect(named.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const notFound = await socket.operation("nf", 'subscription { todoChanged(listId: "nope") { kind } }');
    expect(notFound.errors?.[0]?.extensions?.code).toMatch(/^(NOT_FOUND|FORBIDDEN)$/);
    expect(socket.isClosed).toBe(false);
    expect(await socket.operation("ok", "{ me { id } }")).toEqual({ data: { me: { id: userId } } });
    await socket.close();
  });

  it("complete for an unknown id is ignored", async () => {
    const socket = await open();
    await socket.init();
    socket.send({ id: "never", type: "complete" });
    expect(await socket.operation("after", "{ __typename }")).toEqual({ data: { __typename: "Query" } });
    await socket.close();
  });

  it("one client's protocol violation closes only its own socket", async () => {
    const good = await open();
    await good.init({ authorization: `Bearer ${token}` });
    good.send({ id: "live", type: "subscribe", payload: { query: SPACE_ACTIVITY, variables: { spaceId } } });
    const bad = await open();
    bad.send("garbage");
    expect((await bad.closed).code).toBe(4400);
    expect(good.isClosed).toBe(false);
    expect(await good.operation("still", "{ me { id } }")).toEqual({ data: { me: { id: userId } } });
    await good.close();
  });
});

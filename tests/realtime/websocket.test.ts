// The graphql-ws transport as subscriptions use it: the viewer from
// connection_init, keep-alive pings, token expiry, and the per-connection cap.
import { decodeJwt, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { signUp, TEST_JWT_SECRET, type TestServer } from "../helpers/server.js";
import { api, spaceWithMembers, untilLive, TODO_CHANGED, type TodoChanged, realtimeServerPerFile } from "./helpers.js";

const MAX_SUBSCRIPTIONS = 3;

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started), { WS_MAX_SUBSCRIPTIONS: String(MAX_SUBSCRIPTIONS), WS_KEEPALIVE: "300ms" });

/** A token for `userId`; with `sessionOf`, in the session of that (real) token. */
const signToken = (userId: string, expiresAtSeconds: number, sessionOf?: string) =>
  new SignJWT(sessionOf ? { sid: decodeJwt(sessionOf).sid } : {})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuer("todo-graphql-server")
    .setIssuedAt()
    .setExpirationTime(expiresAtSeconds)
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));

describe("the viewer of a connection", () => {
  it("closes the socket with 4403 when connection_init carries a bad token", async () => {
    const connection = open("not-a-token");
    expect((await connection.closed).code).toBe(4403);
  });

  it("closes with 4403 for an authorization that is not 'Bearer <token>', and for a token already expired", async () => {
    const { user } = await signUp(server);
    const expired = await signToken(user.id, Math.floor(Date.now() / 1000) - 60);
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", `Bearer ${expired}`, 42]) {
      const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
      const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
      socket.once("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization } })));
      expect({ authorization, code: await closed }).toEqual({ authorization, code: 4403 });
    }
  });

  it("takes the viewer from connectionParams only: an Authorization header on the upgrade request signs nothing in", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Errands");
    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws", { headers: { authorization: `Bearer ${admin.token}` } });
    const messages: { type: string; payload?: unknown }[] = [];
    const received = (type: string) =>
      new Promise<{ type: string; payload?: unknown }>((resolve) => {
        const check = () => {
          const found = messages.find((message) => message.type === type);
          if (found) resolve(found);
          else socket.once("message", check);
        };
        check();
      });
    socket.on("message", (data) => messages.push(JSON.parse(String(data)) as { type: string; payload?: unknown }));
    await new Promise((resolve) => socket.once("open", resolve));
    try {
      socket.send(JSON.stringify({ type: "connection_init" }));
      await received("connection_ack");
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: TODO_CHANGED, variables: { listId: list.id } } }));
      // A subscribe resolver's error comes back as a `next` carrying errors.
      const result = (await received("next")) as { payload: { errors?: { extensions?: { code?: string } }[] } };
      expect(result.payload.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    } finally {
      socket.close();
    }
  });

  it("answers an anonymous subscription with UNAUTHENTICATED", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Errands");
    const stream = open().subscribe(TODO_CHANGED, { listId: list.id });
    expect((await stream.failure()).code).toBe("UNAUTHENTICATED");
  });

  it("closes the socket with 4403 when the token expires, ending its subscriptions", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Errands");
    const probe = await admin.api.createTodo(list.id, "probe");
    // Valid for two more seconds, in the admin's (active) session.
    const shortLived = await signToken(admin.id, Math.floor(Date.now() / 1000) + 2, admin.token);
    const connection = open(shortLived);
    const stream = connection.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id });
    await untilLive(stream, () => admin.api.updateTodo(probe.id, { title: "probe again" }), (e) => e.todoChanged.todoId === probe.id);

    const closed = await connection.closed;
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/expired/i);
    const before = stream.received.length;
    await admin.api.createTodo(list.id, "After expiry");
    // A fresh subscriber sees the change; the expired one has no socket to receive it on.
    expect(stream.received.length).toBe(before);
  });
});

describe("keep-alive", () => {
  const rawSocket = (options: WebSocket.ClientOptions = {}) =>
    new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl, "graphql-transport-ws", options);
      socket.once("open", () => {
        socket.send(JSON.stringify({ type: "connection_init" }));
        resolve(socket);
      });
      socket.once("error", reject);
    });

  it("pings an open connection at the configured interval", async () => {
    const socket = await rawSocket();
    try {
      await new Promise<void>((resolve) => socket.once("ping", () => resolve()));
      await new Promise<void>((resolve) => socket.once("ping", () => resolve()));
      expect(socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      socket.close();
    }
  });

  it("drops a peer that stops answering pings", async () => {
    const socket = await rawSocket({ autoPong: false });
    const code = await new Promise<number>((resolve) => socket.once("close", (closeCode) => resolve(closeCode)));
    // Terminated without a closing handshake.
    expect(code).toBe(1006);
  });
});

describe("the subscription cap (WS_MAX_SUBSCRIPTIONS)", () => {
  it("refuses one subscription too many with a clear error, and accepts again once one completes", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Quiet list");
    const connection = open(admin.token);
    const streams = Array.from({ length: MAX_SUBSCRIPTIONS }, () =>
      connection.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id }),
    );
    const probe = await admin.api.createTodo(list.id, "probe");
    for (const stream of streams) {
      await untilLive(stream, () => admin.api.updateTodo(probe.id, { title: "probe" }), (e) => e.todoChanged.todoId === probe.id);
    }

    const refused = connection.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id });
    const error = await refused.failure();
    expect(error.message).toContain(`(limit: ${MAX_SUBSCRIPTIONS})`);
    expect(error.code).toBe("GRAPHQL_VALIDATION_FAILED");

    // Nothing happens on the list meanwhile: completing must free the slot at once.
    streams[0]!.close();
    streams[1]!.close();
    const accepted = [
      connection.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id }),
      connection.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id }),
    ];
    for (const stream of accepted) {
      await untilLive(stream, () => admin.api.updateTodo(probe.id, { title: "probe" }), (e) => e.todoChanged.todoId === probe.id);
    }
    expect(accepted.flatMap((stream) => stream.errors)).toEqual([]);
  });

  it("counts per connection: another connection of the same user is not affected", async () => {
    const { token } = await signUp(server);
    const spaceId = await api(server, token).createSpace();
    const list = await api(server, token).createList(spaceId, "Mine");
    const first = open(token);
    for (let index = 0; index < MAX_SUBSCRIPTIONS; index++) first.subscribe(TODO_CHANGED, { listId: list.id });
    const other = open(token).subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id });
    const probe = await api(server, token).createTodo(list.id, "probe");
    await untilLive(other, () => api(server, token).updateTodo(probe.id, { title: "probe" }), (e) => e.todoChanged.todoId === probe.id);
  });
});

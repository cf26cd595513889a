// The caps on WebSocket connections, against the real server with real
// clients: per signed-in user (closed with 4430 at connection_init), per
// instance and per client address while not yet acknowledged (HTTP 503 at the
// upgrade). Every refusal is counted in graphql_ws_connections_refused_total,
// and a socket that closes frees its slot in every counter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";
import { connect, eventually, type Connection } from "../realtime/helpers.js";
import { scrape, value } from "./ops-support.js";
import { RawSocket, SUBPROTOCOL } from "./wsProtocol-raw.js";

const ME = `{ me { id } }`;

const refusedCount = async (server: TestServer, reason: string) =>
  value((await scrape(server)).samples, "graphql_ws_connections_refused_total", { reason });

/** The server's own count of open sockets: a closed one has freed its slots once this drops. */
const untilOpenSockets = (server: TestServer, count: number) =>
  eventually(async () => value((await scrape(server)).samples, "graphql_ws_connections") === count, `${count} open sockets`);

/** An upgrade that the server refuses: its status, content type and body. */
function refusedUpgrade(server: TestServer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; contentType: string | undefined; body: unknown }>((resolve, reject) => {
    const socket = new WebSocket(server.wsUrl, SUBPROTOCOL, { headers });
    socket.on("open", () => {
      socket.close();
      reject(new Error("the upgrade was accepted"));
    });
    socket.on("error", () => undefined);
    socket.on("unexpected-response", (_request, response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, contentType: response.headers["content-type"], body: JSON.parse(text) as unknown }),
      );
    });
  });
}

/** A raw socket that was upgraded (it may or may not send connection_init later). */
async function opened(server: TestServer, headers?: Record<string, string>): Promise<RawSocket> {
  const socket = await RawSocket.open(server.wsUrl, SUBPROTOCOL, headers ? { headers } : undefined);
  if (socket.isClosed) throw new Error(`the upgrade was refused: ${JSON.stringify(await socket.closed)}`);
  return socket;
}

/** A raw socket past connection_ack. */
async function acknowledged(server: TestServer, token?: string, headers?: Record<string, string>): Promise<RawSocket> {
  const socket = await opened(server, headers);
  expect(await socket.init(token ? { authorization: `Bearer ${token}` } : {})).toEqual({ type: "connection_ack" });
  return socket;
}

/** A graphql-ws connection that answers a query (so it was acknowledged). */
async function working(connection: Connection): Promise<Connection> {
  const result = await connection.subscribe<{ me: { id: string } | null }>(ME).next();
  expect(result).toHaveProperty("me");
  return connection;
}

describe("WS_MAX_CONNECTIONS_PER_USER", () => {
  let server: TestServer;
  const open: Connection[] = [];
  const client = (token?: string) => {
    const connection = connect(server, token);
    open.push(connection);
    return connection;
  };
  beforeAll(async () => {
    server = await startTestServer({ env: { WS_MAX_CONNECTIONS_PER_USER: "2" } });
  });
  afterAll(async () => {
    await Promise.all(open.map((connection) => connection.dispose()));
    await server?.close();
  });

  it("closes one user's socket beyond the cap with 4430 at connection_init, while another user still connects", async () => {
    const alice = await signUp(server);
    const bob = await signUp(server);
    const first = await working(client(alice.token));
    const second = await working(client(alice.token));

    const third = client(alice.token);
    expect(await third.closed).toEqual({ code: 4430, reason: "Too many connections for this user (limit: 2)" });
    expect(await refusedCount(server, "per_user")).toBe(1);

    // Alice's two sockets go on working; Bob and anonymous callers are not hers to count.
    await working(first);
    await working(second);
    await working(client(bob.token));
    await working(client(bob.token));
    await working(client());
    await working(client());
    await working(client());
    expect(await refusedCount(server, "per_user")).toBe(1);
  });

  it("frees a user's slot when a socket closes: open the cap, close them all, open the cap again", async () => {
    const carol = await signUp(server);
    const baseline = value((await scrape(server)).samples, "graphql_ws_connections");
    const before = await refusedCount(server, "per_user");
    for (let round = 0; round < 3; round++) {
      const mine = [await working(client(carol.token)), await working(client(carol.token))];
      expect((await client(carol.token).closed).code).toBe(4430);
      await Promise.all(mine.map((connection) => connection.dispose()));
      await untilOpenSockets(server, baseline);
    }
    expect((await refusedCount(server, "per_user")) - before).toBe(3);
    // One closed socket frees exactly one slot.
    const kept = await working(client(carol.token));
    const closing = await working(client(carol.token));
    await closing.dispose();
    await untilOpenSockets(server, baseline + 1);
    await working(client(carol.token));
    expect((await client(carol.token).closed).code).toBe(4430);
    await working(kept);
  });
});

describe("WS_MAX_CONNECTIONS", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { WS_MAX_CONNECTIONS: "3", WS_CONNECTION_INIT_TIMEOUT: "30s" } });
  });
  afterAll(() => server?.close());

  it("answers the upgrade beyond the instance's cap with 503, acknowledged or not, and takes sockets again once some close", async () => {
    const user = await signUp(server);
    for (let round = 1; round <= 2; round++) {
      const sockets = [await acknowledged(server, user.token), await acknowledged(server), await opened(server)];
      const refused = await refusedUpgrade(server);
      expect(refused).toEqual({
        status: 503,
        contentType: "application/json; charset=utf-8",
        body: {
          errors: [
            {
              message: "This server holds as many WebSocket connections as it may (limit: 3). Try again later.",
              extensions: { code: "SERVICE_UNAVAILABLE" },
            },
          ],
        },
      });
      expect(await refusedCount(server, "instance")).toBe(round);
      // The refusal touched nothing: the three still work.
      expect((await sockets[0]!.operation("q", ME)).data).toEqual({ me: { id: user.user.id } });
      expect(await sockets[2]!.init()).toEqual({ type: "connection_ack" });
      // HTTP is not capped.
      expect((await server.gql(ME)).status).toBe(200);
      await Promise.all(sockets.map((socket) => socket.close()));
      await untilOpenSockets(server, 0);
    }
    expect(await refusedCount(server, "pending_per_address")).toBe(0);
  });
});

describe("WS_MAX_PENDING_PER_ADDRESS", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { WS_MAX_PENDING_PER_ADDRESS: "3", WS_CONNECTION_INIT_TIMEOUT: "30s" } });
  });
  afterAll(() => server?.close());

  it("refuses a socket with 503 while the address has the cap of sockets waiting for connection_ack; acknowledged sockets do not count", async () => {
    const user = await signUp(server);
    // 1,000 acknowledged sockets from 127.0.0.1 (anonymous, so no user cap applies), a batch of 3 at a time.
    const held: RawSocket[] = [];
    while (held.length < 1000) {
      held.push(...(await Promise.all([acknowledged(server), acknowledged(server), acknowledged(server)])));
    }
    await untilOpenSockets(server, held.length);

    const pending = [await opened(server), await opened(server), await opened(server)];
    const refused = await refusedUpgrade(server);
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      errors: [
        {
          message: "Too many WebSocket connections from this address are waiting for connection_ack (limit: 3). Try again later.",
          extensions: { code: "SERVICE_UNAVAILABLE" },
        },
      ],
    });
    expect(await refusedCount(server, "pending_per_address")).toBe(1);

    // Acknowledged, a socket no longer counts: one more may wait.
    expect(await pending[0]!.init({ authorization: `Bearer ${user.token}` })).toEqual({ type: "connection_ack" });
    held.push(pending[0]!);
    pending[0] = await opened(server);
    expect((await refusedUpgrade(server)).status).toBe(503);

    // A socket refused at connection_init (4403) frees its slot as it closes.
    expect(await pending[1]!.init({ authorization: "Bearer not-a-token" })).toEqual({ code: 4403, reason: "Forbidden" });
    await untilOpenSockets(server, held.length + 2);
    pending[1] = await opened(server);
    expect((await refusedUpgrade(server)).status).toBe(503);
    expect(await refusedCount(server, "pending_per_address")).toBe(3);

    // Closed before connection_init: every slot is free again, and the cap holds as before.
    await Promise.all(pending.map((socket) => socket.close()));
    await untilOpenSockets(server, held.length);
    const again = [await opened(server), await opened(server), await opened(server)];
    expect((await refusedUpgrade(server)).status).toBe(503);
    expect(await refusedCount(server, "pending_per_address")).toBe(4);

    await Promise.all([...held, ...again].map((socket) => socket.close()));
    expect(await refusedCount(server, "instance")).toBe(0);
  }, 120_000);
});

describe("WS_MAX_PENDING_PER_ADDRESS behind a proxy", () => {
  const env = { WS_MAX_PENDING_PER_ADDRESS: "2", WS_CONNECTION_INIT_TIMEOUT: "30s" };
  let trusting: TestServer;
  let direct: TestServer;
  beforeAll(async () => {
    [trusting, direct] = await Promise.all([
      startTestServer({ env: { ...env, TRUST_PROXY: "true" } }),
      startTestServer({ env: { ...env, TRUST_PROXY: "false" } }),
    ]);
  });
  afterAll(() => Promise.all([trusting?.close(), direct?.close()]));

  it("TRUST_PROXY=true: counts per address the proxy saw (the last X-Forwarded-For entry)", async () => {
    const from = (address: string) => ({ "x-forwarded-for": address });
    const sockets = [await opened(trusting, from("203.0.113.7")), await opened(trusting, from("198.51.100.1, 203.0.113.7"))];
    expect((await refusedUpgrade(trusting, from("203.0.113.7"))).status).toBe(503);
    // What the client wrote before the proxy's entry changes nothing.
    expect((await refusedUpgrade(trusting, from("203.0.113.8, 203.0.113.7"))).status).toBe(503);
    sockets.push(await opened(trusting, from("203.0.113.8")), await opened(trusting, from("203.0.113.7, 203.0.113.8")));
    expect((await refusedUpgrade(trusting, from("203.0.113.8"))).status).toBe(503);
    expect(await refusedCount(trusting, "pending_per_address")).toBe(3);
    await Promise.all(sockets.map((socket) => socket.close()));
  });

  it("TRUST_PROXY=false: the TCP peer's address; X-Forwarded-For does not escape the cap", async () => {
    const sockets = [await opened(direct, { "x-forwarded-for": "203.0.113.1" }), await opened(direct, { "x-forwarded-for": "203.0.113.2" })];
    expect((await refusedUpgrade(direct, { "x-forwarded-for": "203.0.113.3" })).status).toBe(503);
    expect((await refusedUpgrade(direct)).status).toBe(503);
    expect(await refusedCount(direct, "pending_per_address")).toBe(2);
    await Promise.all(sockets.map((socket) => socket.close()));
  });
});

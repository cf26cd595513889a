// Ending a session on one instance, with two instances on one PostgreSQL
// database and Redis between them: its token is refused on the other
// instance, and the other instance's sockets of that session are closed with
// 4403, within 5 s (ACCESS.md, Session), through Redis at once, and by the
// instances' own re-reading (SESSION_CACHE_TTL) while Redis is down.
//
// Both instances run with SESSION_CACHE_TTL at its maximum (4s), the worst
// case for the bound.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";
import { errorCode, signUp, startTestServer, type TestServer } from "../helpers/server.js";
import { connect, PrivateRedis, type Connection } from "./helpers.js";

const BOUND_MS = 5000;
const ME = `{ me { id } }`;

// PGlite is one in-process connection: two instances cannot share it.
describe.skipIf(!usePostgres)("ending a session with two instances and Redis", () => {
  let redis: PrivateRedis;
  let shared: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const connections: Connection[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    shared = await createTestDatabase();
    const env = { REDIS_URL: redis.url, SESSION_CACHE_TTL: "4s" };
    a = await startTestServer({ database: shared, env });
    b = await startTestServer({ database: shared, env });
  });

  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.dispose()));
    for (const server of [a, b]) await server?.close();
    await shared?.drop();
    await redis?.stop();
  });

  /** A socket on `server`, once acknowledged (a query over it answers). */
  async function socketOn(server: TestServer, token: string) {
    const connection = connect(server, token);
    connections.push(connection);
    await new Promise((resolve, reject) =>
      connection.client.subscribe({ query: ME }, { next: resolve, error: reject, complete: () => undefined }),
    );
    return connection;
  }

  /** How long after `since` a request with `token` to `server` is first refused (polling every 50 ms). */
  async function refusedAfter(server: TestServer, token: string, since: number): Promise<number> {
    for (;;) {
      const result = await server.gql(ME, {}, token);
      if (result.status === 401) {
        expect(errorCode(result)).toBe("UNAUTHENTICATED");
        expect(result.errors?.[0]?.message).toBe("This session has ended. Sign in again.");
        return Date.now() - since;
      }
      expect(result.data).toEqual({ me: { id: expect.any(String) } });
      if (Date.now() - since > BOUND_MS + 2000) throw new Error("the token was never refused");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Signs a user up on A with a second session; both are in use on B (so B has them cached as active). */
  async function userWithTwoSessions() {
    const user = await signUp(a);
    const login = await a.gql<{ logIn: { token: string } }>(
      `mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { token } }`,
      { email: user.email, password: user.password },
    );
    const other = login.data!.logIn.token;
    for (const token of [user.token, other]) expect((await b.gql(ME, {}, token)).data).toEqual({ me: { id: user.user.id } });
    return { token: user.token, other };
  }

  it("refuses the token on the other instance and closes its sockets there with 4403, within 5 s", async () => {
    const { token, other } = await userWithTwoSessions();
    const socket = await socketOn(b, token);
    const otherSocket = await socketOn(b, other);

    const started = Date.now();
    expect((await a.gql(`mutation { logOut }`, {}, token)).data).toEqual({ logOut: true });
    const closed = socket.closed.then((event) => ({ ...event, afterMs: Date.now() - started }));
    const refusedMs = await refusedAfter(b, token, started);
    const { afterMs, ...event } = await closed;
    console.info(`logOut on A: refused on B after ${refusedMs} ms, socket on B closed after ${afterMs} ms (through Redis)`);
    expect(event).toEqual({ code: 4403, reason: "Forbidden: session ended" });
    expect(refusedMs).toBeLessThan(BOUND_MS);
    expect(afterMs).toBeLessThan(BOUND_MS);

    // The user's other session lives on, on both instances.
    expect((await b.gql(ME, {}, other)).status).toBe(200);
    await new Promise((resolve, reject) =>
      otherSocket.client.subscribe({ query: ME }, { next: resolve, error: reject, complete: () => undefined }),
    );
  });

  it("does the same for endOtherSessions and a refresh-token reuse on A", async () => {
    const { token, other } = await userWithTwoSessions();
    const socket = await socketOn(b, other);
    const started = Date.now();
    expect((await a.gql(`mutation { endOtherSessions }`, {}, token)).data).toEqual({ endOtherSessions: 1 });
    expect(await refusedAfter(b, other, started)).toBeLessThan(BOUND_MS);
    expect((await socket.closed).code).toBe(4403);
    expect((await b.gql(ME, {}, token)).status).toBe(200);

    const reused = await signUp(a);
    const refresh = `mutation ($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { token } }`;
    // Rotated on B, the first refresh token reused on A.
    const session = await b.gql<{ logIn: { refreshToken: string; token: string } }>(
      `mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { refreshToken token } }`,
      { email: reused.email, password: reused.password },
    );
    const { refreshToken, token: loggedIn } = session.data!.logIn;
    expect((await b.gql(refresh, { refreshToken })).errors).toBeUndefined();
    expect((await b.gql(ME, {}, loggedIn)).status).toBe(200);
    const reusedSocket = await socketOn(b, loggedIn);
    const reuseStarted = Date.now();
    expect(errorCode(await a.gql(refresh, { refreshToken }))).toBe("UNAUTHENTICATED");
    expect(await refusedAfter(b, loggedIn, reuseStarted)).toBeLessThan(BOUND_MS);
    expect((await reusedSocket.closed).code).toBe(4403);
  });

  it("still refuses within 5 s while Redis is down: each instance re-reads the sessions it trusts", async () => {
    const { token } = await userWithTwoSessions();
    const socket = await socketOn(b, token);
    await redis.kill();
    try {
      const started = Date.now();
      expect((await a.gql(`mutation { logOut }`, {}, token)).data).toEqual({ logOut: true });
      // On A at once: it ended the session itself.
      expect((await a.gql(ME, {}, token)).status).toBe(401);
      const refusedMs = await refusedAfter(b, token, started);
      const closed = await socket.closed;
      console.info(`logOut on A with Redis down: refused on B after ${refusedMs} ms, socket closed after ${Date.now() - started} ms`);
      expect(refusedMs).toBeLessThan(BOUND_MS);
      expect(closed.code).toBe(4403);
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
    } finally {
      await redis.restart();
    }
  });
});

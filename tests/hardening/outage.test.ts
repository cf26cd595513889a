// What clients see while PostgreSQL cannot be reached, and how the server
// comes back. The server reaches PostgreSQL through a TCP proxy the test
// controls (tests/helpers/tcpProxy.ts), so the shared database server is never
// touched:
//   cut        the database is gone: connections dropped, new ones refused;
//   blackhole  a partition: connections stay open, nothing answers.
// Either way operations must fail fast with SERVICE_UNAVAILABLE and write
// nothing, /ready must say 503 with a reason, and once the proxy is restored
// the same process must serve again on its own.
import pg from "pg";
import { loadConfig } from "../../src/config.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminUrl, createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";
import { signUp, startTestServer, uniqueEmail, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcpProxy.js";
import { api, connect, TODO_CHANGED, untilLive, type TodoChanged } from "../realtime/helpers.js";
import { sleep } from "./ops-support.js";

describe("outage settings", () => {
  it("bounds connecting and querying by default, and both can be set", () => {
    const defaults = loadConfig({ DATABASE_URL: "postgresql://u@h/db" }).database;
    expect(defaults).toMatchObject({ kind: "postgres", connectTimeoutMs: 5000, queryTimeoutMs: 5000, poolMax: 10 });
    const custom = loadConfig({ DATABASE_URL: "postgresql://u@h/db", DATABASE_CONNECT_TIMEOUT: "2s", DATABASE_QUERY_TIMEOUT: "30s" });
    expect(custom.database).toMatchObject({ connectTimeoutMs: 2000, queryTimeoutMs: 30_000 });
    expect(() => loadConfig({ DATABASE_QUERY_TIMEOUT: "soon" })).toThrow(/DATABASE_QUERY_TIMEOUT/);
  });
});

// PostgreSQL only: PGlite runs inside the server process, so there is no
// connection to lose; an outage can only happen with a database server.
describe.skipIf(!usePostgres)("PostgreSQL outage", () => {
  // Generous: the requirement is "fails fast rather than hanging 30 s+", on a
  // busy two-core machine. The default DATABASE_CONNECT_TIMEOUT is 5 s.
  const FAST_MS = 10_000;
  let proxy: TcpProxy;
  let database: TestDatabase;
  let server: TestServer;
  let direct: pg.Client;
  let owner: Awaited<ReturnType<typeof signUp>>;
  let listId: string;
  const figures: Record<string, number> = {};

  beforeAll(async () => {
    const target = new URL(adminUrl);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    database = await createTestDatabase();
    const proxied = new URL(database.url!);
    proxied.host = `127.0.0.1:${proxy.port}`;
    // The product's defaults: pool of 10, 5 s connect timeout.
    const config = { kind: "postgres" as const, url: proxied.toString(), poolMax: 10, connectTimeoutMs: 5000, queryTimeoutMs: 5000 };
    server = await startTestServer({ database: { ...database, url: proxied.toString(), config } });
    // A connection of the test's own, around the proxy, to look at what was written.
    direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
    owner = await signUp(server);
    const spaceId = await api(server, owner.token).createSpace();
    listId = (await api(server, owner.token).createList(spaceId, "Outage list")).id;
  });

  afterAll(async () => {
    console.log(`outage figures (ms): ${JSON.stringify(figures)}`);
    await server?.close();
    await direct?.end();
    await proxy?.close();
    await database?.drop();
  });

  const createTodo = (title: string) =>
    server.gql<{ createTodo: { id: string } }>(
      `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
      { input: { listId, title } },
      owner.token,
    );
  const me = () => server.gql<{ me: { id: string } | null }>(`{ me { id } }`, undefined, owner.token);
  const rows = async (sql: string, params: unknown[]) => Number((await direct.query(sql, params)).rows[0].count);

  async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
    const started = performance.now();
    const result = await fn();
    return { result, ms: Math.round(performance.now() - started) };
  }

  function expectUnavailable(result: GraphQLResult<unknown>) {
    expect(result.errors?.[0]?.extensions?.code, JSON.stringify(result.errors)).toBe("SERVICE_UNAVAILABLE");
    expect(JSON.stringify(result)).not.toMatch(/ECONNREFUSED|prisma|stack|127\.0\.0\.1/i);
  }

  /** Polls until `{ me }` succeeds; returns ms from the call until then. */
  async function recovery(): Promise<number> {
    const started = performance.now();
    for (;;) {
      const result = await me().catch(() => undefined);
      if (result?.data?.me?.id === owner.user.id) return Math.round(performance.now() - started);
      if (performance.now() - started > 30_000) throw new Error(`no recovery after 30 s: ${JSON.stringify(result)}`);
      await sleep(100);
    }
  }

  for (const mode of ["cut", "blackhole"] as const) {
    describe(`while the proxy is ${mode === "cut" ? "cut" : "a black hole"}`, () => {
      it("fails operations fast with SERVICE_UNAVAILABLE, writes nothing, and /ready says 503", async () => {
        expect((await me()).data?.me?.id).toBe(owner.user.id);
        await proxy[mode]();
        try {
          const query = await timed(me);
          expectUnavailable(query.result);
          expect(query.ms).toBeLessThan(FAST_MS);
          figures[`${mode}: query fails after`] = query.ms;

          const title = `written-during-${mode}-${Date.now()}`;
          const mutation = await timed(() => createTodo(title));
          expectUnavailable(mutation.result);
          expect(mutation.ms).toBeLessThan(FAST_MS);
          figures[`${mode}: mutation fails after`] = mutation.ms;

          const email = uniqueEmail(`outage-${mode}`);
          const signUpResult = await timed(() =>
            server.gql(`mutation ($input: SignUpInput!) { signUp(input: $input) { token } }`, {
              input: { email, password: "correct-horse-1" },
            }),
          );
          expectUnavailable(signUpResult.result);
          expect(signUpResult.ms).toBeLessThan(FAST_MS);

          const logIn = await timed(() =>
            server.gql(`mutation { logIn(email: "${owner.email}", password: "${owner.password}") { token } }`),
          );
          expectUnavailable(logIn.result);
          expect(logIn.ms).toBeLessThan(FAST_MS);

          if (mode === "cut") {
            // Clients may retry (ERRORS.md): retries through an outage must not
            // lock the account (default limit: 10 failed log-ins per account and address).
            for (let attempt = 0; attempt < 12; attempt++) {
              expectUnavailable(await server.gql(`mutation { logIn(email: "${owner.email}", password: "${owner.password}") { token } }`));
            }
          }

          // Many at once: none hangs, all say the same.
          const burst = await timed(() => Promise.all(Array.from({ length: 15 }, () => me())));
          for (const result of burst.result) expectUnavailable(result);
          expect(burst.ms).toBeLessThan(FAST_MS * 2);
          figures[`${mode}: 15 concurrent queries all failed after`] = burst.ms;

          // Again once the pool's idle connections are gone: each write now
          // needs a new connection, which cannot be had.
          const second = await timed(() => createTodo(`${title}-again`));
          expectUnavailable(second.result);
          expect(second.ms).toBeLessThan(FAST_MS);
          figures[`${mode}: mutation on an emptied pool fails after`] = second.ms;

          const ready = await timed(() => fetch(`${server.baseUrl}/ready`));
          expect(ready.result.status).toBe(503);
          expect(await ready.result.json()).toMatchObject({ status: "unavailable", reason: expect.stringMatching(/^database: .+/) });
          expect(ready.ms).toBeLessThan(FAST_MS);

          // The process itself is fine.
          expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);

          // Nothing was written, seen from outside the proxy.
          expect(await rows(`SELECT count(*) FROM "Todo" WHERE title LIKE $1`, [`${title}%`])).toBe(0);
          expect(await rows(`SELECT count(*) FROM "User" WHERE email = $1`, [email])).toBe(0);
        } finally {
          await proxy.restore();
        }
        const recoveredMs = await recovery();
        figures[`${mode}: recovery after restore`] = recoveredMs;
        console.log(`${mode}: recovered ${recoveredMs} ms after restore`);
        expect((await fetch(`${server.baseUrl}/ready`)).status).toBe(200);
        // Log-in works (the outage did not count against the account), and it writes again.
        const logInAfter = await server.gql<{ logIn: { token: string } }>(
          `mutation { logIn(email: "${owner.email}", password: "${owner.password}") { token } }`,
        );
        expect(logInAfter.errors, JSON.stringify(logInAfter.errors)).toBeUndefined();
        const after = await createTodo(`after-${mode}`);
        expect(after.errors).toBeUndefined();
        expect(await rows(`SELECT count(*) FROM "Todo" WHERE title = $1`, [`after-${mode}`])).toBe(1);
      }, 90_000);
    });
  }

  it("keeps delivering subscription events after an outage", async () => {
    const connection = connect(server, owner.token);
    try {
      const stream = connection.subscribe<TodoChanged>(TODO_CHANGED, { listId });
      const owned = api(server, owner.token);
      await untilLive(stream, () => owned.createTodo(listId, "probe"), (item) => item.todoChanged.todo?.title === "probe");
      await proxy.cut();
      await sleep(500);
      await proxy.restore();
      await recovery();
      const todo = await owned.createTodo(listId, "after the outage");
      const [event] = await stream.until((item) => item.todoChanged.todoId === todo.id, "the event after the outage");
      expect(event?.todoChanged.todo?.title).toBe("after the outage");
    } finally {
      await connection.dispose();
    }
  }, 60_000);
});

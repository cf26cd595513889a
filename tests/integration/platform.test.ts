import http from "node:http";
import type net from "node:net";
// Health, readiness, the WebSocket transport and the error mask, against the
// real server.
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { usePostgres, adminUrl, createTestDatabase } from "../helpers/database.js";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy } from "../helpers/tcpProxy.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.close());

describe("health and readiness", () => {
  it("answers /health with 200 ok", async () => {
    const response = await fetch(`${server.baseUrl}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("answers /ready with 200 when the database answers", async () => {
    const response = await fetch(`${server.baseUrl}/ready`);
    expect(response.status).toBe(200);
  });

  it("echoes a sane x-request-id and makes one otherwise", async () => {
    const given = await fetch(`${server.baseUrl}/health`, { headers: { "x-request-id": "trace-123" } });
    expect(given.headers.get("x-request-id")).toBe("trace-123");
    const made = await fetch(`${server.baseUrl}/health`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("readiness during a graceful stop", () => {
  it("answers /ready 503 'shutting down' as soon as the stop begins, on a connection still served, then closed", async () => {
    const stopping = await startTestServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    type Answer = { status: number; body: unknown; connection: string | undefined; socket: net.Socket };
    const get = (path: string) =>
      new Promise<Answer>((resolve, reject) => {
        const request = http.get(`${stopping.baseUrl}${path}`, { agent }, (response) => {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString()));
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text), connection: response.headers.connection, socket: request.socket! }),
          );
        });
        request.on("error", reject);
      });
    try {
      const before = await get("/ready");
      expect(before).toMatchObject({ status: 200, body: { status: "ready" }, connection: "keep-alive" });
      const closed = stopping.close();
      // The same keep-alive connection, before the drain ends it. /ready
      // answers synchronously here: the drain must still see the request
      // and tell the client this connection ends with it.
      const during = await get("/ready");
      expect(during).toMatchObject({ status: 503, body: { status: "unavailable", reason: "shutting down" }, connection: "close" });
      expect(during.socket).toBe(before.socket);
      const socketClosed = during.socket.destroyed ? Promise.resolve() : new Promise((resolve) => during.socket.once("close", resolve));
      await Promise.all([closed, socketClosed]);
    } finally {
      agent.destroy();
      await stopping.close();
    }
  });
});

describe("SHUTDOWN_DELAY", () => {
  it("serves on as usual, with /ready at 503, for the delay after the stop begins; then stops accepting", async () => {
    const stopping = await startTestServer({ env: { SHUTDOWN_DELAY: "1500ms" } });
    try {
      expect((await fetch(`${stopping.baseUrl}/ready`)).status).toBe(200);
      let stopped = false;
      const closed = stopping.close().then(() => (stopped = true));
      // New connections, well inside the delay.
      const ready = await fetch(`${stopping.baseUrl}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: "unavailable", reason: "shutting down" });
      const query = await stopping.gql<{ __typename: string }>(`{ __typename }`);
      expect(query.data).toEqual({ __typename: "Query" });
      expect(stopped).toBe(false);
      await closed;
      await expect(fetch(`${stopping.baseUrl}/health`)).rejects.toThrow();
    } finally {
      await stopping.close();
    }
  });
});

describe("paths the server does not serve", () => {
  it.each([
    ["GET", "/"],
    ["GET", "/graphq"],
    ["POST", "/api/graphql"],
    ["DELETE", "/health"],
    ["GET", "/favicon.ico"],
  ])("%s %s: 404 with a coded JSON error that points at /graphql", async (method, path) => {
    const response = await fetch(`${server.baseUrl}${path}`, { method });
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("x-request-id")).toBeTruthy();
    expect(await response.json()).toEqual({
      errors: [{ message: `Nothing is served at ${method} ${path}. The GraphQL endpoint is /graphql.`, extensions: { code: "NOT_FOUND" } }],
    });
  });

  it("keeps an echoed path short", async () => {
    const response = await fetch(`${server.baseUrl}/${"a".repeat(5000)}`);
    expect(response.status).toBe(404);
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message.length).toBeLessThan(300);
  });
});

describe.skipIf(!usePostgres)("readiness when PostgreSQL becomes unreachable", () => {
  it("turns /ready to 503 with a reason, and back to 200 when the database returns", async () => {
    const target = new URL(adminUrl);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const database = await createTestDatabase();
    const proxied = new URL(database.url!);
    proxied.host = `127.0.0.1:${proxy.port}`;
    const viaProxy = await startTestServer({
      database: { ...database, url: proxied.toString(), config: { kind: "postgres", url: proxied.toString(), poolMax: 4, connectTimeoutMs: 1000, queryTimeoutMs: 5000 } },
    });
    try {
      expect((await fetch(`${viaProxy.baseUrl}/ready`)).status).toBe(200);
      await proxy.cut();
      const down = await fetch(`${viaProxy.baseUrl}/ready`);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ status: "unavailable", reason: expect.stringMatching(/^database: /) });
      await proxy.restore();
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        status = (await fetch(`${viaProxy.baseUrl}/ready`)).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe(200);
    } finally {
      await viaProxy.close();
      await proxy.close();
      await database.drop();
    }
  });
});

describe("GraphQL over WebSocket", () => {
  const connect = (authorization?: string) =>
    createClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: authorization ? { authorization } : {},
    });

  const query = <T>(client: ReturnType<typeof createClient>, text: string) =>
    new Promise<{ data?: T; errors?: unknown }>((resolve, reject) => {
      let result: { data?: T; errors?: unknown } = {};
      client.subscribe<T>({ query: text }, {
        next: (value) => (result = value as typeof result),
        error: reject,
        complete: () => resolve(result),
      });
    });

  it("answers me with the token from connectionParams", async () => {
    const { token, user } = await signUp(server);
    const client = connect(`Bearer ${token}`);
    try {
      const result = await query<{ me: { id: string } }>(client, "{ me { id } }");
      expect(result.data?.me.id).toBe(user.id);
    } finally {
      await client.dispose();
    }
  });

  it("treats a connection without a token as anonymous", async () => {
    const client = connect();
    try {
      expect((await query(client, "{ me { id } }")).data).toEqual({ me: null });
    } finally {
      await client.dispose();
    }
  });

  it("closes the socket with 4403 for a bad token", async () => {
    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        connectionParams: { authorization: "Bearer not-a-token" },
        onNonLazyError: () => undefined,
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      void client;
    });
    expect(await closed).toBe(4403);
  });
});

describe("error masking", () => {
  it("gives parse errors their Apollo code", async () => {
    const result = await server.gql("{ me { id ");
    expect(result.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
  });

  it("never returns stack traces", async () => {
    const result = await server.gql("{ nope }");
    expect(result.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(JSON.stringify(result)).not.toMatch(/stacktrace|node_modules|\.ts:/);
  });
});

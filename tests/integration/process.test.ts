// The server as an operator runs it: a real process started like `npm start`,
// configured by environment variables, stopped by signals.
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createClient } from "graphql-ws";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { freePort, serverProcesses } from "../helpers/process.js";

const { launch, serverEnv } = serverProcesses();

const post = (url: string, query: string, token?: string) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });

describe("start-up configuration", () => {
  it("refuses to start on an invalid variable, with one line naming it", async () => {
    const started = await launch({ PORT: "not-a-port" }, false);
    expect(await started.exit).toBe(1);
    expect(started.output().trim()).toMatch(/^Invalid PORT: .+$/m);
    expect(started.output()).not.toContain("    at ");
  });

  it("keeps its generated JWT secret in DATA_DIR, so tokens survive a restart", async () => {
    const env = await serverEnv();
    const first = await launch(env);
    const signUp = await post(first.url, `mutation { signUp(input: { email: "restart@example.com", password: "password-1" }) { token } }`);
    const { data } = (await signUp.json()) as { data: { signUp: { token: string } } };
    first.child.kill("SIGTERM");
    expect(await first.exit).toBe(0);
    const secret = await readFile(path.join(env.DATA_DIR, "jwt-secret"), "utf8");
    expect(secret.length).toBeGreaterThanOrEqual(32);

    const second = await launch(env);
    const me = await post(second.url, `{ me { email } }`, data.signUp.token);
    expect(await me.json()).toEqual({ data: { me: { email: "restart@example.com" } } });
    second.child.kill("SIGTERM");
    expect(await second.exit).toBe(0);
  }, 90_000); // two full process start-ups (tsx, PGlite, migrations): ~10 s each on a busy 2-core machine
});

describe("production: /metrics is not public by accident", () => {
  const production = { NODE_ENV: "production", JWT_SECRET: "a-production-secret-of-at-least-32-chars" };

  it("refuses to start with neither METRICS_TOKEN nor METRICS_PORT nor METRICS_PUBLIC=true, with one line naming them", async () => {
    const started = await launch({ ...(await serverEnv()), ...production }, false);
    expect(await started.exit).toBe(1);
    expect(started.output().trim()).toBe(
      "Invalid METRICS_TOKEN: required when NODE_ENV=production, unless METRICS_PORT serves /metrics on a listener of its own or METRICS_PUBLIC=true.",
    );
  });

  it("starts with METRICS_PUBLIC=true, and serves /metrics on the public port", async () => {
    const env = { ...(await serverEnv()), ...production, METRICS_PUBLIC: "true" };
    const started = await launch(env);
    const metrics = await fetch(`http://127.0.0.1:${env.PORT}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("graphql_ws_connections ");
    started.child.kill("SIGTERM");
    expect(await started.exit).toBe(0);
  });

  it("with METRICS_PORT: /metrics only there (the public port answers 404), and that listener closes on SIGTERM", async () => {
    const env = { ...(await serverEnv()), ...production, METRICS_PORT: String(await freePort()) };
    const started = await launch(env);
    const metricsUrl = `http://127.0.0.1:${env.METRICS_PORT}/metrics`;
    const metrics = await fetch(metricsUrl);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("graphql_ws_connections ");
    expect((await fetch(`http://127.0.0.1:${env.PORT}/metrics`)).status).toBe(404);
    started.child.kill("SIGTERM");
    expect(await started.exit).toBe(0);
    expect(started.output()).toContain("shutdown complete");
    await expect(fetch(metricsUrl)).rejects.toThrow();
  });
});

describe("graceful shutdown", () => {
  it("npm start: SIGTERM to npm itself (what a container runtime sends) stops the server gracefully", async () => {
    const env = await serverEnv();
    const started = await launch(env, true, "npm start");
    const health = `http://127.0.0.1:${env.PORT}/health`;
    expect((await fetch(health)).status).toBe(200);
    started.child.kill("SIGTERM");
    expect(await started.exit).toBe(0);
    expect(started.output()).toContain("shutdown complete");
    // Nothing left behind holding the port.
    await expect(fetch(health)).rejects.toThrow();
  });

  it.each([
    ["development", {}],
    ["production", { JWT_SECRET: "a-production-secret-of-at-least-32-chars", METRICS_TOKEN: "a-metrics-token" }],
  ])("NODE_ENV=%s: finishes a request in flight, closes WebSockets with 1001 and exits 0 within 10 s", async (mode, extra) => {
    const env = { ...(await serverEnv()), NODE_ENV: mode, ...extra };
    const started = await launch(env);

    let acknowledged!: () => void;
    const connected = new Promise<void>((resolve) => (acknowledged = resolve));
    const closeCode = new Promise<number>((resolve) => {
      const client = createClient({
        url: started.url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => undefined,
        on: { connected: () => acknowledged(), closed: (event) => resolve((event as { code: number }).code) },
      });
      void client;
    });
    // Wait until the socket is acknowledged, so it is open when the signal
    // comes (a fixed wait was too short on a loaded machine: the connection
    // was still opening at the signal, and dropped with 1006).
    await connected;

    // A request whose body is still arriving when SIGTERM is sent.
    const body = JSON.stringify({ query: `mutation { signUp(input: { email: "inflight@example.com", password: "password-1" }) { user { email } } }` });
    const socket = net.connect(Number(env.PORT), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    let response = "";
    socket.on("data", (chunk) => (response += chunk.toString()));
    const ended = new Promise((resolve) => socket.once("close", resolve));
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    socket.write(body.slice(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));

    const signalledAt = Date.now();
    started.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The rest of the body arrives after the signal; the client keeps its side
    // open (a half-closed request would be aborted by node:http, signal or not).
    socket.write(body.slice(20));

    expect(await closeCode).toBe(1001);
    const deadline = Date.now() + 10_000;
    while (!response.includes("inflight@example.com") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    socket.end();
    await ended;
    expect(response, started.output()).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain('"email":"inflight@example.com"');
    expect(await started.exit).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(started.output()).toContain("shutdown complete");

    // New connections are refused once the server has stopped.
    await expect(fetch(started.url.replace("/graphql", "/health"))).rejects.toThrow();
  });
});

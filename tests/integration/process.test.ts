// The server as an operator runs it: a real process started like `npm start`,
// configured by environment variables, stopped by signals.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createClient } from "graphql-ws";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createTestDatabase, usePostgres } from "../helpers/database.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exit: Promise<number | null>;
}

async function launch(env: Record<string, string>, waitForReady = true): Promise<Started> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "test", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${env.PORT}/graphql`;
  if (waitForReady) {
    const deadline = Date.now() + 30_000;
    while (!output.includes("server ready")) {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`server did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { child, url, output: () => output, exit };
}

async function databaseEnv(): Promise<{ DATA_DIR: string; DATABASE_URL?: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "todo-process-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  if (!usePostgres) return { DATA_DIR: dataDir };
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  return { DATA_DIR: dataDir, DATABASE_URL: database.url! };
}

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
    const env = { ...(await databaseEnv()), PORT: String(await freePort()) };
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

describe("graceful shutdown", () => {
  it("finishes a request in flight, closes WebSockets with 1001 and exits 0 within 10 s", async () => {
    const env = { ...(await databaseEnv()), PORT: String(await freePort()) };
    const started = await launch(env);

    const closeCode = new Promise<number>((resolve) => {
      const client = createClient({
        url: started.url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => undefined,
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      void client;
    });
    // Wait until the socket is acknowledged, so it is open when the signal comes.
    await new Promise((resolve) => setTimeout(resolve, 300));

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

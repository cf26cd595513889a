// The server as an operator runs it: a real `node dist/main.js` process (what
// `npm start` runs; tests/setup/build.ts compiles it before the suite), configured by environment variables, stopped by signals. Each test
// file that calls serverProcesses() gets its processes killed and its data
// directories and databases removed after every test.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach } from "vitest";
import { createTestDatabase, usePostgres } from "./database.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const START_TIMEOUT_MS = 30_000;

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process has written to stdout and stderr so far. */
  output(): string;
  exit: Promise<number | null>;
}

export function serverProcesses() {
  const children: ChildProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill("SIGKILL");
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /**
   * Starts the server with `env`; unless told not to, waits for "server ready".
   * `via: "npm start"` runs it through npm, as the README says, so signals go
   * to npm first.
   */
  async function launch(env: Record<string, string>, waitForReady = true, via: "node" | "npm start" = "node"): Promise<ServerProcess> {
    const [command, args] = via === "node" ? [process.execPath, ["dist/main.js"]] : ["npm", ["start", "--silent"]];
    const child = spawn(command, args, {
      cwd: ROOT,
      // NODE_ENV as operators set it (not "test", which libraries treat
      // differently: Apollo, for one, installs no signal handlers then).
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "development", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    if (waitForReady) {
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!output.includes("server ready")) {
        if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
        if (Date.now() > deadline) throw new Error(`server did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return { child, url: `http://127.0.0.1:${env.PORT}/graphql`, output: () => output, exit };
  }

  /** A fresh DATA_DIR, a free PORT, and on PostgreSQL runs a fresh DATABASE_URL. */
  async function serverEnv(): Promise<{ DATA_DIR: string; PORT: string; DATABASE_URL?: string }> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "todo-process-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const base = { DATA_DIR: dataDir, PORT: String(await freePort()) };
    if (!usePostgres) return base;
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    return { ...base, DATABASE_URL: database.url! };
  }

  return { launch, serverEnv };
}

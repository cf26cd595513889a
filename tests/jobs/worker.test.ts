// `npm run worker`: the jobs in a process of their own, beside API instances
// with JOBS=off, on PostgreSQL; on the embedded database it is refused with a
// message that says why.
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { usePostgres } from "../helpers/database.js";
import { serverProcesses } from "../helpers/process.js";
import { postGraphQL } from "../helpers/server.js";
import { adminWithSpace, createTodo, createWebhook, eventually, startReceiver } from "../webhooks/support.js";

const { launch, serverEnv } = serverProcesses();
const ROOT = path.resolve(import.meta.dirname, "../..");

function startWorker(env: Record<string, string>) {
  const child = spawn("npm", ["run", "--silent", "worker"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "development", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exit, output: () => output };
}

describe("npm run worker", () => {
  it("on the embedded database, is refused while the server holds the data directory, saying why", async () => {
    const { DATABASE_URL: _unused, ...env } = await serverEnv();
    const server = await launch(env);
    const worker = startWorker(env);
    try {
      expect(await worker.exit).toBe(1);
      expect(worker.output()).toContain("npm run worker needs PostgreSQL (DATABASE_URL)");
      expect(worker.output()).toContain("With the embedded database, jobs run inside the server (JOBS=on, the default).");
    } finally {
      worker.child.kill("SIGKILL");
      server.child.kill("SIGTERM");
      await server.exit;
    }
  }, 90_000);

  it.skipIf(!usePostgres)("runs the jobs for API instances with JOBS=off, and stops on SIGTERM", async () => {
    const receiver = await startReceiver();
    const env = { ...(await serverEnv()), WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true", JOBS_POLL_INTERVAL: "500ms", EVENT_POLL_INTERVAL: "200ms" };
    const api = await launch({ ...env, JOBS: "off" });
    const gql = { gql: <Data>(query: string, variables?: Record<string, unknown>, token?: string) => postGraphQL<Data>(api.url, query, variables, token) };
    const worker = startWorker(env);
    try {
      const admin = await adminWithSpace(gql);
      await createWebhook(gql, admin.token, admin.spaceId, receiver.url);
      const before = await createTodo(gql, admin.token, admin.listId, "Queued while no worker runs");
      // The API instance runs nothing itself.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await eventually(() => worker.output().includes("worker ready"), "the worker to start", 60_000);
      const after = await createTodo(gql, admin.token, admin.listId, "Delivered by the worker");
      for (const todoId of [before, after]) {
        await eventually(() => receiver.requests.find((request) => request.body.includes(todoId)), `the delivery of ${todoId}`, 30_000);
      }
      worker.child.kill("SIGTERM");
      expect(await worker.exit, `the worker's output:\n${worker.output()}`).toBe(0);
      expect(worker.output()).toContain("worker stopped");
    } finally {
      worker.child.kill("SIGKILL");
      api.child.kill("SIGTERM");
      await api.exit;
      await receiver.close();
    }
  }, 120_000);
});

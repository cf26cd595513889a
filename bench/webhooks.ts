// What webhooks cost and how fast they go, on PostgreSQL, to a receiver on
// loopback (an HTTP server in this process that answers 204 at once):
//
//   1. deliveries per second: a backlog of BENCH_BACKLOG events written while
//      no process runs jobs (the API with JOBS=off), then drained by one
//      `npm run worker` process; rate = deliveries / (last - first arrival);
//   2. delivery lag at a steady BENCH_RATE events/s (createTodo, open loop):
//      from the createTodo response (the commit) to the signed POST's arrival,
//      p50/p99, with the jobs inside the server (JOBS=on, the default);
//   3. the write path's latency in the same steady run with the webhook
//      active against inactive (alternating phases, same server, same
//      database): the ratio says what delivering costs the writers.
//
//   npm run bench:webhooks
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_BACKLOG=3000   BENCH_RATE=100   BENCH_SECONDS=10 (per phase; 2 phases each way)
//
// Servers are real processes (development mode, for http:// receivers on
// loopback with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true; LOG_LEVEL=warn, so the
// per-attempt log line is not written). Every loop is bounded in time.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { boundedInt, createBenchDatabase, gql } from "./support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BACKLOG = boundedInt(process.env.BENCH_BACKLOG, 3000, 10, 100_000, "BENCH_BACKLOG");
const RATE = boundedInt(process.env.BENCH_RATE, 100, 1, 2000, "BENCH_RATE");
const SECONDS = boundedInt(process.env.BENCH_SECONDS, 10, 2, 300, "BENCH_SECONDS");
const JWT_SECRET = randomBytes(32).toString("base64url");

interface Process {
  url: string;
  stop(): Promise<void>;
}

function spawnProcess(script: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      NODE_ENV: "development",
      HOST: "127.0.0.1",
      JWT_SECRET,
      LOG_LEVEL: "warn",
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
      JOBS_POLL_INTERVAL: "500ms",
      ...env,
    },
  });
}

const stopper = (child: ChildProcess, dataDir: string) => async () => {
  if (child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  await rm(dataDir, { recursive: true, force: true });
};

async function startServer(databaseUrl: string, port: number, env: Record<string, string>): Promise<Process> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-webhooks-"));
  const child = spawnProcess("src/main.ts", { PORT: String(port), DATABASE_URL: databaseUrl, DATA_DIR: dataDir, ...env });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server on port ${port} exited with ${child.exitCode}`);
    if ((await fetch(`${url}/ready`).catch(() => undefined))?.ok) break;
    if (Date.now() > deadline) throw new Error(`server on port ${port} did not become ready`);
    await sleep(100);
  }
  return { url, stop: stopper(child, dataDir) };
}

async function startWorker(databaseUrl: string): Promise<Process> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-worker-"));
  const child = spawnProcess("src/jobs/worker.ts", { DATABASE_URL: databaseUrl, DATA_DIR: dataDir, MIGRATE_ON_START: "false" });
  return { url: "", stop: stopper(child, dataDir) };
}

/** The receiver: answers 204 at once, and notes when each todo's delivery arrived. */
async function startReceiver() {
  const arrivals = new Map<string, number>();
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const at = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data: { todoId?: string } };
      if (body.data.todoId && !arrivals.has(body.data.todoId)) arrivals.set(body.data.todoId, at);
      count++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    count: () => count,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function setUp(url: string, receiverUrl: string) {
  const { signUp } = await gql<{ signUp: { token: string } }>(
    url,
    `mutation ($input: SignUpInput!) { signUp(input: $input) { token } }`,
    { input: { email: `hooks-${randomBytes(4).toString("hex")}@example.com`, password: "bench-password-1" } },
  );
  const token = signUp.token;
  const { createSpace } = await gql<{ createSpace: { id: string } }>(
    url,
    `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }`,
    { input: { name: "Bench", slug: `hooks${randomBytes(4).toString("hex")}` } },
    token,
  );
  const { createList } = await gql<{ createList: { id: string } }>(
    url,
    `mutation ($input: CreateListInput!) { createList(input: $input) { id } }`,
    { input: { spaceId: createSpace.id, title: "Writes" } },
    token,
  );
  const { createWebhook } = await gql<{ createWebhook: { webhook: { id: string } } }>(
    url,
    `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }`,
    { input: { spaceId: createSpace.id, url: receiverUrl } },
    token,
  );
  const createTodo = async () => {
    const started = performance.now();
    const { createTodo: todo } = await gql<{ createTodo: { id: string } }>(
      url,
      `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
      { input: { listId: createList.id, title: "A todo" } },
      token,
    );
    return { id: todo.id, committedAt: performance.now(), latencyMs: performance.now() - started };
  };
  const setActive = (active: boolean) =>
    gql(url, `mutation ($id: ID!, $active: Boolean!) { updateWebhook(id: $id, input: { active: $active }) { id } }`, { id: createWebhook.webhook.id, active }, token);
  return { createTodo, setActive };
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** BENCH_RATE createTodo per second for `seconds`, each sent on schedule whatever the others do. */
async function steady(createTodo: () => Promise<{ id: string; committedAt: number; latencyMs: number }>, seconds: number) {
  const results: { id: string; committedAt: number; latencyMs: number }[] = [];
  let failed = 0;
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < RATE * seconds; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(
      createTodo().then(
        (result) => void results.push(result),
        // An overloaded server (a shared machine) may refuse a write; it is counted, not fatal.
        () => void failed++,
      ),
    );
  }
  await Promise.all(inFlight);
  if (failed > 0) console.error(`bench:webhooks: ${failed} of ${RATE * seconds} writes failed in this phase`);
  return results;
}

async function throughput(receiver: Awaited<ReturnType<typeof startReceiver>>) {
  const database = await createBenchDatabase("bench_webhooks_backlog");
  const processes: Process[] = [];
  try {
    const api = await startServer(database.url, 4800 + Math.floor(Math.random() * 100), { JOBS: "off" });
    processes.push(api);
    const { createTodo } = await setUp(api.url, receiver.url);
    const before = receiver.count();
    // The backlog, written while nothing runs jobs: 20 writers.
    let written = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (written < BACKLOG) {
          written++;
          await createTodo();
        }
      }),
    );
    console.error(`bench:webhooks: ${written} events in the backlog; starting a worker`);
    const arrivalsBefore = new Set(receiver.arrivals.keys());
    const workerStarted = performance.now();
    processes.push(await startWorker(database.url));
    await waitFor(() => receiver.count() - before >= written, 300_000, "the backlog to drain");
    const times = [...receiver.arrivals.entries()].filter(([id]) => !arrivalsBefore.has(id)).map(([, at]) => at);
    const first = Math.min(...times);
    const last = Math.max(...times);
    const drained = { deliveries: written, perSecond: written / ((last - first) / 1000), sinceWorkerStartS: (last - workerStarted) / 1000 };
    console.error(`bench:webhooks: ${drained.deliveries} deliveries at ${drained.perSecond.toFixed(0)}/s`);
    return drained;
  } finally {
    for (const process of processes.reverse()) await process.stop();
    await database.drop();
  }
}

async function lagAndWriteCost(receiver: Awaited<ReturnType<typeof startReceiver>>) {
  const database = await createBenchDatabase("bench_webhooks_steady");
  let server: Process | undefined;
  try {
    server = await startServer(database.url, 4900 + Math.floor(Math.random() * 100), {});
    const { createTodo, setActive } = await setUp(server.url, receiver.url);
    // Warm-up with the webhook on.
    await steady(createTodo, 2);
    const off: number[] = [];
    const on: number[] = [];
    const lags: number[] = [];
    for (const phase of ["off", "on", "off", "on"] as const) {
      await setActive(phase === "on");
      await sleep(500);
      const results = await steady(createTodo, SECONDS);
      (phase === "on" ? on : off).push(...results.map((result) => result.latencyMs));
      if (phase === "on") {
        await waitFor(() => results.every((result) => receiver.arrivals.has(result.id)), 60_000, "the phase's deliveries");
        lags.push(...results.map((result) => receiver.arrivals.get(result.id)! - result.committedAt));
      }
      console.error(`bench:webhooks: steady phase (webhook ${phase}) done`);
    }
    return { off, on, lags };
  } finally {
    await server?.stop();
    await database.drop();
  }
}

async function main() {
  const receiver = await startReceiver();
  try {
    const drained = await throughput(receiver);
    const steadyRun = await lagAndWriteCost(receiver);
    const ms = (value: number) => value.toFixed(1);
    console.log(`\nWebhooks on PostgreSQL, receiver on loopback, ${os.cpus().length} cores\n`);
    console.log("| measure | value |");
    console.log("|---|---:|");
    console.log(`| deliveries/s, one worker draining a backlog of ${drained.deliveries} | ${drained.perSecond.toFixed(0)} |`);
    console.log(`| delivery lag p50 at ${RATE} events/s (commit to arrival) | ${ms(percentile(steadyRun.lags, 50))} ms |`);
    console.log(`| delivery lag p99 at ${RATE} events/s | ${ms(percentile(steadyRun.lags, 99))} ms |`);
    for (const p of [50, 99]) {
      const off = percentile(steadyRun.off, p);
      const on = percentile(steadyRun.on, p);
      console.log(`| createTodo latency p${p} at ${RATE}/s, webhook off / on | ${ms(off)} / ${ms(on)} ms (${(on / off).toFixed(2)}×) |`);
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    console.log(`| createTodo latency mean, webhook off / on | ${ms(mean(steadyRun.off))} / ${ms(mean(steadyRun.on))} ms (${(mean(steadyRun.on) / mean(steadyRun.off)).toFixed(2)}×) |`);
  } finally {
    await receiver.close();
  }
}

await main();

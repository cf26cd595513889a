// What realtime delivery costs as subscribers grow: one server instance on
// PostgreSQL, N subscribers over real graphql-ws WebSockets, one writer.
//
//   npm run bench:subscriptions
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_SUBSCRIBERS=1000,5000,10000   (the default; 1 is always measured first, as the baseline)
//   BENCH_MUTATIONS=3                   (writes measured per level)
//   BENCH_OPERATION=spaceActivity       (or todoChanged)
//
// Two processes. This one runs the server (src/server.ts startServer, the
// real thing: graphql-ws, the tailer, a policy-bound re-read of every event
// for every subscriber) on a fresh database bench_subs_<random>, dropped at
// the end; its RSS is the server's. A child process (this file again, with
// --clients) holds the subscribers and the writer: so the server's memory
// figure carries no client, the two share the machine's two cores as a real
// deployment and its clients would not, and each process stays under the
// 20,000 descriptors `ulimit -n` allows here (10,000 subscribers are 10,000
// sockets on each side).
//
// Subscribers are distinct users, all members of one space, each on its own
// connection with one subscription (users and their sessions are inserted
// directly and their tokens signed with the server's secret: 10,000 argon2
// sign-ups would take longer than the measurement). The writer renames one todo M times over
// HTTP, one write at a time: each write waits until every subscriber has it
// (or 120 s pass), so the figures are fan-out latency, not queueing behind
// earlier writes. Latency is measured in the client process, from just before
// the mutation's request is sent to each subscriber's receipt of the event;
// the mutation's own round trip (which ends after its commit) is given too.
//
// Levels are cumulative (1, then up to each N), opened in batches; before a
// level is measured, probe writes run until every subscriber has received
// one. Loopback only; every loop and wait is bounded.
import { boundedInt, createBenchDatabase } from "./support.js";
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { createClient, type Client } from "graphql-ws";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { loadConfig } from "../src/config.js";
import { startServer, type RunningServer } from "../src/server.js";

const JWT_SECRET = randomBytes(32).toString("base64url");
const OPEN_BATCH = 200;
const DELIVERY_TIMEOUT_MS = 120_000;
const MAX_PROBES = 5;

/** Every user gets one session, named after it: tokens must carry an active session's id. */
const sessionIdOf = (userId: string) => `s${userId}`;

type Operation = "spaceActivity" | "todoChanged";

const QUERIES: Record<Operation, string> = {
  spaceActivity: `subscription ($spaceId: ID!) {
    spaceActivity(spaceId: $spaceId) { ... on TodoEvent { kind todoId cursor todo { id title } } }
  }`,
  todoChanged: `subscription ($listId: ID!) {
    todoChanged(listId: $listId) { kind todoId cursor todo { id title } }
  }`,
};

// ------------------------------------------------------------------ messages

interface Setup {
  httpUrl: string;
  wsUrl: string;
  secret: string;
  operation: Operation;
  spaceId: string;
  listId: string;
  todoId: string;
  writerId: string;
  subscriberIds: string[];
}

type ToClients =
  | { type: "setup"; setup: Setup }
  | { type: "open"; count: number }
  | { type: "measure"; mutations: number }
  | { type: "close" };

interface Measurement {
  subscribers: number;
  samples: number;
  missing: number;
  p50: number;
  p99: number;
  max: number;
  mutationP50: number;
}

type FromClients =
  | { type: "ready" }
  | { type: "opened"; open: number; failed: number; probes: number; seconds: number }
  | { type: "measured"; measurement: Measurement }
  | { type: "closed" }
  | { type: "error"; message: string };

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : Number.NaN;

// ------------------------------------------------------------------- clients

async function runClients(): Promise<void> {
  let setup: Setup | undefined;
  const clients: Client[] = [];
  // Per subscriber: the marks (titles) received, with their receipt time.
  const received: Map<string, number>[] = [];
  // Per mark, how many subscribers have it (checked on every receipt).
  const counts = new Map<string, number>();
  const allHave = (mark: string) => (counts.get(mark) ?? 0) >= received.length;
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  const send = (message: FromClients) => process.send?.(message);

  const waitUntil = (condition: () => boolean, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (condition()) return resolve(true);
      const check = () => {
        if (!condition()) return;
        finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        listeners.delete(check);
        resolve(ok);
      };
      listeners.add(check);
    });

  const sign = (userId: string, secret: Uint8Array) =>
    new SignJWT({ sid: sessionIdOf(userId) }).setProtectedHeader({ alg: "HS256" }).setSubject(userId).setIssuer("todo-graphql-server").setIssuedAt().setExpirationTime("2h").sign(secret);

  async function writer(title: string): Promise<number> {
    if (!setup) throw new Error("no setup");
    const started = performance.now();
    const response = await fetch(setup.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${writerToken}` },
      body: JSON.stringify({ query: "mutation ($id: ID!, $title: String!) { updateTodo(id: $id, input: { title: $title }) { id } }", variables: { id: setup.todoId, title } }),
    });
    const body = (await response.json()) as { errors?: unknown };
    if (body.errors) throw new Error(`mutation failed: ${JSON.stringify(body.errors)}`);
    return performance.now() - started;
  }
  let writerToken = "";

  async function openOne(index: number, token: string): Promise<boolean> {
    if (!setup) throw new Error("no setup");
    const marks = new Map<string, number>();
    received[index] = marks;
    const connected = new Promise<boolean>((resolve) => {
      const client = createClient({
        url: setup!.wsUrl,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
        onNonLazyError: () => resolve(false),
        on: { connected: () => resolve(true), closed: () => resolve(false) },
      });
      clients[index] = client;
      client.subscribe<Record<string, { todo?: { title: string } | null }>>(
        { query: QUERIES[setup!.operation], variables: { spaceId: setup!.spaceId, listId: setup!.listId } },
        {
          next: (result) => {
            const title = result.data?.[setup!.operation]?.todo?.title;
            if (title !== undefined && !marks.has(title)) {
              marks.set(title, performance.now());
              counts.set(title, (counts.get(title) ?? 0) + 1);
              changed();
            }
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    });
    return connected;
  }

  let probeCount = 0;
  async function probeUntilAllLive(): Promise<number> {
    // A probe reaches everyone whose subscription was registered before it
    // committed; only a subscription registered later needs another. Waiting
    // out the whole fan-out first keeps probes from piling up behind it.
    const patienceMs = Math.max(30_000, received.length * 20);
    for (let attempt = 1; attempt <= MAX_PROBES; attempt++) {
      const mark = `probe ${++probeCount}`;
      await writer(mark);
      const live = await waitUntil(() => allHave(mark), patienceMs);
      if (live) return attempt;
    }
    throw new Error(`not every subscriber received a probe after ${MAX_PROBES} attempts`);
  }

  let mutationCount = 0;
  process.on("message", (message: ToClients) => {
    void (async () => {
      try {
        if (message.type === "setup") {
          setup = message.setup;
          writerToken = await sign(setup.writerId, new TextEncoder().encode(setup.secret));
          send({ type: "ready" });
        } else if (message.type === "open") {
          if (!setup) throw new Error("no setup");
          const secret = new TextEncoder().encode(setup.secret);
          const started = performance.now();
          const from = clients.length;
          let failed = 0;
          for (let start = from; start < from + message.count; start += OPEN_BATCH) {
            const end = Math.min(from + message.count, start + OPEN_BATCH);
            const batch = [];
            for (let index = start; index < end; index++) {
              const userId = setup.subscriberIds[index];
              if (!userId) throw new Error(`only ${setup.subscriberIds.length} subscriber users were created`);
              batch.push(sign(userId, secret).then((token) => openOne(index, token)));
            }
            failed += (await Promise.all(batch)).filter((ok) => !ok).length;
          }
          if (failed > 0) throw new Error(`${failed} of ${message.count} connections failed to open`);
          const probes = await probeUntilAllLive();
          send({ type: "opened", open: clients.length, failed, probes, seconds: (performance.now() - started) / 1000 });
        } else if (message.type === "measure") {
          const latencies: number[] = [];
          const mutationTimes: number[] = [];
          let missing = 0;
          for (let index = 0; index < message.mutations; index++) {
            const mark = `m${++mutationCount}`;
            const started = performance.now();
            mutationTimes.push(await writer(mark));
            await waitUntil(() => allHave(mark), DELIVERY_TIMEOUT_MS);
            for (const marks of received) {
              const at = marks.get(mark);
              if (at === undefined) missing++;
              else latencies.push(at - started);
            }
            // Keep memory flat: marks of earlier writes are not needed again.
            for (const marks of received) marks.clear();
            counts.clear();
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          latencies.sort((x, y) => x - y);
          mutationTimes.sort((x, y) => x - y);
          send({
            type: "measured",
            measurement: {
              subscribers: clients.length,
              samples: latencies.length,
              missing,
              p50: percentile(latencies, 50),
              p99: percentile(latencies, 99),
              max: latencies.at(-1) ?? Number.NaN,
              mutationP50: percentile(mutationTimes, 50),
            },
          });
        } else if (message.type === "close") {
          await Promise.all(clients.map((client) => client.dispose()));
          send({ type: "closed" });
          process.exit(0);
        }
      } catch (error) {
        send({ type: "error", message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  send({ type: "ready" });
}

// -------------------------------------------------------------------- server

class Children {
  private pending: { resolve: (message: FromClients) => void; reject: (error: Error) => void } | undefined;
  constructor(readonly child: ChildProcess) {
    child.on("message", (message: FromClients) => {
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) return;
      if (message.type === "error") pending.reject(new Error(`client process: ${message.message}`));
      else pending.resolve(message);
    });
    child.once("exit", (code) => {
      this.pending?.reject(new Error(`client process exited (${code})`));
      this.pending = undefined;
    });
  }
  next(): Promise<FromClients> {
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }
  async call(message: ToClients): Promise<FromClients> {
    const reply = this.next();
    this.child.send(message);
    return reply;
  }
}

function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

// A full collection before each memory figure, so that it counts what the
// subscribers hold rather than garbage not yet collected. `npm run` starts
// tsx without --expose-gc; the flag can still be set at run time, and a new
// context then sees the gc function.
v8.setFlagsFromString("--expose-gc");
const collectGarbage = vm.runInNewContext("gc") as () => void;

function settledRssMb(): number {
  collectGarbage();
  collectGarbage();
  return rssMb();
}

/** The signal that stopped the run, if one did. */
let interrupted: NodeJS.Signals | undefined;

async function main(): Promise<void> {
  const operation = (process.env.BENCH_OPERATION ?? "spaceActivity") as Operation;
  if (!(operation in QUERIES)) throw new Error(`BENCH_OPERATION must be spaceActivity or todoChanged, not ${operation}`);
  const levels = (process.env.BENCH_SUBSCRIBERS ?? "1000,5000,10000")
    .split(",")
    .map((value) => boundedInt(value.trim(), 0, 1, 19_000, "BENCH_SUBSCRIBERS"))
    .sort((x, y) => x - y);
  const mutations = boundedInt(process.env.BENCH_MUTATIONS, 3, 1, 1000, "BENCH_MUTATIONS");
  const steps = [1, ...levels.filter((n) => n > 1)];
  const most = steps.at(-1)!;

  // Its own signal handling (below) stops the clients first, then drops it.
  const database = await createBenchDatabase("bench_subs", { dropOnSignal: false });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-subs-"));
  let server: RunningServer | undefined;
  let children: Children | undefined;
  const deadline = setTimeout(() => {
    console.error("bench:subscriptions: gave up after 15 minutes");
    process.exit(2);
  }, 15 * 60_000);
  deadline.unref();
  try {
    const config = loadConfig({
      NODE_ENV: "production",
      // Loopback only, and nothing else is there to read it.
      METRICS_PUBLIC: "true",
      // Every subscriber connects from 127.0.0.1, a batch at a time.
      WS_MAX_PENDING_PER_ADDRESS: String(OPEN_BATCH),
      HOST: "127.0.0.1",
      PORT: "0",
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      JWT_SECRET,
      LOG_LEVEL: "error",
    });
    server = await startServer(config);
    const prisma = server.database.prisma;

    // Data: a writer, `most` subscribers, one space they are all members of,
    // one public list with one todo.
    const writerId = `uwriter${randomBytes(4).toString("hex")}`;
    const subscriberIds = Array.from({ length: most }, (_, index) => `usub${index.toString(36).padStart(6, "0")}`);
    // Nobody logs in with a password: any string will do as the hash.
    const users = [writerId, ...subscriberIds].map((id) => ({ id, email: `${id}@example.com`, passwordHash: "not-a-hash" }));
    for (let start = 0; start < users.length; start += 5000) await prisma.user.createMany({ data: users.slice(start, start + 5000) });
    const expiresAt = new Date(Date.now() + 24 * 3_600_000);
    const sessions = users.map(({ id }) => ({ id: sessionIdOf(id), userId: id, expiresAt }));
    for (let start = 0; start < sessions.length; start += 5000) await prisma.session.createMany({ data: sessions.slice(start, start + 5000) });
    const space = await prisma.space.create({ data: { name: "Bench", slug: `bench${randomBytes(3).toString("hex")}`, ownerId: writerId } });
    const members = [
      { spaceId: space.id, userId: writerId, role: "ADMIN" as const },
      ...subscriberIds.map((userId) => ({ spaceId: space.id, userId, role: "USER" as const })),
    ];
    for (let start = 0; start < members.length; start += 5000) await prisma.spaceMember.createMany({ data: members.slice(start, start + 5000) });
    const list = await prisma.list.create({ data: { title: "Bench", spaceId: space.id, ownerId: writerId } });
    const todo = await prisma.todo.create({ data: { title: "start", listId: list.id, ownerId: writerId } });
    await prisma.$executeRawUnsafe("ANALYZE");

    const child = fork(fileURLToPath(import.meta.url), ["--clients"], { execArgv: process.execArgv, stdio: "inherit" });
    child.on("error", (error) => console.error(`client process: ${error.message}`));
    children = new Children(child);
    // Ctrl-C or a kill: stop the clients, then let the finally below drop the database.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        interrupted = signal;
        console.error(`bench:subscriptions: ${signal}, cleaning up`);
        child.kill();
      });
    }
    await children.next(); // ready
    await children.call({
      type: "setup",
      setup: {
        httpUrl: server.url.replace("localhost", "127.0.0.1"),
        wsUrl: server.url.replace(/^http/, "ws").replace("localhost", "127.0.0.1"),
        secret: JWT_SECRET,
        operation,
        spaceId: space.id,
        listId: list.id,
        todoId: todo.id,
        writerId,
        subscriberIds,
      },
    });

    // Baseline memory: the server started, seeded and warmed up (a few writes,
    // nobody subscribed).
    const writerToken = await new SignJWT({ sid: sessionIdOf(writerId) })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(writerId)
      .setIssuer("todo-graphql-server")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(JWT_SECRET));
    for (let index = 0; index < 5; index++) {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${writerToken}` },
        body: JSON.stringify({ query: `mutation { updateTodo(id: "${todo.id}", input: { title: "warm ${index}" }) { id } }` }),
      });
      if (!response.ok) throw new Error(`warm-up write failed: ${response.status} ${await response.text()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const baselineRss = settledRssMb();
    console.log(`bench:subscriptions on PostgreSQL (${database.name}, dropped at the end), ${operation}, ${mutations} writes per level`);
    console.log(`server RSS with 0 subscribers: ${baselineRss.toFixed(0)} MB; ulimit -n: ${await fileLimit()}`);

    const rows: { n: number; m: Measurement; rss: number; peakRss: number; openSeconds: number }[] = [];
    for (const n of steps) {
      const open = (await children.call({ type: "open", count: n - (rows.at(-1)?.n ?? 0) })) as Extract<FromClients, { type: "opened" }>;
      const rss = settledRssMb();
      let peakRss = rss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb())), 100);
      const measured = (await children.call({ type: "measure", mutations })) as Extract<FromClients, { type: "measured" }>;
      clearInterval(sampler);
      peakRss = Math.max(peakRss, rssMb());
      rows.push({ n, m: measured.measurement, rss, peakRss, openSeconds: open.seconds });
      console.log(
        `  N=${n}: open+live in ${open.seconds.toFixed(1)} s, p50 ${measured.measurement.p50.toFixed(1)} ms, p99 ${measured.measurement.p99.toFixed(1)} ms, RSS ${rss.toFixed(0)} MB`,
      );
    }

    const base = rows[0]!;
    const f = (value: number, digits = 1) => value.toFixed(digits).padStart(9);
    console.log("");
    console.log("| subscribers | p50 ms | p99 ms | max ms | p50 × N=1 | p99 × N=1 | server RSS MB | RSS − idle MB | per subscriber KB | RSS × idle | write round trip p50 ms | missing |");
    console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    console.log(`| 0 (idle) | | | | | | ${baselineRss.toFixed(0)} | | | 1.00 | | |`);
    for (const row of rows) {
      const extra = row.rss - baselineRss;
      console.log(
        `| ${row.n} |${f(row.m.p50)} |${f(row.m.p99)} |${f(row.m.max)} |${f(row.m.p50 / base.m.p50, 2)} |${f(row.m.p99 / base.m.p99, 2)} |${f(row.rss, 0)} |${f(extra, 0)} |${f(row.n > 1 ? (extra * 1024) / row.n : Number.NaN, 1)} |${f(row.rss / baselineRss, 2)} |${f(row.m.mutationP50)} |${f(row.m.missing, 0)} |`,
      );
    }
    console.log("");
    console.log(`latency: from just before the write's HTTP request to each subscriber's receipt (client process clock); ${rows.map((r) => `${r.m.samples} samples at N=${r.n}`).join(", ")}`);
    console.log(`RSS: the server process after the level's subscriptions were live (peak during the writes: ${rows.map((r) => `${r.peakRss.toFixed(0)} MB`).join(", ")})`);
  } finally {
    clearTimeout(deadline);
    if (children?.child.connected) {
      await Promise.race([children.call({ type: "close" }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 30_000))]);
    }
    children?.child.kill();
    await server?.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function fileLimit(): Promise<string> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve) => execFile("sh", ["-c", "ulimit -n"], (error, stdout) => resolve(error ? "unknown" : stdout.trim())));
}

if (process.argv.includes("--clients")) {
  await runClients();
} else {
  await main().catch((error: unknown) => {
    // Stopped by a signal: the clients were killed on purpose, not a failure to show.
    if (interrupted) console.error(`bench:subscriptions: stopped by ${interrupted}; its database was dropped`);
    else console.error(error);
    process.exitCode = 1;
  });
}

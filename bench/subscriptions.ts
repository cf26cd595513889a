// What realtime delivery costs as subscribers grow: one server instance on
// PostgreSQL, subscribers over real graphql-ws WebSockets, one writer.
//
//   npm run bench:subscriptions
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_SCENARIOS=one-space,spread    (the default: both, always in that order)
//   BENCH_SUBSCRIBERS=1000,5000,10000   (one-space levels; 1 is always measured first, as the baseline)
//   BENCH_MUTATIONS=5                   (one-space: writes measured per level, and samples of the
//                                        mutation during fan-out)
//   BENCH_SPREAD=10000x1000             (spread: subscribers x spaces; subscribers a multiple of spaces)
//   BENCH_SPREAD_MUTATIONS=20           (spread: writes measured)
//   BENCH_OPERATION=spaceActivity       (or todoChanged)
//   BENCH_LOG_LEVEL=debug               (the server's log level, error by default: debug shows every
//                                        operation and fan-out as the server timed it)
//   BENCH_HEAP_SAMPLE=<dir>             (what the server allocates during the largest level's writes,
//                                        and during spread's connections opening)
//   BENCH_HEAP_SNAPSHOT=<dir>           (heap snapshots of the server: idle, and at each level connected)
//   BENCH_OPEN_BATCH=200                (connections the client opens at once; the server's
//                                        WS_MAX_PENDING_PER_ADDRESS follows it)
//   BENCH_SERVER_FLAGS="--trace-gc"     (node flags added to the server processes', to profile or
//                                        trace them: "--cpu-prof --cpu-prof-dir=/tmp/prof")
//
// Scenarios, each on a fresh server process and a fresh database of its own
// (bench_subs_<random>, dropped when it ends), so that neither its sockets
// nor its memory figures carry anything of the other:
//   one-space  Every subscriber a member of one space, subscribed to it. Levels
//              are cumulative (1, then up to each N), opened in batches. At the
//              largest level, also the mutation during fan-out (below).
//   spread     Subscribers spread over many spaces (10,000 over 1,000: 10 per
//              space), each a member of its own space only, subscribed to it,
//              all connected at once. Each write goes to the todo of one
//              space, the spaces taken in a shuffled round robin; latency is
//              over that space's subscribers, and every receipt of a write by
//              a subscriber of another space counts as leaked (must be 0;
//              probe writes are checked too).
//
// Per level: delivery p50/p99/max (from just before the write's request is
// sent to each subscriber's receipt, client process clock), missing
// (subscribers without the event after 120 s), leaked, the write's own round
// trip (it ends after the commit), server RSS with the subscriptions
// connected (after a full GC, and after a memory-reducing one: below) and at
// its peak during the writes (the kernel's high-water mark, reset before the
// writes; sampled every 100 ms where that cannot be reset), KB per
// subscriber ((RSS − idle RSS) / N, both after a full GC, idle being the
// same server before any subscriber connected), and SQL statements per
// event: the deltas of realtime_fanout_sql_statements_total over
// realtime_fanout_events_total on GET /metrics across the measured writes
// ("n/a" while the server does not expose them). Beside them, to tell the
// server's part from the machine's: each write's own p99 (a slow write shows
// there, not in the medians), the server's own mean fan-out time (event
// handed to the fan-out to its last frame written,
// realtime_fanout_duration_seconds), and the CPU time each process spent per
// write (server, and clients: the two share this machine's cores).
//
// Mutation during fan-out: at the largest one-space level, a write to a todo
// in a space nobody subscribes to (a "quiet" write), timed over HTTP from a
// worker thread of the client process (its main thread is busy reading the
// subscribers' events, and would delay reading the response), once idle
// (nothing in flight) and once right after a fan-out write's response,
// the two interleaved BENCH_MUTATIONS times; medians and their ratio. A quiet
// write reaching any subscriber counts as leaked.
//
// Three kinds of process. The one `npm run` starts coordinates: it makes each
// scenario's database, runs the scenario in a process of its own (this file
// with --phase), drops the database, and prints the tables and the verdict.
// A phase process runs the server (startServer of src/server.ts as built in
// dist/, which `npm start` runs and the npm script builds first: the real thing:
// graphql-ws, the tailer, a policy-bound check of every event for every
// subscriber), so its RSS is the server's. Its child (this file with
// --clients) holds the subscribers and the writer: so the server's memory
// figure carries no client, the two share the machine's two cores as a real
// deployment and its clients would not, and each process stays under the
// 20,000 descriptors `ulimit -n` allows here (10,000 subscribers are 10,000
// sockets on each side). Ctrl-C, SIGTERM or the 15-minute deadline stop the
// processes and drop the database.
//
// Subscribers are distinct users, each on its own connection with one
// subscription (users and their sessions are inserted directly, by the
// database, and their tokens signed with the server's secret: 10,000 argon2
// sign-ups would take longer than the measurement). The writer renames todos
// over HTTP, one write at a time: each write waits until every subscriber it
// is meant for has it (or 120 s pass), so the figures are fan-out latency,
// not queueing behind earlier writes. Before a level is measured, probe
// writes (to every space with subscribers) run until every subscriber has
// received one. Loopback only; every loop and wait is bounded. The verdict
// at the end is informational: the run exits 0 unless something broke.
import { boundedInt, createBenchDatabase, gql, type BenchDatabase } from "./support.js";
import { fork, type ChildProcess } from "node:child_process";
import { Session } from "node:inspector/promises";
import { randomBytes, webcrypto } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { Worker } from "node:worker_threads";
import { createClient, type Client } from "graphql-ws";
import { SignJWT } from "jose";
import WebSocket from "ws";
import type { RunningServer } from "../src/server.js";
import { Subscriber } from "./subscriber.js";

const JWT_SECRET = randomBytes(32).toString("base64url");
/** BENCH_CLIENT: the subscribers' client, lean (subscriber.ts, the default) or graphql-ws's createClient. */
const CLIENT = ((value) => {
  if (value !== "lean" && value !== "graphql-ws") throw new Error(`BENCH_CLIENT is lean or graphql-ws, not ${value}`);
  return value;
})(process.env.BENCH_CLIENT ?? "lean");
const OPEN_BATCH = Number(process.env.BENCH_OPEN_BATCH ?? 200);
const DELIVERY_TIMEOUT_MS = 120_000;
const MAX_PROBES = 5;
/** Probe writes in flight at once when many spaces need one (spread). */
const PROBE_CONCURRENCY = 4;
/** After the last measured write, how long a write may still leak to another space and be counted. */
const LEAK_SETTLE_MS = 500;
const DEADLINE_MS = 15 * 60_000;
const ISSUER = "todo-graphql-server";
/** What package.json's start script passes to node, so that the server measured is the one that runs. */
const SERVER_V8_FLAGS = ["--max-semi-space-size=16"];
/** BENCH_SERVER_FLAGS: more node flags for the server processes, to profile or trace them as they are measured. */
const extraServerFlags = () => (process.env.BENCH_SERVER_FLAGS ?? "").split(/\s+/).filter(Boolean);
/** BENCH_CLIENT_FLAGS: node flags for the client process (it does not get the server's). */
const extraClientFlags = () => (process.env.BENCH_CLIENT_FLAGS ?? "").split(/\s+/).filter(Boolean);

// Targets the verdict checks (informational).
const TARGET_ONE_SPACE_P99_MS = 200;
const TARGET_SPREAD_P99_MS = 50;
const TARGET_RSS_MB = 500;
const TARGET_SQL_SPREAD = 1.5;
const TARGET_DURING_FANOUT_RATIO = 2;

const FANOUT_EVENTS = "realtime_fanout_events_total";
const FANOUT_STATEMENTS = "realtime_fanout_sql_statements_total";
const FANOUT_DURATION = "realtime_fanout_duration_seconds";
const DB_STATEMENTS = "db_statements_total";

type Operation = "spaceActivity" | "todoChanged";
type Scenario = "one-space" | "spread";

/** The one write of the benchmark: a todo renamed. */
const RENAME_TODO = "mutation ($id: ID!, $title: String!) { updateTodo(id: $id, input: { title: $title }) { id } }";

const QUERIES: Record<Operation, string> = {
  spaceActivity: `subscription ($spaceId: ID!) {
    spaceActivity(spaceId: $spaceId) { ... on TodoEvent { kind todoId cursor todo { id title } } }
  }`,
  todoChanged: `subscription ($listId: ID!) {
    todoChanged(listId: $listId) { kind todoId cursor todo { id title } }
  }`,
};

/** Every user gets one session, named after it: tokens must carry an active session's id. */
const sessionIdOf = (userId: string) => `s${userId}`;

// ------------------------------------------------------------------ messages

interface Setup {
  httpUrl: string;
  wsUrl: string;
  secret: string;
  operation: Operation;
  writerId: string;
  /** A todo in a space with no subscriber: the write no subscriber receives. */
  quietTodoId: string;
}

/** A space with its subscribers, and the todo its writes rename. */
interface Group {
  spaceId: string;
  listId: string;
  todoId: string;
  subscriberIds: string[];
}

interface Measurement {
  subscribers: number;
  writes: number;
  samples: number;
  missing: number;
  /** Receipts of a write by a subscriber of another space, since the scenario began (probes included). */
  leaked: number;
  /** Sockets the server closed since the scenario began. */
  closedByServer: number;
  p50: number;
  p99: number;
  max: number;
  /** Each write's own p99, in the order written: a slow first write shows here, not in the medians. */
  perWriteP99: number[];
  mutationP50: number;
  /** CPU time of the client process (both threads) over the measured writes, ms. */
  clientCpuMs: number;
}

interface DuringFanout {
  subscribers: number;
  samples: number;
  idleP50: number;
  duringP50: number;
  /** Samples whose quiet write returned before the fan-out had reached every subscriber. */
  overlapped: number;
  /** Median share of subscribers that had the fan-out event when the quiet write was sent. */
  deliveredAtSend: number;
  leaked: number;
}

type ToClients =
  | { type: "setup"; setup: Setup }
  | { type: "scenario"; groups: Group[] }
  | { type: "open"; count: number }
  | { type: "measure"; writes: number; spread: boolean }
  | { type: "during-fanout"; samples: number }
  | { type: "close" };

type FromClients =
  | { type: "ready" }
  | { type: "opened"; open: number; probes: number; seconds: number }
  | { type: "measured"; measurement: Measurement }
  | { type: "during-fanout"; result: DuringFanout }
  | { type: "closed" }
  | { type: "error"; message: string };

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : Number.NaN;
const median = (values: number[]) => percentile([...values].sort((x, y) => x - y), 50);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `task` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function signingKey(secret: string) {
  return webcrypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function signToken(userId: string, key: webcrypto.CryptoKey): Promise<string> {
  return new SignJWT({ sid: sessionIdOf(userId) })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(key);
}

// ------------------------------------------------------------------- clients

/** One write being followed: who should get it, and when each did. */
interface Tracked {
  /** The group it was written to; -1 for a quiet write (nobody should get it). */
  group: number;
  expected: number;
  /** Receipt times by subscriber index; dropped once the write is done with. */
  receipts: Map<number, number> | undefined;
  onComplete: (() => void) | undefined;
}

/**
 * Renames a todo over HTTP from a worker thread and times the round trip
 * there, clear of whatever keeps the client process's main thread busy.
 */
class QuietWriter {
  private readonly worker: Worker;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (ms: number) => void; reject: (error: Error) => void }>();

  constructor(origin: string, token: string) {
    this.worker = new Worker(QUIET_WRITER_SOURCE, { eval: true, workerData: { origin, token, query: RENAME_TODO } });
    this.worker.on("message", (message: { id: number; ms?: number; error?: string }) => {
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error));
      else waiting?.resolve(message.ms!);
    });
    this.worker.on("error", (error) => {
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    });
  }

  write(todoId: string, title: string): Promise<number> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, todoId, title });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

// The worker's script: RENAME_TODO (workerData.query), timed around the fetch.
const QUIET_WRITER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { performance } = require("node:perf_hooks");
parentPort.on("message", async ({ id, todoId, title }) => {
  try {
    const started = performance.now();
    const response = await fetch(workerData.origin + "/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + workerData.token },
      body: JSON.stringify({ query: workerData.query, variables: { id: todoId, title } }),
    });
    const body = await response.json();
    const ms = performance.now() - started;
    if (body.errors || !body.data) throw new Error("GraphQL error: " + JSON.stringify(body.errors));
    parentPort.postMessage({ id, ms });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

async function runClients(): Promise<void> {
  let setup: Setup | undefined;
  let key: webcrypto.CryptoKey | undefined;
  let writerToken = "";
  let groups: Group[] = [];
  // Subscribers in opening order (group by group), with their group.
  let order: { userId: string; group: number }[] = [];
  let clients: (Client | Subscriber)[] = [];
  let openPerGroup: number[] = [];
  // Every write of the scenario by its mark (the todo's new title). Kept after
  // a write is done with (without its receipts), so a late receipt in another
  // space is still recognised as a leak.
  let tracked = new Map<string, Tracked>();
  let leaked = 0;
  let closedByServer = 0;
  let subscriptionErrors: string[] = [];
  let disposing = false;
  const send = (message: FromClients) => process.send?.(message);

  const track = (mark: string, group: number): Tracked => {
    const entry: Tracked = { group, expected: group < 0 ? 0 : openPerGroup[group]!, receipts: new Map(), onComplete: undefined };
    tracked.set(mark, entry);
    return entry;
  };
  const untrack = (entry: Tracked) => {
    entry.receipts = undefined;
    entry.onComplete = undefined;
  };
  const complete = (entry: Tracked, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if ((entry.receipts?.size ?? 0) >= entry.expected) return resolve(true);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        entry.onComplete = undefined;
        resolve(ok);
      };
      entry.onComplete = () => finish(true);
    });

  const receive = (index: number, mark: string) => {
    const at = performance.now();
    const entry = tracked.get(mark);
    if (!entry) return; // a title from before the scenario (warm-up)
    if (entry.group !== order[index]!.group) {
      leaked++;
      return;
    }
    if (!entry.receipts || entry.receipts.has(index)) return;
    entry.receipts.set(index, at);
    if (entry.receipts.size >= entry.expected) entry.onComplete?.();
  };

  async function write(todoId: string, title: string): Promise<number> {
    if (!setup) throw new Error("no setup");
    const started = performance.now();
    await gql(new URL(setup.httpUrl).origin, RENAME_TODO, { id: todoId, title }, writerToken);
    return performance.now() - started;
  }

  function openOne(index: number, token: string): Promise<boolean> {
    if (!setup) throw new Error("no setup");
    const { wsUrl, operation } = setup;
    const group = groups[order[index]!.group]!;
    const query = QUERIES[operation];
    const variables = { spaceId: group.spaceId, listId: group.listId };
    return new Promise<boolean>((resolve) => {
      let connected = false;
      const next = (result: { data?: Record<string, unknown> | null; errors?: unknown }) => {
        if (result.errors) subscriptionErrors.push(JSON.stringify(result.errors));
        const title = (result.data?.[operation] as { todo?: { title: string } | null } | undefined)?.todo?.title;
        if (title !== undefined) receive(index, title);
      };
      const closed = () => {
        if (connected && !disposing) closedByServer++;
        resolve(false);
      };
      const onConnected = () => {
        connected = true;
        resolve(true);
      };
      const error = (message: string) => subscriptionErrors.push(message);
      if (CLIENT === "lean") {
        clients[index] = new Subscriber({ url: wsUrl, token, query, variables, on: { connected: onConnected, next, error, closed } });
        return;
      }
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
        onNonLazyError: () => resolve(false),
        on: { connected: onConnected, closed },
      });
      clients[index] = client;
      client.subscribe<Record<string, unknown>>(
        { query, variables },
        { next, error: (cause) => error(cause instanceof Error ? cause.message : JSON.stringify(cause)), complete: () => undefined },
      );
    });
  }

  let probeCount = 0;
  async function probeUntilAllLive(): Promise<number> {
    // A probe reaches everyone whose subscription was registered before it
    // committed; only a subscription registered later needs another. Waiting
    // out the whole fan-out first keeps probes from piling up behind it.
    let pending = groups.map((_, group) => group).filter((group) => openPerGroup[group]! > 0);
    for (let attempt = 1; attempt <= MAX_PROBES; attempt++) {
      const notLive: number[] = [];
      await forEachLimited(pending, PROBE_CONCURRENCY, async (group) => {
        const entry = track(`probe ${++probeCount}`, group);
        const done = complete(entry, Math.max(10_000, entry.expected * 20));
        await write(groups[group]!.todoId, `probe ${probeCount}`);
        if (!(await done)) notLive.push(group);
        untrack(entry);
      });
      if (subscriptionErrors.length > 0) throw new Error(`${subscriptionErrors.length} subscription errors, the first: ${subscriptionErrors[0]}`);
      if (notLive.length === 0) return attempt;
      pending = notLive;
    }
    throw new Error(`in ${pending.length} spaces not every subscriber received a probe after ${MAX_PROBES} attempts`);
  }

  let writeCount = 0;
  async function measure(writes: number, spread: boolean): Promise<Measurement> {
    const latencies: number[] = [];
    const perWriteP99: number[] = [];
    const mutationTimes: number[] = [];
    let missing = 0;
    const cpuBefore = process.cpuUsage();
    // Spread: a shuffled round robin over the spaces, so consecutive writes land in different ones.
    const targets = groups.map((_, group) => group).filter((group) => openPerGroup[group]! > 0);
    if (spread) {
      for (let index = targets.length - 1; index > 0; index--) {
        const other = Math.floor(Math.random() * (index + 1));
        [targets[index], targets[other]] = [targets[other]!, targets[index]!];
      }
    }
    for (let index = 0; index < writes; index++) {
      const group = targets[index % targets.length]!;
      const mark = `m${++writeCount}`;
      const entry = track(mark, group);
      const done = complete(entry, DELIVERY_TIMEOUT_MS);
      const started = performance.now();
      mutationTimes.push(await write(groups[group]!.todoId, mark));
      await done;
      const own = [...entry.receipts!.values()].map((at) => at - started).sort((x, y) => x - y);
      perWriteP99.push(percentile(own, 99));
      for (const latency of own) latencies.push(latency);
      missing += entry.expected - entry.receipts!.size;
      untrack(entry);
      await sleep(50);
    }
    const cpu = process.cpuUsage(cpuBefore);
    if (spread) await sleep(LEAK_SETTLE_MS);
    latencies.sort((x, y) => x - y);
    mutationTimes.sort((x, y) => x - y);
    return {
      subscribers: clients.length,
      writes,
      samples: latencies.length,
      missing,
      leaked,
      closedByServer,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? Number.NaN,
      perWriteP99,
      mutationP50: percentile(mutationTimes, 50),
      clientCpuMs: (cpu.user + cpu.system) / 1000,
    };
  }

  async function duringFanout(samples: number): Promise<DuringFanout> {
    if (!setup) throw new Error("no setup");
    const quietTodoId = setup.quietTodoId;
    // The quiet writes are sent and timed by a thread of their own: this
    // thread is busy reading 10,000 subscribers' events during a fan-out,
    // and a response waiting for it would be timed as the server's.
    const quietWriter = new QuietWriter(new URL(setup.httpUrl).origin, writerToken);
    const writeQuiet = (title: string) => quietWriter.write(quietTodoId, title);
    const idle: number[] = [];
    const during: number[] = [];
    const deliveredAtSend: number[] = [];
    let overlapped = 0;
    // Idle and during interleaved: the machine's other load moves both alike.
    for (let index = 0; index < samples; index++) {
      // Idle: the previous fan-out has reached everyone (awaited below).
      const idleMark = `quiet idle ${index}`;
      track(idleMark, -1);
      idle.push(await writeQuiet(idleMark));
      await sleep(50);

      const mark = `m${++writeCount}`;
      const entry = track(mark, 0);
      const done = complete(entry, DELIVERY_TIMEOUT_MS);
      // The quiet write goes right after the fan-out write's response, not
      // right after its request: the response follows the commit, which is
      // when delivery starts (the commit publishes the event and the tailer
      // reads it from the log), so from there on the quiet write competes
      // with the fan-out's reads, CPU and socket writes; sent before it, it
      // would mostly compete with the fan-out write's own transaction.
      await write(groups[0]!.todoId, mark);
      deliveredAtSend.push((entry.receipts?.size ?? 0) / entry.expected);
      const quietMark = `quiet during ${index}`;
      track(quietMark, -1);
      during.push(await writeQuiet(quietMark));
      if ((entry.receipts?.size ?? 0) < entry.expected) overlapped++;
      await done;
      untrack(entry);
      await sleep(50);
    }
    await quietWriter.close();
    return {
      subscribers: clients.length,
      samples,
      idleP50: median(idle),
      duringP50: median(during),
      overlapped,
      deliveredAtSend: median(deliveredAtSend),
      leaked,
    };
  }

  async function closeAll(): Promise<void> {
    disposing = true;
    await Promise.all(clients.map((client) => client.dispose()));
    disposing = false;
    clients = [];
  }

  process.on("message", (message: ToClients) => {
    void (async () => {
      try {
        if (message.type === "setup") {
          setup = message.setup;
          key = await signingKey(setup.secret);
          writerToken = await signToken(setup.writerId, key);
          send({ type: "ready" });
        } else if (message.type === "scenario") {
          if (clients.length > 0) throw new Error("a scenario starts with no subscriber connected");
          groups = message.groups;
          order = groups.flatMap((group, index) => group.subscriberIds.map((userId) => ({ userId, group: index })));
          openPerGroup = groups.map(() => 0);
          tracked = new Map();
          leaked = 0;
          closedByServer = 0;
          subscriptionErrors = [];
          send({ type: "ready" });
        } else if (message.type === "open") {
          if (!key) throw new Error("no setup");
          const signing = key;
          const started = performance.now();
          const from = clients.length;
          const to = from + message.count;
          if (to > order.length) throw new Error(`only ${order.length} subscribers in this scenario, ${to} asked for`);
          let failed = 0;
          for (let start = from; start < to; start += OPEN_BATCH) {
            const batch = [];
            for (let index = start; index < Math.min(to, start + OPEN_BATCH); index++) {
              openPerGroup[order[index]!.group]!++;
              batch.push(signToken(order[index]!.userId, signing).then((token) => openOne(index, token)));
            }
            failed += (await Promise.all(batch)).filter((ok) => !ok).length;
          }
          if (failed > 0) throw new Error(`${failed} of ${message.count} connections failed to open`);
          const probes = await probeUntilAllLive();
          send({ type: "opened", open: clients.length, probes, seconds: (performance.now() - started) / 1000 });
        } else if (message.type === "measure") {
          send({ type: "measured", measurement: await measure(message.writes, message.spread) });
        } else if (message.type === "during-fanout") {
          send({ type: "during-fanout", result: await duringFanout(message.samples) });
        } else if (message.type === "close") {
          await closeAll();
          send({ type: "closed" });
          process.exit(0);
        }
      } catch (error) {
        send({ type: "error", message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  // Its parent gone (stopped without a goodbye): nothing left to measure for.
  process.once("disconnect", () => process.exit(1));
  send({ type: "ready" });
}

// -------------------------------------------------------------------- server

class Children {
  private pending: { resolve: (message: FromClients) => void; reject: (error: Error) => void } | undefined;
  private exited: Error | undefined;
  constructor(readonly child: ChildProcess) {
    child.on("message", (message: FromClients) => {
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) return;
      if (message.type === "error") pending.reject(new Error(`client process: ${message.message}`));
      else pending.resolve(message);
    });
    child.once("exit", (code, signal) => {
      this.exited = new Error(`client process exited (${code ?? signal})`);
      this.pending?.reject(this.exited);
      this.pending = undefined;
    });
  }
  next(): Promise<FromClients> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }
  async call<T extends FromClients["type"]>(message: ToClients, expected: T): Promise<Extract<FromClients, { type: T }>> {
    const reply = this.next();
    this.child.send(message);
    const answer = await reply;
    if (answer.type !== expected) throw new Error(`client process answered ${answer.type}, not ${expected}`);
    return answer as Extract<FromClients, { type: T }>;
  }
}

/**
 * The machine's CPU time so far, from /proc/stat (Linux; undefined elsewhere):
 * all of it, and what the hypervisor gave other guests while this one wanted
 * to run (steal). On a shared virtual machine steal is why identical runs differ.
 */
function machineCpuTicks(): { total: number; steal: number } | undefined {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 };
  } catch {
    return undefined;
  }
}

function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

// Each memory figure is taken twice, so that it counts what the subscribers
// hold rather than garbage not yet collected:
// - after a plain full collection: what the process holds right after the
//   burst of connections, pages V8 has freed but not given back included
//   (these swing by over 100 MB from run to run: 434 to 623 MB at 10,000 on
//   the same code). The verdict is on this one;
// - after V8's memory-reducing collection (the "last-resort" flavour:
//   compacting, and giving back the pages it frees), the one its memory
//   reducer runs by itself once the allocation rate has stayed low for a
//   while (at 10,000 subscribers it ran after about 30 s idle: 614 → 398
//   MB): what the subscriptions keep. The peak during the writes is
//   measured from there.
// `npm run` starts tsx without --expose-gc; the flag can still be set at run
// time, and a new context then sees the gc function.
v8.setFlagsFromString("--expose-gc");
type GcOptions = { type: "major"; execution: "sync"; flavor?: "last-resort" };
const collectGarbage = vm.runInNewContext("gc") as (options: GcOptions) => void;

interface SettledRss {
  /** After a plain full GC. */
  fullGc: number;
  /** After a memory-reducing full GC (taken after the level's writes). */
  reduced: number;
  /** Where the full-GC figure is, in MB: V8's heap (live objects, and what it holds committed), and memory outside it (buffers). */
  heap: { used: number; committed: number; external: number };
  /** Resident memory by kind of mapping after the full GC (residentByMapping). */
  mappings: string | undefined;
  /** V8's heap by space after the full GC, MB live / committed: which space holds what V8 has not given back. */
  spaces: string;
}

/**
 * RSS after two plain full GCs, and where it is. The memory-reducing figure
 * is taken apart (memoryReducedRss), after the level's writes: V8's
 * last-resort GC discards compiled code, which a running server does only
 * under memory pressure, and the first write after it ran cold (the slowest
 * of every run, 13–67 ms against 10–22 for the others in the spread scenario).
 */
function fullGcRss(): Omit<SettledRss, "reduced"> {
  collectGarbage({ type: "major", execution: "sync" });
  collectGarbage({ type: "major", execution: "sync" });
  const fullGc = rssMb();
  const usage = process.memoryUsage();
  const heap = { used: usage.heapUsed / 2 ** 20, committed: usage.heapTotal / 2 ** 20, external: usage.external / 2 ** 20 };
  const spaces = v8
    .getHeapSpaceStatistics()
    .filter((space) => space.space_size >= 2 ** 20)
    .map((space) => `${space.space_name.replace(/_space$/, "")} ${(space.space_used_size / 2 ** 20).toFixed(0)}/${(space.space_size / 2 ** 20).toFixed(0)}`)
    .join(", ");
  const mappings = residentByMapping();
  return { fullGc, heap, spaces, mappings };
}

/** RSS after V8's memory-reducing (last-resort) GC: what V8 gives back by itself once the process is idle for a while. */
function memoryReducedRss(): number {
  collectGarbage({ type: "major", execution: "sync", flavor: "last-resort" });
  return rssMb();
}

/**
 * This process's resident memory by kind of mapping (Linux, /proc/self/smaps),
 * MB: malloc's main heap ([heap]), other anonymous mappings by size (V8's
 * pages are 256 KB reservations inside its cage, malloc's thread arenas 64 MB
 * ones), and file-backed (the node binary, libraries). Undefined elsewhere.
 */
function residentByMapping(): string | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return undefined;
  }
  const totals = new Map<string, number>();
  let kind = "";
  for (const line of text.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      const sizeMb = (parseInt(header[2]!, 16) - parseInt(header[1]!, 16)) / 2 ** 20;
      const name = header[4]!.trim();
      kind = name === "[heap]" ? "malloc main heap" : name.startsWith("/") ? "files" : name.startsWith("[") ? name : sizeMb >= 32 ? "anonymous ≥ 32 MB" : sizeMb >= 1 ? "anonymous 1–32 MB" : "anonymous < 1 MB";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss) totals.set(kind, (totals.get(kind) ?? 0) + Number(rss[1]) / 1024);
  }
  return [...totals].filter(([, mb]) => mb >= 1).sort((a, b) => b[1] - a[1]).map(([name, mb]) => `${name} ${mb.toFixed(0)}`).join(", ");
}

/**
 * The peak RSS of this process over a stretch of time. Linux keeps the
 * high-water mark (VmHWM) and resets it to the current RSS on a write of "5"
 * to clear_refs: exact, however briefly the peak lasted and however busy the
 * event loop was. Where that is not allowed, RSS sampled every 100 ms.
 */
class PeakRss {
  private sampled = 0;
  private readonly sampler: NodeJS.Timeout;
  private readonly kernel: boolean;
  constructor() {
    this.kernel = PeakRss.resetHighWaterMark();
    this.sampled = rssMb();
    this.sampler = setInterval(() => (this.sampled = Math.max(this.sampled, rssMb())), 100);
  }
  stop(): number {
    clearInterval(this.sampler);
    const sampled = Math.max(this.sampled, rssMb());
    const mark = this.kernel ? PeakRss.highWaterMarkMb() : undefined;
    return mark === undefined ? sampled : Math.max(mark, sampled);
  }
  private static resetHighWaterMark(): boolean {
    try {
      writeFileSync("/proc/self/clear_refs", "5");
      return PeakRss.highWaterMarkMb() !== undefined;
    } catch {
      return false;
    }
  }
  private static highWaterMarkMb(): number | undefined {
    try {
      const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
      return kb === undefined ? undefined : Number(kb) / 1024;
    } catch {
      return undefined;
    }
  }
}

/**
 * The sum of a metric's samples over all its label sets, from Prometheus text
 * (`name value` or `name{labels} value`, an optional timestamp after);
 * undefined when the metric is not there at all. Declared (# TYPE) with no
 * sample yet, it is 0.
 */
function metricTotal(text: string, name: string): number | undefined {
  let found = false;
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) {
      if (/^# TYPE (\S+)/.exec(line)?.[1] === name) found = true;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (sample?.[1] !== name) continue;
    const value = Number(sample[3]);
    if (!Number.isFinite(value)) continue;
    found = true;
    total += value;
  }
  return found ? total : undefined;
}

interface FanoutCounters {
  events: number;
  statements: number;
  /** realtime_fanout_duration_seconds: its sum and count (absent on a server without it). */
  fanOutSeconds?: number;
  fanOuts?: number;
}

/** The server's own mean time per direct fan-out between two readings, event handed over to last frame written (ms). */
function serverFanOutMs(before: FanoutCounters | undefined, after: FanoutCounters | undefined): number | undefined {
  if (before?.fanOuts === undefined || after?.fanOuts === undefined || after.fanOuts <= before.fanOuts) return undefined;
  return ((after.fanOutSeconds! - before.fanOutSeconds!) * 1000) / (after.fanOuts - before.fanOuts);
}

/** SQL statements per event between two readings, or why there is no figure. */
function sqlPerEvent(before: FanoutCounters | undefined, after: FanoutCounters | undefined): { value: number | undefined; text: string } {
  if (!before || !after) return { value: undefined, text: "n/a" };
  const events = after.events - before.events;
  if (events <= 0) return { value: undefined, text: "n/a (0 events)" };
  const value = (after.statements - before.statements) / events;
  return { value, text: value.toFixed(2) };
}

interface Row {
  scenario: Scenario;
  subscribers: number;
  spaces: number;
  m: Measurement;
  /** The same server with nobody subscribed (its phase's own server process). */
  idleRss: SettledRss;
  rss: SettledRss;
  peakRss: number;
  sql: { value: number | undefined; text: string };
  /** The server's mean direct fan-out over the measured writes (realtime_fanout_duration_seconds), ms. */
  serverFanOutMs: number | undefined;
  /** CPU time of the server process over the measured writes, ms. */
  serverCpuMs: number;
  openSeconds: number;
  probes: number;
  /** SQL statements the server sent while the level's subscribers connected (db_statements_total), per subscriber; the probe writes' included. */
  openStatementsPerSubscriber: number | undefined;
}

interface Options {
  operation: Operation;
  scenarios: Scenario[];
  /** One-space levels, 1 first. */
  steps: number[];
  mutations: number;
  spread: { subscribers: number; spaces: number };
  spreadMutations: number;
}

/** What a phase process is told: the options and its database. */
interface PhaseInput {
  scenario: Scenario;
  options: Options;
  databaseUrl: string;
  databaseName: string;
}

interface PhaseResult {
  scenario: Scenario;
  rows: Row[];
  idleRss: SettledRss;
  during: DuringFanout | undefined;
  countersExposed: boolean;
}

type FromPhase = { type: "result"; result: PhaseResult } | { type: "error"; message: string };

function parseScenarios(value: string | undefined): Scenario[] {
  const names = (value ?? "one-space,spread").split(",").map((name) => name.trim()).filter(Boolean);
  const known: Scenario[] = ["one-space", "spread"];
  for (const name of names) {
    if (!known.includes(name as Scenario)) throw new Error(`BENCH_SCENARIOS: expected one-space and/or spread, got ${name}`);
  }
  if (names.length === 0) throw new Error("BENCH_SCENARIOS: name at least one of one-space, spread");
  // Always in this order: the verdict reads best that way, and it is the documented one.
  return known.filter((name) => names.includes(name));
}

function parseSpread(value: string | undefined): { subscribers: number; spaces: number } {
  const text = value ?? "10000x1000";
  const match = /^\s*(\d+)\s*x\s*(\d+)\s*$/.exec(text);
  if (!match) throw new Error(`BENCH_SPREAD: expected <subscribers>x<spaces>, e.g. 10000x1000, got ${text}`);
  const subscribers = boundedInt(match[1], 0, 1, 19_000, "BENCH_SPREAD subscribers");
  const spaces = boundedInt(match[2], 0, 1, subscribers, "BENCH_SPREAD spaces");
  if (subscribers % spaces !== 0) throw new Error(`BENCH_SPREAD: ${subscribers} subscribers do not divide evenly over ${spaces} spaces`);
  return { subscribers, spaces };
}

function readOptions(): Options {
  const operation = (process.env.BENCH_OPERATION ?? "spaceActivity") as Operation;
  if (!(operation in QUERIES)) throw new Error(`BENCH_OPERATION must be spaceActivity or todoChanged, not ${operation}`);
  const levels = (process.env.BENCH_SUBSCRIBERS ?? "1000,5000,10000")
    .split(",")
    .map((value) => boundedInt(value.trim(), 0, 1, 19_000, "BENCH_SUBSCRIBERS"))
    .sort((x, y) => x - y);
  return {
    operation,
    scenarios: parseScenarios(process.env.BENCH_SCENARIOS),
    steps: [1, ...new Set(levels.filter((n) => n > 1))],
    mutations: boundedInt(process.env.BENCH_MUTATIONS, 5, 1, 1000, "BENCH_MUTATIONS"),
    spread: parseSpread(process.env.BENCH_SPREAD),
    spreadMutations: boundedInt(process.env.BENCH_SPREAD_MUTATIONS, 20, 1, 1000, "BENCH_SPREAD_MUTATIONS"),
  };
}

// --------------------------------------------------------------- seeding
//
// Bulk rows are made by the database (INSERT … SELECT over generate_series)
// rather than sent with createMany: 10,000 users and sessions through
// createMany grow this process, the server's, by about 150 MB that it keeps
// (measured: 226 → 404 MB settled RSS), which would count in its idle figure
// and be reused by the subscribers after. The ids made here and the ones the
// clients are given come from the same functions.

const pad = (value: number, width: number) => String(value).padStart(width, "0");
const userIdOf = (prefix: string, index: number) => `${prefix}${pad(index, 6)}`;
const spreadSpaceIdOf = (prefix: string, index: number) => `${prefix}${pad(index, 5)}`;
type RawPrisma = RunningServer["database"]["prisma"];

/**
 * BENCH_HEAP_SAMPLE=<dir>: what the server allocates during the measured
 * writes of each scenario's largest level, garbage included (V8's sampling
 * heap profiler), written there as <scenario>-<N>.heapprofile (Chrome
 * DevTools, Memory tab, opens it).
 */
async function sampleAllocations<T>(dir: string | undefined, name: string, during: () => Promise<T>): Promise<T> {
  if (!dir) return during();
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  try {
    return await during();
  } finally {
    const { profile } = await session.post("HeapProfiler.stopSampling");
    writeFileSync(path.join(dir, `${name}.heapprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/**
 * The server as `npm start` runs it: the JavaScript the build made in dist/,
 * not src/ compiled on the fly (tsx keeps every function's name, which alone
 * made each subscriber cost kilobytes more than in production).
 */
async function builtServer() {
  const dist = new URL("../dist/", import.meta.url);
  const [config, server] = await Promise.all([
    import(new URL("config.js", dist).href) as Promise<typeof import("../src/config.js")>,
    import(new URL("server.js", dist).href) as Promise<typeof import("../src/server.js")>,
  ]);
  return { loadConfig: config.loadConfig, startServer: server.startServer };
}

/** Users `userIdOf(prefix, 0…count−1)`, each with its session (`sessionIdOf`). */
async function seedUsers(prisma: RawPrisma, prefix: string, count: number): Promise<void> {
  const id = `$1 || lpad(i::text, 6, '0')`;
  await prisma.$executeRawUnsafe(
    `INSERT INTO "User" (id, email, "passwordHash", "updatedAt")
     SELECT ${id}, ${id} || '@example.com', 'not-a-hash', now() FROM generate_series(0, $2::int - 1) AS i`,
    prefix,
    count,
  );
  await prisma.$executeRawUnsafe(
    `INSERT INTO "Session" (id, "userId", "expiresAt")
     SELECT 's' || ${id}, ${id}, now() + interval '1 day' FROM generate_series(0, $2::int - 1) AS i`,
    prefix,
    count,
  );
}

/** A user inserted alone (the writer), with its session. */
async function seedUser(prisma: RawPrisma, id: string): Promise<void> {
  // Nobody logs in with a password: any string will do as the hash.
  await prisma.user.create({ data: { id, email: `${id}@example.com`, passwordHash: "not-a-hash" } });
  await prisma.session.create({ data: { id: sessionIdOf(id), userId: id, expiresAt: new Date(Date.now() + 24 * 3_600_000) } });
}

/** A space the writer administers, with one public list and one todo. */
async function seedSpace(prisma: RawPrisma, writerId: string, name: string, slug: string) {
  const space = await prisma.space.create({ data: { name, slug, ownerId: writerId } });
  await prisma.spaceMember.create({ data: { spaceId: space.id, userId: writerId, role: "ADMIN" } });
  const list = await prisma.list.create({ data: { title: name, spaceId: space.id, ownerId: writerId } });
  const todo = await prisma.todo.create({ data: { title: "start", listId: list.id, ownerId: writerId } });
  return { spaceId: space.id, listId: list.id, todoId: todo.id };
}

/** `count` spaces `spreadSpaceIdOf(spacePrefix, …)`, each with list `l<space>` and todo `t<space>`, the writer an admin of each. */
async function seedSpreadSpaces(prisma: RawPrisma, spacePrefix: string, writerId: string, count: number): Promise<void> {
  const id = `$1 || lpad(g::text, 5, '0')`;
  const series = `FROM generate_series(0, $3::int - 1) AS g`;
  await prisma.$executeRawUnsafe(`INSERT INTO "Space" (id, name, slug, "ownerId", "updatedAt") SELECT ${id}, 'Spread ' || g, ${id}, $2, now() ${series}`, spacePrefix, writerId, count);
  await prisma.$executeRawUnsafe(
    `INSERT INTO "SpaceMember" (id, role, "spaceId", "userId", "updatedAt") SELECT 'mw' || ${id}, 'ADMIN'::"SpaceRole", ${id}, $2, now() ${series}`,
    spacePrefix,
    writerId,
    count,
  );
  await prisma.$executeRawUnsafe(`INSERT INTO "List" (id, title, "spaceId", "ownerId", "updatedAt") SELECT 'l' || ${id}, 'Spread', ${id}, $2, now() ${series}`, spacePrefix, writerId, count);
  await prisma.$executeRawUnsafe(`INSERT INTO "Todo" (id, title, "listId", "ownerId", "updatedAt") SELECT 't' || ${id}, 'start', 'l' || ${id}, $2, now() ${series}`, spacePrefix, writerId, count);
}

/** Users `userIdOf(userPrefix, 0…count−1)` made members: user i of space `spaceOf(i)` (its id prefix and index). */
async function seedMembers(prisma: RawPrisma, userPrefix: string, count: number, space: { id: string } | { prefix: string; perSpace: number }): Promise<void> {
  const userId = `$1 || lpad(i::text, 6, '0')`;
  const [spaceId, spaceParameter, perSpace] =
    "id" in space ? [`$3`, space.id, 1] : [`$3 || lpad((i / $4::int)::text, 5, '0')`, space.prefix, space.perSpace];
  await prisma.$executeRawUnsafe(
    `INSERT INTO "SpaceMember" (id, role, "spaceId", "userId", "updatedAt")
     SELECT 'm' || ${userId}, 'USER'::"SpaceRole", ${spaceId}, ${userId}, now() FROM generate_series(0, $2::int - 1) AS i`,
    userPrefix,
    count,
    spaceParameter,
    ...("id" in space ? [] : [perSpace]),
  );
}

// ----------------------------------------------------------------- phase
//
// One scenario, in a process of its own: this process runs the server, so
// its RSS is the server's, and a scenario's figures carry nothing a previous
// one left behind (a server keeps much of the memory 10,000 closed sockets
// held).

async function runPhase(input: PhaseInput): Promise<void> {
  const { scenario, options } = input;
  const sendToCoordinator = (message: FromPhase) =>
    new Promise<void>((resolve) => {
      if (!process.send) return resolve();
      process.send(message, () => resolve());
    });
  let children: Children | undefined;
  // Stopped from outside (the coordinator's deadline or a signal) or orphaned:
  // the clients go first; the coordinator drops the database.
  const stop = (code: number) => {
    children?.child.kill();
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => stop(signal === "SIGINT" ? 130 : 143));
  process.once("disconnect", () => stop(1));

  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-subs-"));
  let server: RunningServer | undefined;
  try {
    const { loadConfig, startServer } = await builtServer();
    const config = loadConfig({
      NODE_ENV: "production",
      // Loopback only, and nothing else is there to read it.
      METRICS_PUBLIC: "true",
      // Every subscriber connects from 127.0.0.1, a batch at a time.
      WS_MAX_PENDING_PER_ADDRESS: String(OPEN_BATCH),
      HOST: "127.0.0.1",
      PORT: "0",
      DATA_DIR: dataDir,
      DATABASE_URL: input.databaseUrl,
      JWT_SECRET,
      // BENCH_LOG_LEVEL=debug shows each operation and fan-out as the server timed it.
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "error",
    });
    server = await startServer(config);
    const prisma = server.database.prisma;
    const httpUrl = server.url.replace("localhost", "127.0.0.1");
    const metricsUrl = server.metricsUrl ?? new URL("/metrics", httpUrl).toString();
    const readMetrics = async (): Promise<string> => {
      const response = await fetch(metricsUrl);
      if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
      return response.text();
    };
    const readFanout = async (): Promise<FanoutCounters | undefined> => {
      const text = await readMetrics();
      const events = metricTotal(text, FANOUT_EVENTS);
      const statements = metricTotal(text, FANOUT_STATEMENTS);
      if (events === undefined || statements === undefined) return undefined;
      const fanOutSeconds = metricTotal(text, `${FANOUT_DURATION}_sum`);
      const fanOuts = metricTotal(text, `${FANOUT_DURATION}_count`);
      return fanOutSeconds === undefined || fanOuts === undefined ? { events, statements } : { events, statements, fanOutSeconds, fanOuts };
    };

    const readStatements = async (): Promise<number | undefined> => metricTotal(await readMetrics(), DB_STATEMENTS);
    /** Opens `count` more subscribers, and counts the statements the server sent meanwhile. */
    const openMore = async (count: number) => {
      const before = await readStatements();
      const opened = await children!.call({ type: "open", count }, "opened");
      const after = await readStatements();
      const statementsPerSubscriber = before === undefined || after === undefined ? undefined : (after - before) / count;
      return { ...opened, statementsPerSubscriber };
    };

    // Data: a writer; the subscribers, distinct users with a session each; a
    // quiet space (the writer's alone); and the scenario's spaces: one with
    // every subscriber a member, or many with `perSpace` members each.
    const tag = randomBytes(3).toString("hex");
    const writerId = `uwriter${tag}`;
    const userPrefix = `usub${tag}`;
    const subscriberCount = scenario === "one-space" ? options.steps.at(-1)! : options.spread.subscribers;
    const subscriberIds = Array.from({ length: subscriberCount }, (_, index) => userIdOf(userPrefix, index));
    await seedUser(prisma, writerId);
    await seedUsers(prisma, userPrefix, subscriberCount);
    const quiet = await seedSpace(prisma, writerId, "Quiet", `quiet${tag}`);
    let groups: Group[];
    if (scenario === "one-space") {
      const space = await seedSpace(prisma, writerId, "Bench", `bench${tag}`);
      await seedMembers(prisma, userPrefix, subscriberCount, { id: space.spaceId });
      groups = [{ ...space, subscriberIds }];
    } else {
      const spacePrefix = `sp${tag}`;
      const perSpace = options.spread.subscribers / options.spread.spaces;
      await seedSpreadSpaces(prisma, spacePrefix, writerId, options.spread.spaces);
      await seedMembers(prisma, userPrefix, subscriberCount, { prefix: spacePrefix, perSpace });
      groups = Array.from({ length: options.spread.spaces }, (_, index) => {
        const spaceId = spreadSpaceIdOf(spacePrefix, index);
        return { spaceId, listId: `l${spaceId}`, todoId: `t${spaceId}`, subscriberIds: subscriberIds.slice(index * perSpace, (index + 1) * perSpace) };
      });
    }
    await prisma.$executeRawUnsafe("ANALYZE");

    // The clients run with node's own defaults, not the server's flags (this
    // process's execArgv has them): capped young generations made the client
    // process collect garbage more often while it reads the events it times.
    const serverOnly = new Set([...SERVER_V8_FLAGS, ...extraServerFlags()]);
    const clientExecArgv = [...process.execArgv.filter((flag) => !serverOnly.has(flag)), ...extraClientFlags()];
    const child = fork(fileURLToPath(import.meta.url), ["--clients"], { execArgv: clientExecArgv, stdio: "inherit" });
    child.on("error", (error) => console.error(`client process: ${error.message}`));
    children = new Children(child);
    await children.next(); // ready
    const setup: Setup = { httpUrl, wsUrl: httpUrl.replace(/^http/, "ws"), secret: JWT_SECRET, operation: options.operation, writerId, quietTodoId: quiet.todoId };
    await children.call({ type: "setup", setup }, "ready");
    await children.call({ type: "scenario", groups }, "ready");

    // Baseline memory: the server started, seeded and warmed up (a few writes,
    // nobody subscribed).
    const writerToken = await signToken(writerId, await signingKey(JWT_SECRET));
    for (let index = 0; index < 5; index++) {
      await gql(new URL(httpUrl).origin, RENAME_TODO, { id: groups[0]!.todoId, title: `warm ${index}` }, writerToken);
    }
    await sleep(500);
    const idleRss: SettledRss = { ...fullGcRss(), reduced: memoryReducedRss() };
    if (process.env.BENCH_HEAP_SNAPSHOT) v8.writeHeapSnapshot(path.join(process.env.BENCH_HEAP_SNAPSHOT, `${scenario}-idle.heapsnapshot`));
    const countersExposed = (await readFanout()) !== undefined;
    console.log(
      `${scenario}: server on ${input.databaseName}, RSS with 0 subscribers ${idleRss.fullGc.toFixed(0)} MB (${idleRss.reduced.toFixed(0)} after a memory-reducing GC); ${FANOUT_EVENTS} and ${FANOUT_STATEMENTS} on /metrics: ${countersExposed ? "yes" : "no (SQL per event n/a)"}`,
    );

    const rows: Row[] = [];
    const measureLevel = async (open: Extract<FromClients, { type: "opened" }> & { statementsPerSubscriber: number | undefined }, writes: number) => {
      const fullGc = fullGcRss();
      // BENCH_HEAP_SNAPSHOT=dir: what the server holds with the level's subscribers connected, for DevTools.
      if (process.env.BENCH_HEAP_SNAPSHOT) {
        const file = v8.writeHeapSnapshot(path.join(process.env.BENCH_HEAP_SNAPSHOT, `${scenario}-${open.open}.heapsnapshot`));
        console.log(`  heap snapshot: ${file}`);
      }
      const before = await readFanout();
      const peak = new PeakRss();
      const measured = () => children!.call({ type: "measure", writes, spread: scenario === "spread" }, "measured");
      const last = scenario === "spread" || open.open === options.steps.at(-1);
      const cpuBefore = process.cpuUsage();
      const machineBefore = machineCpuTicks();
      const { measurement } = last ? await sampleAllocations(process.env.BENCH_HEAP_SAMPLE, `${scenario}-${open.open}`, measured) : await measured();
      const cpu = process.cpuUsage(cpuBefore);
      const serverCpuMs = (cpu.user + cpu.system) / 1000;
      const machineAfter = machineCpuTicks();
      const stealPercent =
        machineBefore && machineAfter && machineAfter.total > machineBefore.total
          ? (100 * (machineAfter.steal - machineBefore.steal)) / (machineAfter.total - machineBefore.total)
          : undefined;
      const peakRss = peak.stop();
      const rss: SettledRss = { ...fullGc, reduced: memoryReducedRss() };
      const after = await readFanout();
      const spaces = scenario === "spread" ? options.spread.spaces : 1;
      const row: Row = { scenario, subscribers: open.open, spaces, m: measurement, idleRss, rss, peakRss, sql: sqlPerEvent(before, after), serverFanOutMs: serverFanOutMs(before, after), serverCpuMs, openSeconds: open.seconds, probes: open.probes, openStatementsPerSubscriber: open.statementsPerSubscriber };
      rows.push(row);
      console.log(
        `  ${scenario} N=${row.subscribers}${scenario === "spread" ? ` over ${spaces} spaces` : ""}: open+live in ${open.seconds.toFixed(1)} s (${open.probes} probe rounds, ${open.statementsPerSubscriber === undefined ? "n/a" : open.statementsPerSubscriber.toFixed(2)} SQL statements per subscriber), p50 ${measurement.p50.toFixed(1)} ms, p99 ${measurement.p99.toFixed(1)} ms, missing ${measurement.missing}, leaked ${measurement.leaked}, RSS ${rss.fullGc.toFixed(0)} MB (${rss.reduced.toFixed(0)} memory-reduced, peak ${peakRss.toFixed(0)}), SQL/event ${row.sql.text}`,
      );
      console.log(
        `    after the full GC: V8 heap ${rss.heap.used.toFixed(0)} MB live of ${rss.heap.committed.toFixed(0)} MB committed, ${rss.heap.external.toFixed(0)} MB outside it (idle: ${idleRss.heap.used.toFixed(0)} of ${idleRss.heap.committed.toFixed(0)}, ${idleRss.heap.external.toFixed(0)})`,
      );
      console.log(`    V8's spaces after the full GC, MB live/committed: ${rss.spaces}; array buffers ${(process.memoryUsage().arrayBuffers / 2 ** 20).toFixed(0)} MB`);
      if (rss.mappings) console.log(`    resident MB by mapping after the full GC: ${rss.mappings} (idle: ${idleRss.mappings})`);
      console.log(
        `    each write's p99 (ms, in order): ${measurement.perWriteP99.map((ms) => ms.toFixed(0)).join(", ")}; the server's own fan-out (handed over to last frame written) ${row.serverFanOutMs === undefined ? "n/a" : `${row.serverFanOutMs.toFixed(0)} ms`} on average; CPU per write: server ${(serverCpuMs / writes).toFixed(0)} ms, clients ${(measurement.clientCpuMs / writes).toFixed(0)} ms (this machine has ${os.cpus().length} cores${stealPercent === undefined ? "" : `, ${stealPercent.toFixed(1)}% of their time stolen by the hypervisor meanwhile`})`,
      );
      if (measurement.closedByServer > 0) console.log(`    the server closed ${measurement.closedByServer} subscriber sockets so far in this scenario`);
    };

    let during: DuringFanout | undefined;
    if (scenario === "one-space") {
      let connected = 0;
      for (const n of options.steps) {
        const open = await openMore(n - connected);
        connected = n;
        await measureLevel(open, options.mutations);
      }
      // At the largest level, with every subscriber still connected.
      during = (await children.call({ type: "during-fanout", samples: options.mutations }, "during-fanout")).result;
      console.log(
        `  mutation during fan-out at N=${during.subscribers}: idle p50 ${during.idleP50.toFixed(1)} ms, during p50 ${during.duringP50.toFixed(1)} ms (${(during.duringP50 / during.idleP50).toFixed(2)}×), overlapped ${during.overlapped}/${during.samples}`,
      );
    } else {
      const open = await sampleAllocations(process.env.BENCH_HEAP_SAMPLE, `${scenario}-open`, () => openMore(options.spread.subscribers));
      await measureLevel(open, options.spreadMutations);
    }

    await Promise.race([children.call({ type: "close" }, "closed").catch(() => undefined), sleep(30_000)]);
    child.kill();
    await Promise.race([server.close(), sleep(20_000)]);
    server = undefined;
    await sendToCoordinator({ type: "result", result: { scenario, rows, idleRss, during, countersExposed } });
  } catch (error) {
    await sendToCoordinator({ type: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    children?.child.kill();
    await Promise.race([server?.close().catch(() => undefined), sleep(20_000)]);
    await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  }
}

// ----------------------------------------------------------- coordinator

/** What stopped the run from outside (a signal, the deadline), if anything did. */
let interrupted: string | undefined;

async function main(): Promise<void> {
  const options = readOptions();
  // The scenario running now: its process and its database, for a stop from outside.
  let current: { phase: ChildProcess | undefined; database: BenchDatabase } | undefined;
  let abandoning = false;
  const abandon = async (code: number) => {
    if (abandoning) return;
    abandoning = true;
    const running = current;
    if (running?.phase && running.phase.exitCode === null) {
      const exited = new Promise((resolve) => running.phase!.once("exit", resolve));
      running.phase.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      running.phase.kill("SIGKILL");
    }
    if (running) await Promise.race([dropQuietly(running.database), sleep(20_000)]);
    process.exit(code);
  };
  const deadline = setTimeout(() => {
    console.error(`bench:subscriptions: gave up after ${DEADLINE_MS / 60_000} minutes, cleaning up`);
    interrupted ??= "the deadline";
    void abandon(2);
  }, DEADLINE_MS);
  deadline.unref();
  // `on`, not `once`: a Ctrl-C reaches this process twice (from the terminal
  // and relayed by tsx), and a second one with no handler would end it before
  // its database is dropped.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = signal;
      console.error(`bench:subscriptions: ${signal}, cleaning up`);
      void abandon(signal === "SIGINT" ? 130 : 143);
    });
  }

  console.log(
    `bench:subscriptions on PostgreSQL, ${options.operation}, scenarios ${options.scenarios.join(", ")}, each on a server process and database of its own; ulimit -n: ${await fileLimit()}`,
  );
  const results: PhaseResult[] = [];
  try {
    for (const scenario of options.scenarios) {
      const database = await createBenchDatabase("bench_subs", { dropOnSignal: false });
      current = { phase: undefined, database };
      try {
        const input: PhaseInput = { scenario, options, databaseUrl: database.url, databaseName: database.name };
        // The server's V8 flags as `npm start` gives them (package.json): the
        // young generation's size is most of the difference between what the
        // heap holds and the RSS after a burst of connections.
        const phase = fork(fileURLToPath(import.meta.url), ["--phase", JSON.stringify(input)], { execArgv: [...process.execArgv, ...SERVER_V8_FLAGS, ...extraServerFlags()], stdio: "inherit" });
        current.phase = phase;
        results.push(await phaseResult(phase, scenario));
      } finally {
        await dropQuietly(database);
        current = undefined;
      }
    }
  } finally {
    clearTimeout(deadline);
  }
  report(results);
}

function phaseResult(phase: ChildProcess, scenario: Scenario): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    let result: PhaseResult | undefined;
    phase.on("message", (message: FromPhase) => {
      if (message.type === "result") result = message.result;
      else reject(new Error(`${scenario}: ${message.message}`));
    });
    phase.on("error", reject);
    phase.once("exit", (code, signal) => (result ? resolve(result) : reject(new Error(`${scenario}: its process exited (${code ?? signal}) without a result`))));
  });
}

// ---------------------------------------------------------------- report

function report(results: PhaseResult[]): void {
  const rows = results.flatMap((result) => result.rows);
  const during = results.find((result) => result.during)?.during;
  const oneSpace = results.find((result) => result.scenario === "one-space");
  const spreadRow = results.find((result) => result.scenario === "spread")?.rows[0];
  const countersExposed = results.every((result) => result.countersExposed);
  const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "–").padStart(9);
  const kbPerSubscriber = (row: Row) => (row.subscribers > 1 ? ((row.rss.fullGc - row.idleRss.fullGc) * 1024) / row.subscribers : Number.NaN);
  const cpuPerWrite = (row: Row) => `${(row.serverCpuMs / row.m.writes).toFixed(0)} / ${(row.m.clientCpuMs / row.m.writes).toFixed(0)}`.padStart(9);
  const twoRss = (rss: SettledRss) => `${rss.fullGc.toFixed(0)} / ${rss.reduced.toFixed(0)}`.padStart(10);
  const oneSpaceRows = rows.filter((row) => row.scenario === "one-space");
  const base = oneSpaceRows[0];

  if (oneSpace && base) {
    console.log("");
    console.log("one space: every subscriber a member of the one space written to");
    console.log("");
    console.log(
      "| subscribers | writes | p50 ms | p99 ms | max ms | server fan-out mean ms | CPU per write ms (server / clients) | p99 × N=1 | missing | RSS connected MB (full GC / memory-reducing GC) | RSS peak MB | KB per subscriber | SQL per event | write round trip p50 ms | open+live s | SQL per subscriber connecting |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    console.log(`| 0 (idle) | | | | | | | | | ${twoRss(oneSpace.idleRss)} | | | | | | |`);
    for (const row of oneSpaceRows) {
      console.log(
        `| ${row.subscribers} |${f(row.m.writes, 0)} |${f(row.m.p50)} |${f(row.m.p99)} |${f(row.m.max)} |${f(row.serverFanOutMs ?? Number.NaN)} | ${cpuPerWrite(row)} |${f(row.m.p99 / base.m.p99, 2)} |${f(row.m.missing, 0)} | ${twoRss(row.rss)} |${f(row.peakRss, 0)} |${f(kbPerSubscriber(row))} |${row.sql.text.padStart(9)} |${f(row.m.mutationP50)} |${f(row.openSeconds)} |${f(row.openStatementsPerSubscriber ?? Number.NaN, 2)} |`,
      );
    }
  }
  if (spreadRow) {
    console.log("");
    console.log(`spread: ${spreadRow.subscribers / spreadRow.spaces} subscribers per space, each a member of its own space only; each write to one space`);
    console.log("");
    console.log(
      "| subscribers | spaces | writes | p50 ms | p99 ms | max ms | server fan-out mean ms | CPU per write ms (server / clients) | missing | leaked | RSS idle MB (full GC / memory-reducing GC) | RSS connected MB (full GC / memory-reducing GC) | RSS peak MB | KB per subscriber | SQL per event | write round trip p50 ms | open+live s | SQL per subscriber connecting |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    const row = spreadRow;
    console.log(
      `| ${row.subscribers} | ${row.spaces} |${f(row.m.writes, 0)} |${f(row.m.p50)} |${f(row.m.p99)} |${f(row.m.max)} |${f(row.serverFanOutMs ?? Number.NaN)} | ${cpuPerWrite(row)} |${f(row.m.missing, 0)} |${f(row.m.leaked, 0)} | ${twoRss(row.idleRss)} | ${twoRss(row.rss)} |${f(row.peakRss, 0)} |${f(kbPerSubscriber(row))} |${row.sql.text.padStart(9)} |${f(row.m.mutationP50)} |${f(row.openSeconds)} |${f(row.openStatementsPerSubscriber ?? Number.NaN, 2)} |`,
    );
  }
  const ratio = during ? during.duringP50 / during.idleP50 : Number.NaN;
  if (during) {
    console.log("");
    console.log(
      `mutation during fan-out (N=${during.subscribers}, ${during.samples} samples, medians): idle ${during.idleP50.toFixed(1)} ms, during fan-out ${during.duringP50.toFixed(1)} ms, ratio ${ratio.toFixed(2)}× (target ≤ ${TARGET_DURING_FANOUT_RATIO}×); the fan-out was still in flight when the quiet write returned in ${during.overlapped}/${during.samples} samples (${(during.deliveredAtSend * 100).toFixed(0)}% delivered when it was sent)`,
    );
  }
  console.log("");
  console.log(
    `latency: from just before the write's HTTP request to each subscriber's receipt (client process clock); ${rows.map((r) => `${r.m.samples} samples at ${r.scenario} N=${r.subscribers}`).join(", ")}`,
  );
  console.log(
    "RSS: the server process with the level's subscriptions live, after a full GC / after V8's memory-reducing GC (what it does by itself once idle); peak: during the measured writes, from the full-GC state (the memory-reducing GC runs after them); KB per subscriber: (RSS after a full GC − the scenario's idle RSS after a full GC) / N (not given for N=1)",
  );
  console.log(`SQL per event: delta ${FANOUT_STATEMENTS} / delta ${FANOUT_EVENTS} over the measured writes${countersExposed ? "" : " (not exposed by this server: n/a)"}`);
  console.log(
    `SQL per subscriber connecting: delta ${DB_STATEMENTS} (every statement the server sent) over the level's connections opening and going live, / the subscribers opened; the probe writes (one per space) and the tailer's reads meanwhile included`,
  );
  console.log(
    `server fan-out mean: delta ${FANOUT_DURATION}_sum / _count over the measured writes, from the event handed to the fan-out to its last frame written (the server's part of the p99, without the write's own request and the clients' reading); CPU per write: each process's user + system time over the measured writes / writes (clients: both threads)`,
  );

  // -------------------------------------------------------------- verdict
  type Outcome = "met" | "not met" | "n/a";
  const verdicts: { outcome: Outcome; target: string; figure: string }[] = [];
  const check = (target: string, ok: boolean | undefined, figure: string) =>
    verdicts.push({ outcome: ok === undefined ? "n/a" : ok ? "met" : "not met", target, figure });
  const largest = oneSpaceRows.at(-1);
  if (largest) {
    check(`one-space p99 at N=${largest.subscribers} < ${TARGET_ONE_SPACE_P99_MS} ms`, largest.m.p99 < TARGET_ONE_SPACE_P99_MS, `${largest.m.p99.toFixed(1)} ms`);
  } else check(`one-space p99 < ${TARGET_ONE_SPACE_P99_MS} ms`, undefined, "scenario not run");
  if (rows.length > 0) {
    const rss = Math.max(...rows.map((row) => row.rss.fullGc));
    const reduced = Math.max(...rows.map((row) => row.rss.reduced));
    const peak = Math.max(...rows.map((row) => row.peakRss));
    check(
      `RSS < ${TARGET_RSS_MB} MB connected (after a full GC) and at peak`,
      rss < TARGET_RSS_MB && peak < TARGET_RSS_MB,
      `connected ${rss.toFixed(0)} MB (${reduced.toFixed(0)} after a memory-reducing GC), peak ${peak.toFixed(0)} MB (largest over all levels)`,
    );
  }
  if (spreadRow) check(`spread p99 < ${TARGET_SPREAD_P99_MS} ms`, spreadRow.m.p99 < TARGET_SPREAD_P99_MS, `${spreadRow.m.p99.toFixed(1)} ms`);
  else check(`spread p99 < ${TARGET_SPREAD_P99_MS} ms`, undefined, "scenario not run");
  const sqlFigures = [
    ...(oneSpaceRows.length > 0 ? [oneSpaceRows.map((row) => `${row.sql.text} at N=${row.subscribers}`).join(", ")] : []),
    ...(spreadRow ? [`spread ${spreadRow.sql.text}`] : []),
  ].join("; ");
  const sqlValues = oneSpaceRows.map((row) => row.sql.value);
  if (oneSpaceRows.length < 2) check("SQL per event constant in N (one-space levels)", undefined, `fewer than two one-space levels${sqlFigures ? `: ${sqlFigures}` : ""}`);
  else if (sqlValues.some((value) => value === undefined)) check("SQL per event constant in N (one-space levels)", undefined, sqlFigures);
  else {
    const values = sqlValues as number[];
    const low = Math.min(...values);
    const high = Math.max(...values);
    check(`SQL per event constant in N (one-space levels, max/min ≤ ${TARGET_SQL_SPREAD})`, high === low || (low > 0 && high / low <= TARGET_SQL_SPREAD), sqlFigures);
  }
  if (during) check(`mutation during fan-out ≤ ${TARGET_DURING_FANOUT_RATIO}× idle`, ratio <= TARGET_DURING_FANOUT_RATIO, `${ratio.toFixed(2)}× (${during.duringP50.toFixed(1)} / ${during.idleP50.toFixed(1)} ms)`);
  else check(`mutation during fan-out ≤ ${TARGET_DURING_FANOUT_RATIO}× idle`, undefined, "one-space not run");
  const missing = rows.reduce((sum, row) => sum + row.m.missing, 0);
  check("missing 0", rows.length > 0 ? missing === 0 : undefined, `${missing} over all levels`);
  const leaked = (spreadRow?.m.leaked ?? 0) + (during?.leaked ?? 0);
  const leakedParts = [...(spreadRow ? [`spread ${spreadRow.m.leaked}`] : []), ...(during ? [`one-space quiet writes ${during.leaked}`] : [])];
  check("leaked 0", leakedParts.length > 0 ? leaked === 0 : undefined, `${leaked} (${leakedParts.join(", ") || "nothing checked"})`);

  console.log("");
  console.log("verdict (informational):");
  for (const { outcome, target, figure } of verdicts) console.log(`  ${`[${outcome}]`.padEnd(10)} ${target}: ${figure}`);
}

async function dropQuietly(database: BenchDatabase): Promise<void> {
  try {
    await database.drop();
  } catch (error) {
    console.error(`bench:subscriptions: could not drop ${database.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function fileLimit(): Promise<string> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve) => execFile("sh", ["-c", "ulimit -n"], (error, stdout) => resolve(error ? "unknown" : stdout.trim())));
}

const phaseArgument = process.argv.indexOf("--phase");
if (process.argv.includes("--clients")) {
  await runClients();
} else if (phaseArgument >= 0) {
  await runPhase(JSON.parse(process.argv[phaseArgument + 1] ?? "") as PhaseInput);
} else {
  await main().catch((error: unknown) => {
    // Stopped from outside: the processes were stopped on purpose, not a failure to show.
    if (interrupted) console.error(`bench:subscriptions: stopped by ${interrupted}; its database was dropped`);
    else console.error(error);
    process.exitCode = 1;
  });
}

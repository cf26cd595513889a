// What a write costs, and whether a second instance adds throughput:
// createTodo into one list at several concurrencies, against one server
// process and against two on the same PostgreSQL database, beside a baseline
// measured in the same run: the same transaction (the todo row, its event)
// sent as plain SQL through `pg`, with no GraphQL, policy or Prisma.
//
//   npm run bench:write
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_CONCURRENCY=1,10,50   (requests in flight)
//   BENCH_SECONDS=5             (per measurement, after a 1 s warm-up)
//
// The servers are real processes (`node --import tsx src/main.ts`, production
// mode), so their CPU is read from /proc apart from this process, which only
// sends requests. While each measurement runs, PostgreSQL's sessions of the
// database are sampled every 50 ms: the share of busy ones waiting on a lock
// says whether writers queue behind each other. Loopback only; every loop is
// bounded in time.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { boundedInt, createBenchDatabase, gql, processCpuMs } from "./support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,10,50").split(",").map((value) => boundedInt(value, 1, 1, 500, "BENCH_CONCURRENCY"));
const SECONDS = boundedInt(process.env.BENCH_SECONDS, 5, 1, 120, "BENCH_SECONDS");
const WARMUP_MS = 1000;
const JWT_SECRET = randomBytes(32).toString("base64url");

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startServer(databaseUrl: string, port: number, migrate: boolean): Promise<Server> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-write-"));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      JWT_SECRET,
      LOG_LEVEL: "warn",
      METRICS_PUBLIC: "true",
      MIGRATE_ON_START: String(migrate),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server on port ${port} exited with ${child.exitCode}`);
    if ((await fetch(`${url}/ready`).catch(() => undefined))?.ok) break;
    if (Date.now() > deadline) throw new Error(`server on port ${port} did not become ready`);
    await sleep(100);
  }
  return {
    url,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sends `send` from `concurrency` loops for the measured time; counts completions. */
async function load(concurrency: number, send: (worker: number) => Promise<void>): Promise<{ writes: number; seconds: number }> {
  const run = async (until: number) => {
    let writes = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        while (performance.now() < until) {
          await send(worker);
          writes++;
        }
      }),
    );
    return writes;
  };
  await run(performance.now() + WARMUP_MS);
  const started = performance.now();
  const writes = await run(started + SECONDS * 1000);
  return { writes, seconds: (performance.now() - started) / 1000 };
}

/** Samples the database's busy sessions while `during` runs: the share waiting on a lock. */
async function lockWaits<T>(admin: pg.Pool, database: string, during: () => Promise<T>): Promise<{ result: T; lockShare: number }> {
  let busy = 0;
  let waiting = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await admin.query<{ busy: string; waiting: string }>(
        `SELECT count(*) AS busy, count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting
           FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`,
        [database],
      );
      busy += Number(rows[0]!.busy);
      waiting += Number(rows[0]!.waiting);
      await sleep(50);
    }
  })();
  const result = await during();
  sampling = false;
  await sampler;
  return { result, lockShare: busy === 0 ? 0 : waiting / busy };
}

interface Row {
  what: string;
  concurrency: number;
  writesPerSecond: number;
  cpuMsPerWrite: number | undefined;
  lockShare: number;
}

async function main() {
  const database = await createBenchDatabase("bench_write");
  const admin = new pg.Pool({ connectionString: database.url, max: 12 });
  const servers: Server[] = [];
  try {
    const basePort = 4300 + Math.floor(Math.random() * 500);
    servers.push(await startServer(database.url, basePort, true));
    servers.push(await startServer(database.url, basePort + 1, false));
    const [first, second] = servers as [Server, Server];

    const email = `writer-${randomBytes(4).toString("hex")}@example.com`;
    const { signUp } = await gql<{ signUp: { token: string; user: { id: string } } }>(
      first.url,
      `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`,
      { input: { email, password: "bench-password-1" } },
    );
    const token = signUp.token;
    const { createSpace } = await gql<{ createSpace: { id: string } }>(
      first.url,
      `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }`,
      { input: { name: "Bench", slug: `bench${randomBytes(4).toString("hex")}` } },
      token,
    );
    const { createList } = await gql<{ createList: { id: string } }>(
      first.url,
      `mutation ($input: CreateListInput!) { createList(input: $input) { id } }`,
      { input: { spaceId: createSpace.id, title: "Writes" } },
      token,
    );
    const createTodo = `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id title completed } }`;
    const write = (server: Server) => () => gql(server.url, createTodo, { input: { listId: createList.id, title: "A todo" } }, token).then(() => undefined);

    // The floor: the same rows in one transaction of plain SQL (with the event
    // the project writes), on a pool as large as one server's.
    const baselinePool = new pg.Pool({ connectionString: database.url, max: 10 });
    const plainWrite = async () => {
      const client = await baselinePool.connect();
      try {
        await client.query("BEGIN");
        const id = randomBytes(12).toString("hex");
        await client.query(
          `INSERT INTO "Todo" (id, title, "listId", "ownerId", "updatedAt") VALUES ($1, 'A todo', $2, $3, now())`,
          [id, createList.id, signUp.user.id],
        );
        await client.query(
          `INSERT INTO "Event" (kind, subject, "spaceId", "listId", "todoId", "listOwnerId", "listPrivate") VALUES ('CREATED', 'TODO', $1, $2, $3, $4, false)`,
          [createSpace.id, createList.id, id, signUp.user.id],
        );
        await client.query("COMMIT");
      } finally {
        client.release();
      }
    };

    const rows: Row[] = [];
    for (const concurrency of CONCURRENCY) {
      const plain = await lockWaits(admin, database.name, () => load(concurrency, plainWrite));
      rows.push({ what: "plain SQL (baseline)", concurrency, writesPerSecond: plain.result.writes / plain.result.seconds, cpuMsPerWrite: undefined, lockShare: plain.lockShare });

      const cpuBefore = processCpuMs(first.pid);
      const one = await lockWaits(admin, database.name, () => load(concurrency, write(first)));
      rows.push({
        what: "1 instance",
        concurrency,
        writesPerSecond: one.result.writes / one.result.seconds,
        cpuMsPerWrite: (processCpuMs(first.pid) - cpuBefore) / one.result.writes,
        lockShare: one.lockShare,
      });

      const cpuBeforeBoth = processCpuMs(first.pid) + processCpuMs(second.pid);
      const sendTo = [write(first), write(second)];
      const two = await lockWaits(admin, database.name, () => load(concurrency, (worker) => sendTo[worker % 2]!()));
      rows.push({
        what: "2 instances",
        concurrency,
        writesPerSecond: two.result.writes / two.result.seconds,
        cpuMsPerWrite: (processCpuMs(first.pid) + processCpuMs(second.pid) - cpuBeforeBoth) / two.result.writes,
        lockShare: two.lockShare,
      });
      console.error(`bench:write: c=${concurrency} done`);
    }
    await baselinePool.end();

    console.log(`\ncreateTodo into one list, ${SECONDS} s per measurement, PostgreSQL, ${os.cpus().length} cores\n`);
    console.log("| what | c | writes/s | × baseline | CPU ms per write (servers) | busy sessions waiting on a lock |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const row of rows) {
      const baseline = rows.find((other) => other.concurrency === row.concurrency && other.cpuMsPerWrite === undefined)!;
      console.log(
        `| ${row.what} | ${row.concurrency} | ${row.writesPerSecond.toFixed(0)} | ${(row.writesPerSecond / baseline.writesPerSecond).toFixed(2)} | ${
          row.cpuMsPerWrite === undefined ? "" : row.cpuMsPerWrite.toFixed(2)
        } | ${(row.lockShare * 100).toFixed(0)}% |`,
      );
    }
  } finally {
    await Promise.allSettled(servers.map((server) => server.stop()));
    await admin.end();
    await database.drop();
  }
}

await main();

// What a read costs: requests per second and server CPU milliseconds per
// request for the shapes of the peer benchmark (tree, page, pages) and one
// more nesting with a filter, at 10 and 50 requests in flight, against a
// baseline measured in the same run on the same database:
//
//   policy    the real server (`node --import tsx src/main.ts`, production):
//             every read goes through the policy client.
//   baseline  the same stack over the raw Prisma client, scoped only as a
//             hand-written server must be for the same answer
//             (bench/baseline.ts, run by bench/readBaseline.ts).
//
//   npm run bench:read
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_CONCURRENCY=10,50   BENCH_SECONDS=5 (per measurement, after a 1 s warm-up)
//   BENCH_SHAPES=tree,page,pages,filtered
//
// Both servers are processes of their own, so their CPU is read from /proc
// apart from this process, which only sends requests; the two are measured
// alternately, shape by shape, and their answers are checked to be identical
// first. Loopback only; every loop is bounded in time.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { boundedInt, createBenchDatabase, processCpuMs } from "./support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "10,50").split(",").map((value) => boundedInt(value, 10, 1, 500, "BENCH_CONCURRENCY"));
const SECONDS = boundedInt(process.env.BENCH_SECONDS, 5, 1, 120, "BENCH_SECONDS");
const WARMUP_MS = 1000;
const JWT_SECRET = randomBytes(32).toString("base64url");

const SHAPES: Record<string, { about: string; query: (ids: SeedIds) => string }> = {
  tree: {
    about: "spaces(10) > lists(10) > todos(20) > owner, totalCount at each level",
    query: () =>
      `query Tree { spaces(first: 10) { totalCount nodes { id name lists(first: 10) { totalCount nodes { id title private todos(first: 20) { totalCount nodes { id title owner { email } } } } } } } }`,
  },
  page: {
    about: "the first 10 todos of a list of 10,000",
    query: (ids) => `{ list(id: "${ids.deepListId}") { id todos(first: 10) { nodes { id title } } } }`,
  },
  pages: {
    about: "the first 10 todos of each list of a space: the 10,000-todo list and a 20-todo sibling",
    query: (ids) => `{ space(id: "${ids.deepSpaceId}") { lists(first: 10) { nodes { id todos(first: 10) { nodes { id title } } } } } }`,
  },
  filtered: {
    about: "spaces(5) > members > user, lists(5) > owner, open todos(5) with totalCount",
    query: () =>
      `{ spaces(first: 5) { nodes { id viewerRole members { role user { name } } lists(first: 5) { nodes { id title owner { name } todos(first: 5, completed: false) { totalCount nodes { id title completed } } } } } } }`,
  },
};
const ONLY = (process.env.BENCH_SHAPES ?? Object.keys(SHAPES).join(",")).split(",");
for (const name of ONLY) if (!SHAPES[name]) throw new Error(`BENCH_SHAPES: no shape ${name} (there are ${Object.keys(SHAPES).join(", ")})`);

interface SeedIds {
  deepListId: string;
  deepSpaceId: string;
}

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startProcess(entry: string, databaseUrl: string, port: number, ready: (child: ChildProcess, url: string) => Promise<void>): Promise<Server> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-read-"));
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
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
      GRAPHQL_QUERY_STATS: "true",
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await ready(child, url);
  return {
    url: `${url}/graphql`,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits (at most a minute) for `check`, failing early if the process exits. */
async function waitUntil(child: ChildProcess, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check().catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what} did not become ready`);
    await sleep(100);
  }
}

const startPolicyServer = (databaseUrl: string, port: number) =>
  startProcess("src/main.ts", databaseUrl, port, (child, url) =>
    waitUntil(child, "the server", async () => (await fetch(`${url}/ready`)).ok),
  );

const startBaseline = (databaseUrl: string, port: number) =>
  startProcess("bench/readBaseline.ts", databaseUrl, port, async (child) => {
    let printed = "";
    child.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    await waitUntil(child, "the baseline", async () => printed.includes("ready"));
  });

interface Answer {
  data?: unknown;
  errors?: unknown[];
  extensions?: { queryStats?: { sqlStatements: number } };
}

async function post(url: string, query: string, token: string): Promise<Answer> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  const answer = (await response.json()) as Answer;
  if (!response.ok || answer.errors || !answer.data) throw new Error(`${url} answered ${response.status}: ${JSON.stringify(answer.errors)}`);
  return answer;
}

/** Sends `send` from `concurrency` loops for the measured time; counts completions. */
async function load(concurrency: number, send: () => Promise<unknown>): Promise<{ requests: number; seconds: number }> {
  const run = async (until: number) => {
    let requests = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await send();
          requests++;
        }
      }),
    );
    return requests;
  };
  await run(performance.now() + WARMUP_MS);
  const started = performance.now();
  const requests = await run(started + SECONDS * 1000);
  return { requests, seconds: (performance.now() - started) / 1000 };
}

/**
 * The peer benchmark's data, written straight into the tables around a viewer
 * who signed up through the API: the viewer in 10 spaces of 10 readable lists
 * (every fifth of the viewer's own private) and 2 private lists of others,
 * 20 todos each; 40 spaces the viewer is not in; one more space with a
 * 10,000-todo list and a 20-todo sibling.
 */
async function seed(client: pg.Client, viewerId: string): Promise<SeedIds & { todos: number }> {
  const base = Date.UTC(2026, 0, 1);
  let clock = 0;
  const at = () => new Date(base + ++clock * 1000);
  let sequence = 0;
  const id = (prefix: string) => `${prefix}bench${(++sequence).toString(36).padStart(7, "0")}`;
  const users = Array.from({ length: 30 }, (_, i) => ({ id: id("u"), email: `bench-${i}@example.com`, name: `Member ${i}`, createdAt: at() }));
  const spaces: Record<string, unknown>[] = [];
  const members: Record<string, unknown>[] = [];
  const lists: Record<string, unknown>[] = [];
  const todos: Record<string, unknown>[] = [];
  const addTodos = (listId: string, owners: string[], count: number) => {
    for (let t = 0; t < count; t++) {
      const createdAt = at();
      todos.push({ id: id("t"), listId, ownerId: owners[t % owners.length], title: `Todo ${t}`, completedAt: t % 3 === 0 ? createdAt : null, createdAt });
    }
  };
  let deep: SeedIds | undefined;
  for (let s = 0; s < 51; s++) {
    const isDeep = s === 10;
    const mine = s <= 10;
    const others = Array.from({ length: 4 }, (_, i) => users[(s * 3 + i) % users.length]!.id);
    const ownerId = mine && s % 2 === 0 ? viewerId : others[0]!;
    const space = { id: id("s"), name: isDeep ? "Deep space" : `Space ${s}`, slug: `bench${s}`, ownerId, createdAt: at() };
    spaces.push(space);
    const people = mine ? [viewerId, ...others] : others;
    people.forEach((userId, i) => members.push({ id: id("m"), spaceId: space.id, userId, role: userId === ownerId || i === 1 ? "ADMIN" : "USER", createdAt: at() }));
    if (isDeep) {
      const deepList = { id: id("l"), spaceId: space.id, ownerId: viewerId, title: "Deep list", private: false, createdAt: at() };
      lists.push(deepList);
      addTodos(deepList.id, people, 10_000);
      const sibling = { id: id("l"), spaceId: space.id, ownerId: others[0], title: "Sibling list", private: false, createdAt: at() };
      lists.push(sibling);
      addTodos(sibling.id, people, 20);
      deep = { deepListId: deepList.id, deepSpaceId: space.id };
      continue;
    }
    for (let l = 0; l < 12; l++) {
      const hidden = l >= 10;
      const owner = hidden ? others[l % others.length]! : people[l % people.length]!;
      const list = { id: id("l"), spaceId: space.id, ownerId: owner, title: `List ${l}`, private: hidden || (mine && l % 5 === 0 && owner === viewerId), createdAt: at() };
      lists.push(list);
      addTodos(list.id, people, 20);
    }
  }
  const insert = async (table: string, rows: Record<string, unknown>[], columns: string[], types: string[]) => {
    for (let i = 0; i < rows.length; i += 5000) {
      const chunk = rows.slice(i, i + 5000);
      const arrays = columns.map((column) => chunk.map((row) => (column === "updatedAt" ? row.createdAt : (row[column] ?? null))));
      const select = columns.map((_, k) => `unnest($${k + 1}::${types[k]}[])`).join(", ");
      await client.query(`INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) SELECT ${select}`, arrays);
    }
  };
  const ts = "timestamptz";
  await client.query("BEGIN");
  await insert("User", users.map((user) => ({ ...user, passwordHash: "not-a-hash" })), ["id", "email", "passwordHash", "name", "createdAt", "updatedAt"], ["text", "text", "text", "text", ts, ts]);
  await insert("Space", spaces, ["id", "name", "slug", "ownerId", "createdAt", "updatedAt"], ["text", "text", "text", "text", ts, ts]);
  await insert("SpaceMember", members, ["id", "role", "spaceId", "userId", "createdAt", "updatedAt"], ["text", '"SpaceRole"', "text", "text", ts, ts]);
  await insert("List", lists, ["id", "title", "private", "spaceId", "ownerId", "createdAt", "updatedAt"], ["text", "text", "boolean", "text", "text", ts, ts]);
  await insert("Todo", todos, ["id", "title", "completedAt", "listId", "ownerId", "createdAt", "updatedAt"], ["text", "text", ts, "text", "text", ts, ts]);
  await client.query("COMMIT");
  await client.query("ANALYZE");
  return { ...deep!, todos: todos.length };
}

interface Row {
  shape: string;
  concurrency: number;
  policy: { rps: number; cpuMs: number };
  baseline: { rps: number; cpuMs: number };
  statements: number | undefined;
}

async function main() {
  const database = await createBenchDatabase("bench_read");
  const servers: Server[] = [];
  try {
    const basePort = 4300 + Math.floor(Math.random() * 500);
    const policy = await startPolicyServer(database.url, basePort);
    servers.push(policy);
    const { data } = await post(
      policy.url,
      `mutation { signUp(input: { email: "viewer@example.com", password: "correct-horse-1", name: "Viewer" }) { token user { id } } }`,
      "",
    );
    const signUp = (data as { signUp?: { token: string; user: { id: string } } } | undefined)?.signUp;
    if (!signUp) throw new Error("signUp failed");
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const ids = await seed(client, signUp.user.id).finally(() => client.end());
    const baseline = await startBaseline(database.url, basePort + 1);
    servers.push(baseline);

    const rows: Row[] = [];
    for (const name of ONLY) {
      const query = SHAPES[name]!.query(ids);
      const withPolicy = await post(policy.url, query, signUp.token);
      const withoutPolicy = await post(baseline.url, query, signUp.token);
      if (!isDeepStrictEqual(withPolicy.data, withoutPolicy.data)) throw new Error(`${name}: the policy server and the baseline answer differently`);
      for (const concurrency of CONCURRENCY) {
        const measure = async (server: Server) => {
          const before = processCpuMs(server.pid);
          const result = await load(concurrency, () => post(server.url, query, signUp.token));
          return { rps: result.requests / result.seconds, cpuMs: (processCpuMs(server.pid) - before) / result.requests };
        };
        // Alternating who goes first, so that neither always runs after the other.
        const first = rows.length % 2 === 0;
        const a = await measure(first ? policy : baseline);
        const b = await measure(first ? baseline : policy);
        rows.push({ shape: name, concurrency, policy: first ? a : b, baseline: first ? b : a, statements: withPolicy.extensions?.queryStats?.sqlStatements });
        console.error(`bench:read: ${name} c=${concurrency} done`);
      }
    }

    console.log(`\nreads on PostgreSQL, ${SECONDS} s per measurement, ${os.cpus().length} cores; ${ids.todos} todos in the database\n`);
    for (const name of ONLY) console.log(`- ${name}: ${SHAPES[name]!.about}`);
    console.log("\n| shape | c | policy rps | baseline rps | policy / baseline | CPU ms/request policy / baseline | SQL statements |");
    console.log("|---|---:|---:|---:|---:|---:|---:|");
    for (const row of rows) {
      console.log(
        `| ${row.shape} | ${row.concurrency} | ${row.policy.rps.toFixed(1)} | ${row.baseline.rps.toFixed(1)} | ${(row.policy.rps / row.baseline.rps).toFixed(2)}× | ${row.policy.cpuMs.toFixed(2)} / ${row.baseline.cpuMs.toFixed(2)} | ${row.statements ?? "?"} |`,
      );
    }
  } finally {
    await Promise.allSettled(servers.map((server) => server.stop()));
    await database.drop();
  }
}

await main();

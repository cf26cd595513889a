// What the access policy costs on a realistic read: the 3-level query
// (spaces → lists → todos → owner, totalCount at each level, Space.members /
// user, viewerRole) over HTTP, with policies on (the real server) against a
// baseline measured in the same run on the same database.
//
//   npm run bench:policy
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_ITERATIONS=100 BENCH_WARMUP=10 BENCH_SECONDS=40
//
// It creates a fresh database bench_policy_<random> on that server and drops
// it at the end. Three measurements, interleaved request by request so that
// noise from anything else on the machine falls on all three alike:
//
//   policies  the real server (src/server.ts startServer): every read goes
//             through the policy client, which ANDs the ACCESS.md read filter
//             of each model into each statement.
//   baseline  the same stack in the same process (Express, Apollo Server, the
//             same schema, resolvers and DataLoaders, operation limits, the
//             operation plugin, JWT verification), but `db` is the raw, unbound
//             Prisma client with only the two conditions a hand-written server
//             needs to give the same answer (spaces: I am a member; lists: not
//             private, or mine) and no per-row filter anywhere else. Both
//             answers are checked to be identical before timing.
//   raw       no HTTP and no GraphQL: the same DataLoader-shaped statements
//             (one per level) with the raw client, in process. The floor.
//
// Loopback only; every loop is bounded.
import { boundedInt, createBenchDatabase } from "./support.js";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadConfig } from "../src/config.js";
import type { RawPrismaClient } from "../src/db/database.js";
import { withQueryStats } from "../src/db/queryStats.js";
import { pageOrder } from "../src/pagination/connection.js";
import { startServer } from "../src/server.js";
import { startBaselineServer } from "./baseline.js";

const ITERATIONS = boundedInt(process.env.BENCH_ITERATIONS, 100, 1, 5000, "BENCH_ITERATIONS");
const WARMUP = boundedInt(process.env.BENCH_WARMUP, 10, 0, 1000, "BENCH_WARMUP");
// The measuring loop stops early past this budget (after at least 20 rounds),
// so that a busy machine still finishes in about a minute.
const BUDGET_SECONDS = boundedInt(process.env.BENCH_SECONDS, 40, 1, 3600, "BENCH_SECONDS");
const MIN_ROUNDS = 20;

// The data: the viewer in SPACES spaces with OTHERS_PER_SPACE other members,
// LISTS readable lists each (every fifth the viewer's own private list) and
// HIDDEN private lists of other members, TODOS todos per list; plus spaces of
// other people the viewer is not in, so that filters have rows to leave out.
const SPACES = 10;
const LISTS = 10;
const HIDDEN = 2;
const TODOS = 20;
const OTHERS_PER_SPACE = 4;
const OTHER_SPACES = 40;

const QUERY = /* GraphQL */ `
  query Tree {
    spaces(first: ${SPACES}) {
      totalCount
      nodes {
        id name viewerRole
        members { id role user { id name } }
        lists(first: ${LISTS}) {
          totalCount
          nodes {
            id title private
            owner { id name }
            todos(first: ${TODOS}) {
              totalCount
              nodes { id title completed owner { id name } }
            }
          }
        }
      }
    }
  }
`;

// ------------------------------------------------------------------- seeding

async function seed(prisma: RawPrismaClient, viewerId: string) {
  const base = Date.UTC(2026, 0, 1);
  let clock = 0;
  const at = () => new Date(base + ++clock * 1000);
  let sequence = 0;
  const id = (prefix: string) => `${prefix}bench${(++sequence).toString(36).padStart(7, "0")}`;

  const users = Array.from({ length: 30 }, (_, i) => ({
    id: id("u"),
    email: `bench-${i}@example.com`,
    name: `Member ${i}`,
    // Nobody logs in as these users: any string will do.
    passwordHash: "not-a-hash",
    createdAt: at(),
  }));
  const spaces: { id: string; name: string; slug: string; ownerId: string; createdAt: Date }[] = [];
  const members: { id: string; spaceId: string; userId: string; role: "ADMIN" | "USER"; createdAt: Date }[] = [];
  const lists: { id: string; spaceId: string; ownerId: string; title: string; private: boolean; createdAt: Date }[] = [];
  const todos: { id: string; listId: string; ownerId: string; title: string; completedAt: Date | null; createdAt: Date }[] = [];

  const addTodos = (listId: string, owners: string[]) => {
    for (let t = 0; t < TODOS; t++) {
      const createdAt = at();
      todos.push({ id: id("t"), listId, ownerId: owners[t % owners.length]!, title: `Todo ${t}`, completedAt: t % 3 === 0 ? createdAt : null, createdAt });
    }
  };

  for (let s = 0; s < SPACES + OTHER_SPACES; s++) {
    const mine = s < SPACES;
    const others = Array.from({ length: OTHERS_PER_SPACE }, (_, i) => users[(s * 3 + i) % users.length]!.id);
    const ownerId = mine && s % 2 === 0 ? viewerId : others[0]!;
    const space = { id: id("s"), name: `Space ${s}`, slug: `bench${s}`, ownerId, createdAt: at() };
    spaces.push(space);
    const people = mine ? [viewerId, ...others] : others;
    people.forEach((userId, i) => {
      members.push({ id: id("m"), spaceId: space.id, userId, role: userId === ownerId || i === 1 ? "ADMIN" : "USER", createdAt: at() });
    });
    for (let l = 0; l < LISTS + HIDDEN; l++) {
      const hidden = l >= LISTS;
      const ownerId = hidden ? others[l % others.length]! : people[l % people.length]!;
      const isPrivate = hidden || (mine && l % 5 === 0 && ownerId === viewerId);
      const list = { id: id("l"), spaceId: space.id, ownerId, title: `List ${l}`, private: isPrivate, createdAt: at() };
      lists.push(list);
      addTodos(list.id, people);
    }
  }

  await prisma.user.createMany({ data: users });
  await prisma.space.createMany({ data: spaces });
  await prisma.spaceMember.createMany({ data: members });
  await prisma.list.createMany({ data: lists });
  for (let start = 0; start < todos.length; start += 5000) {
    await prisma.todo.createMany({ data: todos.slice(start, start + 5000) });
  }
  await prisma.$executeRawUnsafe("ANALYZE");
  return { users: users.length + 1, spaces: spaces.length, members: members.length, lists: lists.length, todos: todos.length };
}

// ----------------------------------------------------------------------- raw

/** The statements the loaders send for QUERY, with the raw client in process. */
async function rawTree(raw: RawPrismaClient, viewerId: string) {
  const spaces = await raw.space.findMany({ where: { members: { some: { userId: viewerId } } }, orderBy: pageOrder, take: SPACES + 1 });
  const spaceIds = spaces.map((space) => space.id);
  const [spaceCount, roles, members, lists, listCounts] = await Promise.all([
    raw.space.count({ where: { members: { some: { userId: viewerId } } } }),
    raw.spaceMember.findMany({ where: { spaceId: { in: spaceIds }, userId: viewerId } }),
    raw.spaceMember.findMany({ where: { spaceId: { in: spaceIds } }, orderBy: pageOrder }),
    raw.list.findMany({ where: { spaceId: { in: spaceIds }, OR: [{ private: false }, { ownerId: viewerId }] }, orderBy: pageOrder }),
    raw.list.groupBy({ by: ["spaceId"], where: { spaceId: { in: spaceIds }, OR: [{ private: false }, { ownerId: viewerId }] }, _count: { _all: true } }),
  ]);
  const listIds = lists.map((list) => list.id);
  const [todos, todoCounts] = await Promise.all([
    raw.todo.findMany({ where: { listId: { in: listIds } }, orderBy: pageOrder }),
    raw.todo.groupBy({ by: ["listId"], where: { listId: { in: listIds } }, _count: { _all: true } }),
  ]);
  const userIds = new Set([...members.map((m) => m.userId), ...lists.map((l) => l.ownerId), ...todos.map((t) => t.ownerId)]);
  const users = await raw.user.findMany({ where: { id: { in: [...userIds] } } });
  return { spaceCount, rows: spaces.length + roles.length + members.length + lists.length + listCounts.length + todos.length + todoCounts.length + users.length };
}

// ------------------------------------------------------------------- timing

interface Answer {
  data?: unknown;
  errors?: unknown[];
  extensions?: { queryStats?: { sqlStatements: number } };
}

async function post(url: string, token: string): Promise<Answer> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: QUERY }),
  });
  const answer = (await response.json()) as Answer;
  if (!response.ok || answer.errors) throw new Error(`${url} answered ${response.status}: ${JSON.stringify(answer.errors)}`);
  return answer;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

// ---------------------------------------------------------------------- main

async function main() {
  const started = performance.now();
  const database = await createBenchDatabase("bench_policy");
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-policy-"));
  const jwtSecret = randomBytes(32).toString("hex");
  const closers: (() => Promise<void>)[] = [
    () => rm(dataDir, { recursive: true, force: true }),
    () => database.drop(),
  ];
  try {
    const config = loadConfig({
      NODE_ENV: "production",
      // Loopback only, and nothing else is there to read it.
      METRICS_PUBLIC: "true",
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      JWT_SECRET: jwtSecret,
      LOG_LEVEL: "silent",
      GRAPHQL_QUERY_STATS: "true",
    });
    const server = await startServer(config);
    closers.unshift(() => server.close());
    const raw = server.database.prisma;

    // The viewer signs up through the API, like any user; the rest is written
    // straight through the raw client.
    const signUp = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `mutation { signUp(input: { email: "viewer@example.com", password: "correct-horse-1" }) { token user { id } } }`,
      }),
    });
    const signedUp = (await signUp.json()) as { data?: { signUp: { token: string; user: { id: string } } } };
    if (!signedUp.data) throw new Error(`signUp failed: ${JSON.stringify(signedUp)}`);
    const { token, user } = signedUp.data.signUp;
    const counts = await seed(raw, user.id);

    const baseline = await startBaselineServer(config, raw, jwtSecret);
    closers.unshift(() => baseline.close());

    // Both servers must give the same answer, or the comparison means nothing.
    const withPolicies = await post(server.url, token);
    const withoutPolicies = await post(baseline.url, token);
    if (!isDeepStrictEqual(withPolicies.data, withoutPolicies.data)) throw new Error("policies and baseline answer differently");
    const tree = withPolicies.data as { spaces: { totalCount: number; nodes: { lists: { nodes: { todos: { nodes: unknown[] } }[] } }[] } };
    const lists = tree.spaces.nodes.flatMap((space) => space.lists.nodes);
    const todos = lists.reduce((sum, list) => sum + list.todos.nodes.length, 0);
    const rawRows = await rawTree(raw, user.id);
    if (rawRows.spaceCount !== tree.spaces.totalCount) throw new Error("raw baseline disagrees on the spaces count");

    const rawStatements = { sqlStatements: 0 };
    await withQueryStats(rawStatements, () => rawTree(raw, user.id));

    const runs = {
      policies: { samples: [] as number[], statements: withPolicies.extensions?.queryStats?.sqlStatements ?? NaN, run: () => post(server.url, token) },
      baseline: { samples: [] as number[], statements: withoutPolicies.extensions?.queryStats?.sqlStatements ?? NaN, run: () => post(baseline.url, token) },
      raw: { samples: [] as number[], statements: rawStatements.sqlStatements, run: () => rawTree(raw, user.id) },
    };
    const order = Object.values(runs);
    const loopStarted = performance.now();
    let rounds = 0;
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const measured = i - WARMUP;
      if (measured >= MIN_ROUNDS && performance.now() - loopStarted > BUDGET_SECONDS * 1000) break;
      if (measured >= 0) rounds += 1;
      // Rotate who goes first, so no measurement always follows the same one.
      for (let j = 0; j < order.length; j++) {
        const run = order[(i + j) % order.length]!;
        const t0 = performance.now();
        await run.run();
        if (i >= WARMUP) run.samples.push(performance.now() - t0);
      }
    }

    const p = summary(runs.policies.samples);
    const b = summary(runs.baseline.samples);
    const r = summary(runs.raw.samples);
    const ms = (value: number) => value.toFixed(2).padStart(8);
    console.log(`bench:policy on PostgreSQL (${database.name}, dropped at the end)`);
    console.log(
      `data: ${counts.users} users, ${counts.spaces} spaces, ${counts.members} memberships, ${counts.lists} lists, ${counts.todos} todos; ` +
        `the viewer reads ${tree.spaces.nodes.length} spaces, ${lists.length} lists, ${todos} todos per query`,
    );
    const cut = rounds < ITERATIONS ? ` (of ${ITERATIONS}: the ${BUDGET_SECONDS} s budget ran out)` : "";
    console.log(`${rounds} sequential iterations each${cut} after ${WARMUP} warm-up, interleaved`);
    console.log("");
    console.log("| path                                   |  p50 ms  |  p95 ms  | mean ms  | SQL statements |");
    console.log("|----------------------------------------|----------|----------|----------|----------------|");
    console.log(`| policies: real server over HTTP        | ${ms(p.p50)} | ${ms(p.p95)} | ${ms(p.mean)} | ${String(runs.policies.statements).padStart(14)} |`);
    console.log(`| baseline: same stack, raw client, HTTP | ${ms(b.p50)} | ${ms(b.p95)} | ${ms(b.mean)} | ${String(runs.baseline.statements).padStart(14)} |`);
    console.log(`| raw: same statements, in process       | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.mean)} | ${String(runs.raw.statements).padStart(14)} |`);
    console.log("");
    console.log(`policies / baseline: p50 ${(p.p50 / b.p50).toFixed(2)}x, p95 ${(p.p95 / b.p95).toFixed(2)}x`);
    console.log(
      "baseline = Express + Apollo + the same resolvers and DataLoaders over the raw Prisma client, scoped only where a " +
        "hand-written server must be (spaces: viewer is a member; lists: not private or mine); answers checked identical.",
    );
    console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    for (const close of closers) await close().catch((error: unknown) => console.error("cleanup failed:", error));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

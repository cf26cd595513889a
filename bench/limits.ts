// What the operation limits cost: the same realistic read over HTTP against
// the real server with the limits on (the defaults) and off (every LIMIT_* = 0,
// a large body size), and, in process, parse + validate + cost of a large but
// legal document with and without the limit rules.
//
//   npm run bench:limits
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres  (the default)
//   BENCH_REQUESTS=400 BENCH_WARMUP=50 BENCH_DOCUMENT_ITERATIONS=1000
//
// It creates a fresh database bench_limits_<random> on that server and drops
// it at the end. Both servers run in this process on the same database, and
// the requests alternate between them one by one, so that whatever else the
// machine does falls on both alike. Loopback only; every loop is bounded.
import { ADMIN_URL, boundedInt, createBenchDatabase } from "./support.js";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { getOperationAST, Lexer, parse, Source, specifiedRules, TokenKind, validate, type DocumentNode } from "graphql";
import { loadConfig } from "../src/config.js";
import { createOperationLimits } from "../src/http/limits.js";
import { loadTypeDefs, resolvers } from "../src/schema.js";
import { startServer, type RunningServer } from "../src/server.js";

const REQUESTS = boundedInt(process.env.BENCH_REQUESTS, 400, 10, 20_000, "BENCH_REQUESTS");
const WARMUP = boundedInt(process.env.BENCH_WARMUP, 50, 0, 5000, "BENCH_WARMUP");
const DOCUMENT_ITERATIONS = boundedInt(process.env.BENCH_DOCUMENT_ITERATIONS, 1000, 10, 100_000, "BENCH_DOCUMENT_ITERATIONS");
// A hard stop for the HTTP loop, whatever BENCH_REQUESTS says.
const HTTP_BUDGET_MS = 30_000;
// And for the in-process loop.
const DOCUMENT_BUDGET_MS = 10_000;
const JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789";

// The read a client's home screen would send: spaces, their lists, the first
// todos of each, with counts and owners.
const REALISTIC_QUERY = `query Home {
  spaces(first: 10) {
    totalCount
    nodes {
      id name slug viewerRole
      lists(first: 10) {
        totalCount
        nodes {
          id title private
          owner { id email }
          todos(first: 20) { totalCount nodes { id title completed completedAt } }
        }
      }
    }
  }
}`;

// Large but legal under the defaults (the check below proves it): ~800
// tokens, 20 root fields, 19 aliases, 35 directives, depth 12, fragments and
// variables. Repeated fields sit under different aliases, as a real client's
// would: graphql-js compares same-named fields pairwise, and a document of
// one field repeated a thousand times would measure that, not the limits.
// (Armor counts aliases and directives inside a fragment once per spread, so
// those stay outside the fragments.)
function largeLegalDocument(): string {
  const flag = (i: number) => (i % 2 === 0 ? "@include(if: $full)" : "@skip(if: $brief)");
  const spaces = Array.from({ length: 15 }, (_, i) => `s${i}: spaces(first: ${1 + (i % 3)}) { totalCount pageInfo { hasNextPage endCursor } nodes ${flag(i)} { ...SpaceFields } }`);
  const lists = Array.from({ length: 2 }, (_, i) => `l${i}: list(id: "list-${i}") { ...ListFields }`);
  const todos = Array.from({ length: 2 }, (_, i) => `t${i}: todo(id: "todo-${i}") { ...TodoFields }`);
  const meFields = ["id", "email", "name", "image", "createdAt"].flatMap((field, i) => [`${field} ${flag(i)}`, `${field} ${flag(i + 1)}`]).join(" ");
  return `query Large($full: Boolean = true, $brief: Boolean = false, $todos: Int = 10) {
    me { ${meFields} }
    ${[...spaces, ...lists, ...todos].join("\n    ")}
  }
  fragment SpaceFields on Space {
    id name slug viewerRole createdAt updatedAt
    owner { id email name image createdAt }
    members { id role createdAt user { id email name image createdAt } space { id slug name } }
    lists(first: 5) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ...ListFields } }
      nodes { id title private createdAt owner { id email name } todos(first: 3) { totalCount nodes { id title completed completedAt createdAt } } }
    }
  }
  fragment ListFields on List {
    id title private createdAt updatedAt
    owner { id email name image createdAt }
    space { id name slug viewerRole createdAt updatedAt owner { id email } members { id role createdAt user { id email name image } } }
    todos(first: $todos, completed: false) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ...TodoFields } } }
  }
  fragment TodoFields on Todo {
    id title completed completedAt createdAt updatedAt
    owner { id email name image createdAt }
    list { id title private createdAt updatedAt owner { id email } space { id name slug viewerRole owner { id email name } } }
  }`;
}

interface Stats {
  p50: number;
  p95: number;
  mean: number;
  n: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { p50: at(0.5), p95: at(0.95), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, n: sorted.length };
}

async function start(databaseUrl: string, dataDir: string, env: Record<string, string>): Promise<RunningServer> {
  const config = loadConfig({
    NODE_ENV: "production",
    // Loopback only, and nothing else is there to read it.
    METRICS_PUBLIC: "true",
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    JWT_SECRET,
    LOG_LEVEL: "silent",
    ...env,
  });
  return startServer(config);
}

async function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (!body.data || body.errors) throw new Error(`${query.slice(0, 60)}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function seed(url: string): Promise<string> {
  const { signUp } = await gql<{ signUp: { token: string } }>(
    url,
    "mutation ($input: SignUpInput!) { signUp(input: $input) { token } }",
    { input: { email: `bench-${randomBytes(4).toString("hex")}@example.com`, password: "correct-horse-1" } },
  );
  const token = signUp.token;
  for (let s = 0; s < 3; s++) {
    const { createSpace } = await gql<{ createSpace: { id: string } }>(
      url,
      "mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }",
      { input: { name: `Bench space ${s}`, slug: `bench${s}${randomBytes(2).toString("hex")}` } },
      token,
    );
    for (let l = 0; l < 5; l++) {
      const { createList } = await gql<{ createList: { id: string } }>(
        url,
        "mutation ($input: CreateListInput!) { createList(input: $input) { id } }",
        { input: { spaceId: createSpace.id, title: `List ${l}` } },
        token,
      );
      for (let t = 0; t < 10; t++) {
        await gql(url, "mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }", { input: { listId: createList.id, title: `Todo ${t}` } }, token);
      }
    }
  }
  return token;
}

async function timedRequest(url: string, body: string, token: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  const elapsed = performance.now() - started;
  if (response.status !== 200 || text.includes('"errors"')) throw new Error(`unexpected answer ${response.status}: ${text.slice(0, 200)}`);
  return elapsed;
}

function documentBench(): { tokens: number; cost: string; on: Stats; off: Stats } {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
  const on = createOperationLimits(loadConfig({ NODE_ENV: "production", JWT_SECRET, METRICS_PUBLIC: "true" }).limits, { introspection: false });
  const source = largeLegalDocument();
  const rulesOn = [...specifiedRules, ...on.validationRules];

  // The document must be legal under the defaults, or this measures nothing.
  const checked = parse(source, on.parseOptions);
  const errors = validate(schema, checked, rulesOn);
  if (errors.length) throw new Error(`the large document is not legal: ${errors.map((e) => e.message).join("; ")}`);
  const variables = {};
  const costError = on.costError(schema, checked, "Large", variables);
  if (costError) throw new Error(`the large document is not legal: ${costError.message}`);
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  while (lexer.advance().kind !== TokenKind.EOF) tokens++;
  const costOf = createOperationLimits({ ...loadConfig({ NODE_ENV: "production", JWT_SECRET, METRICS_PUBLIC: "true" }).limits, maxCost: 1 }, { introspection: false }).costError(
    schema,
    checked,
    "Large",
    variables,
  );
  const cost = costOf?.message.match(/found (\S+)\./)?.[1] ?? "?";

  const runOn = () => {
    const document: DocumentNode = parse(source, on.parseOptions);
    if (validate(schema, document, rulesOn).length) throw new Error("invalid");
    if (getOperationAST(document, "Large") && on.costError(schema, document, "Large", variables)) throw new Error("too costly");
  };
  const runOff = () => {
    const document = parse(source);
    if (validate(schema, document, specifiedRules).length) throw new Error("invalid");
  };
  const deadline = performance.now() + DOCUMENT_BUDGET_MS;
  const measure = (fn: () => void) => {
    const samples: number[] = [];
    const stop = performance.now() + (deadline - performance.now()) / 2;
    for (let i = 0; i < DOCUMENT_ITERATIONS && performance.now() < stop; i++) {
      const started = performance.now();
      fn();
      samples.push((performance.now() - started) * 1000);
    }
    return stats(samples);
  };
  for (let i = 0; i < Math.min(100, DOCUMENT_ITERATIONS); i++) {
    runOn();
    runOff();
  }
  return { tokens, cost, on: measure(runOn), off: measure(runOff) };
}

async function main() {
  const database = await createBenchDatabase("bench_limits");
  const { name } = database;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-limits-"));
  const servers: RunningServer[] = [];
  try {
    const document = documentBench();
    const on = await start(database.url, dataDir, {});
    servers.push(on);
    const off = await start(database.url, dataDir, {
      LIMIT_MAX_DEPTH: "0",
      LIMIT_MAX_ALIASES: "0",
      LIMIT_MAX_ROOT_FIELDS: "0",
      LIMIT_MAX_DIRECTIVES: "0",
      LIMIT_MAX_TOKENS: "0",
      LIMIT_MAX_COST: "0",
      LIMIT_BODY_SIZE: "50mb",
      ALLOW_BATCHED_REQUESTS: "true",
      MIGRATE_ON_START: "false",
    });
    servers.push(off);
    const token = await seed(on.url);
    const body = JSON.stringify({ query: REALISTIC_QUERY });
    // Both answer the same thing.
    const [a, b] = await Promise.all([on.url, off.url].map((url) => gql(url, REALISTIC_QUERY, {}, token)));
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("limits on and off answer differently");

    for (let i = 0; i < WARMUP; i++) {
      await timedRequest(on.url, body, token);
      await timedRequest(off.url, body, token);
    }
    const samplesOn: number[] = [];
    const samplesOff: number[] = [];
    const deadline = performance.now() + HTTP_BUDGET_MS;
    for (let i = 0; i < REQUESTS && performance.now() < deadline; i++) {
      // Alternate which goes first, too.
      if (i % 2 === 0) {
        samplesOn.push(await timedRequest(on.url, body, token));
        samplesOff.push(await timedRequest(off.url, body, token));
      } else {
        samplesOff.push(await timedRequest(off.url, body, token));
        samplesOn.push(await timedRequest(on.url, body, token));
      }
    }
    const httpOn = stats(samplesOn);
    const httpOff = stats(samplesOff);

    const ms = (v: number) => v.toFixed(2).padStart(8);
    const us = (v: number) => v.toFixed(0).padStart(8);
    console.log(`\nbench:limits  PostgreSQL ${ADMIN_URL.replace(/\/[^/]*$/, "/")}${name}, Node ${process.version}`);
    console.log(`\nHTTP, the Home query (3 spaces x 5 lists x 10 todos), ${httpOn.n} requests each after ${WARMUP} warm-up, sequential, alternating:`);
    console.log("  limits      p50 ms    p95 ms   mean ms");
    console.log(`  on        ${ms(httpOn.p50)}  ${ms(httpOn.p95)}  ${ms(httpOn.mean)}`);
    console.log(`  off       ${ms(httpOff.p50)}  ${ms(httpOff.p95)}  ${ms(httpOff.mean)}`);
    console.log(`  on/off    ${(httpOn.p50 / httpOff.p50).toFixed(3).padStart(8)}  ${(httpOn.p95 / httpOff.p95).toFixed(3).padStart(8)}  ${(httpOn.mean / httpOff.mean).toFixed(3).padStart(8)}`);
    console.log(
      `\nIn process, parse + validate (+ cost) of a large legal document (${document.tokens} tokens, cost ${document.cost}), ${document.on.n} / ${document.off.n} iterations:`,
    );
    console.log("  limits      p50 µs    p95 µs   mean µs");
    console.log(`  on        ${us(document.on.p50)}  ${us(document.on.p95)}  ${us(document.on.mean)}`);
    console.log(`  off       ${us(document.off.p50)}  ${us(document.off.p95)}  ${us(document.off.mean)}`);
    console.log(`  on/off    ${(document.on.p50 / document.off.p50).toFixed(3).padStart(8)}  ${(document.on.p95 / document.off.p95).toFixed(3).padStart(8)}  ${(document.on.mean / document.off.mean).toFixed(3).padStart(8)}`);
    console.log(`  added by the limits: ${(document.on.p50 - document.off.p50).toFixed(0)} µs at p50\n`);
  } finally {
    for (const server of servers.reverse()) await server.close().catch(() => undefined);
    await database.drop().catch((error: unknown) =>
      console.error(`could not drop ${name}: ${String(error)}`),
    );
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();

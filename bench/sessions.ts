// What checking the session costs an authenticated request: the p50 latency
// of a simple authenticated query (`{ me { id } }`) on three servers over one
// PostgreSQL database, in the same run, requests sequential and interleaved
// (the order rotating) so the machine's noise falls on all three alike:
//   without   no session check at all (the token's signature and expiry only:
//             what the server did before sessions);
//   cached    the server as it ships: active sessions trusted for
//             SESSION_CACHE_TTL (2s), ended ones announced over the bus;
//   uncached  SESSION_CACHE_TTL=0: one statement per request, what the cache saves.
//
//   npm run bench:sessions                 (BENCH_REQUESTS=2000, BENCH_WARMUP=200)
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config.js";
import type { SessionCheck } from "../src/modules/auth/sessionCheck.js";
import { startServer, type RunningServer } from "../src/server.js";
import { ADMIN_URL, boundedInt, createBenchDatabase } from "./support.js";

const REQUESTS = boundedInt(process.env.BENCH_REQUESTS, 2000, 10, 100_000, "BENCH_REQUESTS");
const WARMUP = boundedInt(process.env.BENCH_WARMUP, 200, 0, 10_000, "BENCH_WARMUP");
const JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789";
const QUERY = JSON.stringify({ query: "{ me { id } }" });

/** The check turned off: every session counts as active. For this baseline only. */
const noSessionCheck: SessionCheck = {
  assertActive: async () => undefined,
  watch: () => () => undefined,
  announceEnded: () => undefined,
  close: async () => undefined,
};

async function start(databaseUrl: string, dataDir: string, env: Record<string, string>, sessionCheck?: SessionCheck) {
  const config = loadConfig({
    NODE_ENV: "production",
    METRICS_PUBLIC: "true",
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    JWT_SECRET,
    LOG_LEVEL: "silent",
    ...env,
  });
  return startServer(config, sessionCheck ? { sessionCheck } : {});
}

async function timed(url: string, token: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: QUERY,
  });
  const body = (await response.json()) as { data?: { me?: { id: string } } };
  const elapsed = performance.now() - started;
  if (!body.data?.me?.id) throw new Error(`unexpected answer: ${JSON.stringify(body)}`);
  return elapsed;
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), n: sorted.length };
}

async function main() {
  const database = await createBenchDatabase("bench_sessions");
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-sessions-"));
  const servers: RunningServer[] = [];
  try {
    const modes: { name: string; server: RunningServer; samples: number[] }[] = [];
    const without = await start(database.url, dataDir, {}, noSessionCheck);
    servers.push(without);
    const cached = await start(database.url, dataDir, { MIGRATE_ON_START: "false" });
    servers.push(cached);
    const uncached = await start(database.url, dataDir, { MIGRATE_ON_START: "false", SESSION_CACHE_TTL: "0" });
    servers.push(uncached);
    modes.push({ name: "without", server: without, samples: [] }, { name: "cached", server: cached, samples: [] }, { name: "uncached", server: uncached, samples: [] });

    const signUp = await fetch(cached.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `mutation { signUp(input: { email: "bench@example.com", password: "correct-horse-1" }) { token } }` }),
    });
    const token = ((await signUp.json()) as { data: { signUp: { token: string } } }).data.signUp.token;

    for (let i = 0; i < WARMUP; i++) for (const mode of modes) await timed(mode.server.url, token);
    for (let i = 0; i < REQUESTS; i++) {
      // Rotate who goes first, so no mode always follows the same one.
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(i + k) % modes.length]!;
        mode.samples.push(await timed(mode.server.url, token));
      }
    }

    const [base, ...rest] = modes.map((mode) => ({ name: mode.name, ...stats(mode.samples) }));
    const ms = (v: number) => v.toFixed(3).padStart(8);
    const ratio = (v: number, b: number) => `${(v / b).toFixed(3)}×`.padStart(8);
    console.log(`\nbench:sessions  PostgreSQL ${ADMIN_URL.replace(/\/[^/]*$/, "/")}${database.name}, Node ${process.version}`);
    console.log(`{ me { id } } with a bearer token, ${REQUESTS} requests per server after ${WARMUP} warm-up, sequential, interleaved\n`);
    console.log("  session check      p50 ms    p90 ms    p99 ms   p50 vs without");
    for (const row of [base!, ...rest]) {
      console.log(`  ${row.name.padEnd(15)}${ms(row.p50)}  ${ms(row.p90)}  ${ms(row.p99)}  ${ratio(row.p50, base!.p50)}`);
    }
    const cachedRow = rest.find((row) => row.name === "cached")!;
    console.log(`\n  the session check (cached) adds ${((cachedRow.p50 - base!.p50) * 1000).toFixed(0)} µs at p50 (${ratio(cachedRow.p50, base!.p50).trim()})\n`);
  } finally {
    for (const server of servers.reverse()) await server.close().catch(() => undefined);
    await database.drop().catch((error: unknown) => console.error(`could not drop ${database.name}: ${String(error)}`));
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();

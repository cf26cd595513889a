// What the benchmarks share: the PostgreSQL server they run on, a fresh
// database for each run (dropped at the end), integer options read from the
// environment with a clear error when out of range, a server process's CPU
// time, and one GraphQL request.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import pg from "pg";

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates `<prefix>_<random>` on the admin server; drop() removes it. Unless
 * the benchmark handles signals itself (`dropOnSignal: false`), Ctrl-C or a
 * SIGTERM drops it too before the process exits.
 */
export async function createBenchDatabase(prefix: string, options: { dropOnSignal?: boolean } = {}): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  // One admin connection, held for the whole run, creates and drops the
  // database: dropping never waits for a free connection on a busy server.
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  admin.on("error", () => undefined);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  console.error(`${prefix}: working in a fresh database ${name}, dropped at the end (seeding can take a while)`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  const drop = () =>
    (dropped ??= (async () => {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    })());
  if (options.dropOnSignal !== false) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        console.error(`${prefix}: ${signal}, dropping ${name}`);
        drop().then(
          () => process.exit(signal === "SIGINT" ? 130 : 143),
          () => process.exit(1),
        );
      });
    }
  }
  return { name, url: url.toString(), drop };
}

/** An integer option; `value` unset or empty gives the fallback. */
export function boundedInt(value: string | undefined, fallback: number, min: number, max: number, name: string): number {
  const parsed = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new Error(`${name}: expected an integer from ${min} to ${max}, got ${value}`);
  }
  return parsed;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** A process's CPU time so far, in ms (utime + stime from /proc). */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** One GraphQL request to the server at `url` (its /graphql); throws on any GraphQL error. */
export async function gql<Data>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<Data> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Data; errors?: unknown[] };
  if (body.errors || !body.data) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
  return body.data;
}

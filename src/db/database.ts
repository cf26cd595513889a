// Opens the database the configuration names: the embedded PGlite database
// (DATABASE_URL unset) or a PostgreSQL server through a pg pool. Either way the
// result is the raw Prisma client plus the few connection-level operations the
// server needs (migrate, ping, close). The raw client must only be used by the
// policy layer, auth, migrations and the seed (see tests/unit/boundaries.test.ts).
// That test enforces it: it parses every source file and fails, naming the file
// and the import, when a module outside src/policy, src/db, src/modules/auth,
// src/realtime, src/server.ts, src/context.ts, prisma/seed.ts or bench/ imports
// a value from here or from generated/prisma, or the RawPrismaClient type.
import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import type { SqlMigrationAwareDriverAdapterFactory } from "@prisma/driver-adapter-utils";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Config } from "../config.js";
import { PrismaClient } from "../generated/prisma/client.js";
import { applyMigrations, type MigrationConnection, type MigrationResult } from "./migrate.js";
import { countingAdapterFactory, type QueryStats } from "./queryStats.js";
import { lockDataDir } from "./dataDirLock.js";
import { usableTemplate } from "./pgliteTemplate.js";

export type RawPrismaClient = PrismaClient;

/** Plain SQL for the job queue (pg-boss's `db` option): its own statements, beside Prisma's. */
export interface SqlExecutor {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface Database {
  kind: "pglite" | "postgres";
  prisma: RawPrismaClient;
  migrate(): Promise<MigrationResult>;
  /** Resolves when a trivial query succeeds; rejects otherwise. */
  ping(): Promise<void>;
  /** The job queue's connection: PGlite's one instance, or a small pool of its own on PostgreSQL. */
  jobSql(): SqlExecutor;
  /** Every SQL statement `prisma` has sent so far, whoever sent it (the job queue's own connection not included). */
  readonly statements: Readonly<QueryStats>;
  close(): Promise<void>;
}

interface Driver {
  adapter: SqlMigrationAwareDriverAdapterFactory;
  migrate(): Promise<MigrationResult>;
  jobSql(): SqlExecutor;
  close(): Promise<void>;
}

/** Whether `dataDir` holds no database yet (PostgreSQL writes PG_VERSION first thing). */
async function isNewDatabase(dataDir: string | undefined): Promise<boolean> {
  if (!dataDir) return true;
  return access(path.join(dataDir, "PG_VERSION")).then(
    () => false,
    () => true,
  );
}
// The queue's statements are short (fetch, complete, send); a few connections
// keep them off the request pool, whose size DATABASE_POOL_MAX sets.
const JOB_POOL_MAX = 4;

async function openPGlite(dataDir: string | undefined): Promise<Driver> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const unlock = dataDir ? await lockDataDir(dataDir) : async () => undefined;
  let pglite: PGlite;
  try {
    // A new database is unpacked from the build's migrated template, when it has one.
    const template = (await isNewDatabase(dataDir)) ? await usableTemplate() : undefined;
    pglite = new PGlite({ ...(dataDir ? { dataDir } : {}), ...(template ? { loadDataDir: template } : {}) });
    await pglite.waitReady;
  } catch (error) {
    await unlock();
    throw error;
  }
  return {
    adapter: new PrismaPGlite(pglite),
    migrate: () =>
      applyMigrations({
        exec: async (sql) => {
          await pglite.exec(sql);
        },
        query: async <Row>(sql: string, params: unknown[] = []) => (await pglite.query<Row>(sql, params)).rows,
      }),
    // PGlite is one connection, and each query or exec runs alone on it (a
    // Prisma transaction holds it whole), so the queue shares it safely.
    // pg-boss sends multi-statement scripts (BEGIN; ...; COMMIT) without
    // parameters: those go through exec, which runs several statements.
    jobSql: () => ({
      executeSql: async (text, values) => {
        if (values && values.length > 0) return { rows: (await pglite.query<Record<string, unknown>>(text, values)).rows };
        const results = await pglite.exec(text);
        return { rows: (results.at(-1)?.rows ?? []) as Record<string, unknown>[] };
      },
    }),
    close: async () => {
      try {
        await pglite.close();
      } finally {
        await unlock();
      }
    },
  };
}

// TCP keep-alive probes start after this much idleness, so a connection whose
// peer vanished is noticed in seconds rather than the OS default of two hours.
const KEEPALIVE_DELAY_MS = 10_000;

const isReadTimeout = (error: unknown) => error instanceof Error && error.message === "Query read timeout";

/**
 * A query that timed out leaves its connection waiting for an answer that may
 * never come (a network partition); the next query on it would wait behind
 * it. Such a connection is dropped at once, as pg itself does in pipeline
 * mode, so the pool replaces it.
 */
function dropConnectionsOnTimeout(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    const drop = () => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    // Reassigning the method keeps every overload; only promise results can be watched here (callback
    // queries come from pool.query, which already discards a client that failed).
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const result = query(...args);
      if (result instanceof Promise) {
        return result.catch((error: unknown) => {
          if (isReadTimeout(error)) drop();
          throw error;
        });
      }
      return result;
    };
  });
}

function openPostgres(url: string, poolMax: number, connectTimeoutMs: number, queryTimeoutMs: number): Driver {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // Both bounds matter when the database is unreachable: without them a
    // request waits for a connection, or for an answer, forever (a partition
    // drops packets silently; nothing ever says "refused").
    connectionTimeoutMillis: connectTimeoutMs,
    query_timeout: queryTimeoutMs,
    // Without a keep-alive a dropped server leaves idle sockets half-open.
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  // An idle client losing its server emits here; the pool replaces it. Without
  // a listener the process would crash on a database restart.
  pool.on("error", () => undefined);
  dropConnectionsOnTimeout(pool);
  let jobPool: pg.Pool | undefined;
  return {
    adapter: new PrismaPg(pool),
    migrate: async () => {
      // Migrations hold a session-level advisory lock (another instance may
      // hold it for a while) and may run long statements: they get a
      // connection of their own, without the query timeout.
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
      client.on("error", () => undefined);
      await client.connect();
      const connection: MigrationConnection = {
        exec: async (sql) => {
          await client.query(sql);
        },
        query: async <Row>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as Row[],
      };
      try {
        return await applyMigrations(connection);
      } finally {
        await client.end();
      }
    },
    jobSql: () => {
      if (!jobPool) {
        jobPool = new pg.Pool({
          connectionString: url,
          max: JOB_POOL_MAX,
          connectionTimeoutMillis: connectTimeoutMs,
          keepAlive: true,
          keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
          application_name: "jobs",
        });
        // As for the request pool: an idle connection losing its server must not crash the process.
        jobPool.on("error", () => undefined);
      }
      const jobs = jobPool;
      return { executeSql: async (text, values) => ({ rows: (await jobs.query(text, values)).rows as Record<string, unknown>[] }) };
    },
    close: async () => {
      await pool.end();
      await jobPool?.end();
    },
  };
}

export async function openDatabase(database: Config["database"]): Promise<Database> {
  const driver =
    database.kind === "pglite"
      ? await openPGlite(database.dataDir)
      : openPostgres(database.url, database.poolMax, database.connectTimeoutMs, database.queryTimeoutMs);
  const statements: QueryStats = { sqlStatements: 0 };
  const prisma = new PrismaClient({ adapter: countingAdapterFactory(driver.adapter, statements) });
  let closed: Promise<void> | undefined;
  return {
    kind: database.kind,
    prisma,
    statements,
    migrate: () => driver.migrate(),
    ping: async () => {
      await prisma.$queryRawUnsafe("SELECT 1");
    },
    jobSql: () => driver.jobSql(),
    // Once, however often it is called (a failed start and a shutdown may both).
    close: () =>
      (closed ??= (async () => {
        try {
          await prisma.$disconnect();
        } finally {
          await driver.close();
        }
      })()),
  };
}

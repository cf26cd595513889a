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
import { countingAdapterFactory } from "./queryStats.js";
import { lockDataDir } from "./dataDirLock.js";
import { usableTemplate } from "./pgliteTemplate.js";

export type RawPrismaClient = PrismaClient;

export interface Database {
  kind: "pglite" | "postgres";
  prisma: RawPrismaClient;
  migrate(): Promise<MigrationResult>;
  /** Resolves when a trivial query succeeds; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

interface Driver {
  adapter: SqlMigrationAwareDriverAdapterFactory;
  migrate(): Promise<MigrationResult>;
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
    close: () => pool.end(),
  };
}

export async function openDatabase(database: Config["database"]): Promise<Database> {
  const driver =
    database.kind === "pglite"
      ? await openPGlite(database.dataDir)
      : openPostgres(database.url, database.poolMax, database.connectTimeoutMs, database.queryTimeoutMs);
  const prisma = new PrismaClient({ adapter: countingAdapterFactory(driver.adapter) });
  let closed: Promise<void> | undefined;
  return {
    kind: database.kind,
    prisma,
    migrate: () => driver.migrate(),
    ping: async () => {
      await prisma.$queryRawUnsafe("SELECT 1");
    },
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

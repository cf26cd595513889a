// Which database the suite runs on: TEST_DATABASE=postgres gives every test
// server a fresh database on the PostgreSQL server at TEST_POSTGRES_URL,
// dropped afterwards; anything else gives it an in-memory PGlite database.
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Config } from "../../src/config.js";

export const usePostgres = process.env.TEST_DATABASE === "postgres";
export const adminUrl = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  config: Config["database"];
  url: string | undefined;
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!usePostgres) return { config: { kind: "pglite", dataDir: undefined }, url: undefined, drop: async () => {} };
  const name = `todo_test_${randomBytes(6).toString("hex")}`;
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    config: { kind: "postgres", url: url.toString(), poolMax: 10, connectTimeoutMs: 5000, queryTimeoutMs: 5000 },
    url: url.toString(),
    drop: () => withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

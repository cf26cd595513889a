// A database that outlives one test server: a PGlite data directory (the
// embedded default persists there) or a fresh PostgreSQL database, for tests
// that stop a server and start another on the same data.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";

export async function lastingDatabase(): Promise<TestDatabase> {
  if (usePostgres) return createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "todo-jobs-"));
  return { config: { kind: "pglite", dataDir }, url: undefined, drop: () => rm(dataDir, { recursive: true, force: true }) };
}

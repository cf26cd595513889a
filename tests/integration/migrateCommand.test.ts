// `npm run db:migrate` migrates the database the environment names and says
// which one: the embedded database's directory, or the PostgreSQL database by
// its own name (not the server's default database).
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readMigrations } from "../../src/db/migrate.js";
import { createTestDatabase, usePostgres } from "../helpers/database.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function migrate(env: Record<string, string>) {
  return spawnSync("npm", ["run", "--silent", "db:migrate"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: "utf8",
  });
}

describe("npm run db:migrate", () => {
  it.runIf(usePostgres)("applies every migration to the PostgreSQL database DATABASE_URL names, says so by name, and is idempotent", async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const url = new URL(database.url!);
    const name = url.pathname.slice(1);
    const first = migrate({ DATABASE_URL: database.url! });
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    const names = (await readMigrations()).map((m) => m.name);
    expect(first.stdout).toBe(
      `PostgreSQL database "${name}" at ${url.hostname}:${url.port || 5432}: applied ${names.length} migration(s):\n${names.map((n) => `  ${n}\n`).join("")}`,
    );
    const second = migrate({ DATABASE_URL: database.url! });
    expect(second.status).toBe(0);
    expect(second.stdout).toBe(`PostgreSQL database "${name}" at ${url.hostname}:${url.port || 5432}: no pending migrations.\n`);
  });

  it("names the embedded database by its directory, and needs none of a production server's secrets", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "todo-migrate-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const result = migrate({ DATA_DIR: dir, NODE_ENV: "production" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^the embedded database in ${path.join(dir, "pglite")}: `));
  });

  it("refuses an invalid DATABASE_URL with the reason, exit 1", () => {
    const result = migrate({ DATABASE_URL: "mysql://nope" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("Migration failed: Invalid DATABASE_URL: must start with postgres:// or postgresql://.");
  });

  // Deployments (and the peer benchmark) migrate with Prisma's own CLI: its
  // schema engine splits a migration into statements itself (a semicolon in a
  // comment once broke it), so every migration must pass through it too.
  it("npx prisma migrate deploy applies every migration to a new database, after which none is pending", async () => {
    const env: Record<string, string> = {};
    if (usePostgres) {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      env.DATABASE_URL = database.url!;
    } else {
      const dir = await mkdtemp(path.join(os.tmpdir(), "todo-prisma-deploy-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      env.DATA_DIR = dir;
    }
    const deploy = () =>
      spawnSync("npx", ["prisma", "migrate", "deploy"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        encoding: "utf8",
        timeout: 120_000,
      });
    const first = deploy();
    expect(first.stderr + first.stdout).not.toMatch(/Error/);
    expect(first.status).toBe(0);
    for (const migration of await readMigrations()) expect(first.stdout).toContain(migration.name);
    // Then nothing is pending, by either migrator. (On the embedded database
    // Prisma's CLI, finding nothing to do, prints so and then does not exit:
    // the README says to use npm run db:migrate there.)
    const ours = migrate(env);
    expect(ours.status).toBe(0);
    expect(ours.stdout).toMatch(/: no pending migrations\.\n$/);
    if (usePostgres) {
      const second = deploy();
      expect(second.status).toBe(0);
      expect(second.stdout).toContain("No pending migrations to apply.");
    }
  }, 240_000);
});

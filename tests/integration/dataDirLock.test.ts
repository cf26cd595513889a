// The embedded database serves one process at a time: a second opener of the
// same DATA_DIR (a second server, `npm run seed` while the server runs) is
// refused with a clear message instead of corrupting it.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/db/database.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "todo-lock-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, "pglite");
}

async function open(dir: string): Promise<Database> {
  const database = await openDatabase({ kind: "pglite", dataDir: dir });
  cleanups.push(() => database.close());
  return database;
}

describe("one process per embedded database", () => {
  it("refuses a second opener while the first holds it, and lets it in once the first has closed", async () => {
    const dir = await dataDir();
    const first = await open(dir);
    expect(await readFile(`${dir}.lock`, "utf8")).toBe(String(process.pid));
    await expect(openDatabase({ kind: "pglite", dataDir: dir })).rejects.toThrow(
      `The embedded database in ${dir} is in use by process ${process.pid} (a running server?). Stop it first: the embedded database serves one process at a time (lock: ${dir}.lock).`,
    );
    await first.close();
    const second = await open(dir);
    await second.ping();
  });

  it("takes over a lock left by a process that is gone", async () => {
    const dir = await dataDir();
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    await writeFile(`${dir}.lock`, String(gone));
    const database = await open(dir);
    await database.ping();
    expect(await readFile(`${dir}.lock`, "utf8")).toBe(String(process.pid));
  });

  it("takes over a lock with its own pid that it does not hold (a restarted container reuses pids)", async () => {
    const dir = await dataDir();
    await writeFile(`${dir}.lock`, String(process.pid));
    const database = await open(dir);
    await database.ping();
    await database.close();
    await expect(readFile(`${dir}.lock`, "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("npm run seed while a server holds DATA_DIR: refused with the reason, exit 1, nothing touched", async () => {
    const dir = await dataDir();
    const holder = await open(dir);
    await holder.migrate();
    const seed = spawnSync(process.execPath, ["--import", "tsx", "prisma/seed.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: path.dirname(dir) },
      encoding: "utf8",
    });
    expect(seed.status).toBe(1);
    expect(seed.stderr).toContain(`Seeding failed: The embedded database in ${dir} is in use by process ${process.pid}`);
    expect(await holder.prisma.user.count()).toBe(0);
  });

  it("npm run db:migrate while a server holds DATA_DIR: refused with the reason, exit 1, nothing touched", async () => {
    const dir = await dataDir();
    const holder = await open(dir);
    await holder.migrate();
    await holder.prisma.$executeRawUnsafe(`DELETE FROM "_prisma_migrations" WHERE migration_name = (SELECT max(migration_name) FROM "_prisma_migrations")`);
    const before = await holder.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM "_prisma_migrations"`);
    const migrate = spawnSync("npm", ["run", "--silent", "db:migrate"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: path.dirname(dir) },
      encoding: "utf8",
    });
    expect(migrate.status).toBe(1);
    expect(migrate.stderr).toContain(`Migration failed: The embedded database in ${dir} is in use by process ${process.pid}`);
    const after = await holder.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM "_prisma_migrations"`);
    expect(after[0]?.n).toBe(before[0]?.n);
  });
});

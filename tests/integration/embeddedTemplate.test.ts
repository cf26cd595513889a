// A new embedded database is unpacked from the build's migrated template
// (src/db/pgliteTemplate.ts) instead of initdb + every migration, and only
// when the template was made from exactly the migrations there are now.
import { cp, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { MIGRATIONS_DIR, readMigrations } from "../../src/db/migrate.js";
import { templateFingerprint, usableTemplate } from "../../src/db/pgliteTemplate.js";

const temporary: string[] = [];
afterEach(async () => {
  for (const directory of temporary.splice(0)) await rm(directory, { recursive: true, force: true });
});
async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "todo-template-"));
  temporary.push(directory);
  return directory;
}

describe("embedded database template", () => {
  it("the build made a template that fits the migrations in prisma/migrations", async () => {
    expect(await usableTemplate()).toBeInstanceOf(Blob);
  });

  it("is not used once the migrations differ from the ones it was made from", async () => {
    const migrations = path.join(await temporaryDirectory(), "migrations");
    await cp(MIGRATIONS_DIR, migrations, { recursive: true });
    expect(await templateFingerprint(migrations)).toBe(await templateFingerprint());

    await mkdir(path.join(migrations, "29991231000000_later"));
    await writeFile(path.join(migrations, "29991231000000_later", "migration.sql"), "SELECT 1;\n");
    expect(await templateFingerprint(migrations)).not.toBe(await templateFingerprint());
    expect(await usableTemplate(migrations)).toBeUndefined();
  });

  it("a new data directory starts from it with every migration recorded, and keeps its data across reopening", async () => {
    const dataDir = path.join(await temporaryDirectory(), "pglite");
    const first = await openDatabase({ kind: "pglite", dataDir });
    try {
      expect((await first.migrate()).applied).toEqual([]); // the template had them all
      const recorded = await first.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
        `SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name`,
      );
      expect(recorded.map((row) => row.migration_name)).toEqual((await readMigrations()).map((m) => m.name));
      await first.prisma.user.create({ data: { email: "kept@example.com", name: "Kept", passwordHash: "x" } });
    } finally {
      await first.close();
    }
    const second = await openDatabase({ kind: "pglite", dataDir });
    try {
      expect(await second.prisma.user.count({ where: { email: "kept@example.com" } })).toBe(1);
    } finally {
      await second.close();
    }
  });
});

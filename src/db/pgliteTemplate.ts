// A new embedded database starts from a template instead of running initdb
// and every migration: `npm run build` (run by `npm install`) creates one
// migrated PGlite database and dumps its data directory into dist/. Creating
// a database from scratch costs seconds (initdb inside WebAssembly, then the
// migrations); unpacking the template costs a fraction of that.
//
// The template is used only when it was made from exactly the migrations in
// prisma/migrations and with the installed PGlite: otherwise (a migration was
// added or edited since the build, or PGlite was upgraded) the database is
// created the slow way. Either way start-up still runs applyMigrations, so a
// template can never leave a migration out.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MIGRATIONS_DIR, readMigrations } from "./migrate.js";

// src/db and dist/db are both two levels below the project root.
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const TEMPLATE_FILE = path.join(PROJECT_ROOT, "dist", "pglite-template.tar.gz");
const STAMP_FILE = path.join(PROJECT_ROOT, "dist", "pglite-template.json");

interface TemplateStamp {
  /** Which migrations, and which PGlite, the template was made with. */
  fingerprint: string;
}

async function pgliteVersion(): Promise<string> {
  // The package does not export its package.json; read it where the import resolves.
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  let directory = path.dirname(entry);
  while (path.basename(directory) !== "pglite") directory = path.dirname(directory);
  const manifest = JSON.parse(await readFile(path.join(directory, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

/** Changes whenever a migration is added, renamed or edited, or PGlite changes. */
export async function templateFingerprint(migrationsDir: string = MIGRATIONS_DIR): Promise<string> {
  const hash = createHash("sha256").update(`pglite ${await pgliteVersion()}\n`);
  for (const migration of await readMigrations(migrationsDir)) hash.update(`${migration.name} ${migration.checksum}\n`);
  return hash.digest("hex");
}

export async function readTemplateStamp(): Promise<TemplateStamp | undefined> {
  try {
    return JSON.parse(await readFile(STAMP_FILE, "utf8")) as TemplateStamp;
  } catch {
    return undefined;
  }
}

export const STAMP_PATH = STAMP_FILE;

/** The template's data directory as PGlite's `loadDataDir` takes it, when it fits these migrations. */
export async function usableTemplate(migrationsDir: string = MIGRATIONS_DIR): Promise<Blob | undefined> {
  const [stamp, fingerprint] = await Promise.all([readTemplateStamp(), templateFingerprint(migrationsDir)]);
  if (stamp?.fingerprint !== fingerprint) return undefined;
  try {
    return new Blob([await readFile(TEMPLATE_FILE)]);
  } catch {
    return undefined;
  }
}

// `npm run db:migrate`: applies pending migrations to the database the
// configuration names (DATABASE_URL, or the embedded database in DATA_DIR) and
// exits. The same migrator runs at start-up; it is used here too because the
// Prisma 7 CLI cannot migrate on machines that cannot download its schema
// engine. Stop a server running on the embedded database first, as PGlite
// serves one process.
import { ConfigError, loadConfig } from "../config.js";
import { openDatabase } from "./database.js";

async function main(): Promise<void> {
  const config = loadConfig();
  const database = await openDatabase(config.database);
  let applied: string[];
  try {
    ({ applied } = await database.migrate());
  } finally {
    await database.close();
  }
  const target = database.kind === "pglite" ? `the embedded database in ${config.dataDir}` : "the PostgreSQL database";
  process.stdout.write(
    applied.length === 0
      ? `No pending migrations for ${target}.\n`
      : `Applied ${applied.length} migration(s) to ${target}:\n${applied.map((name) => `  ${name}\n`).join("")}`,
  );
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`Migration failed: ${message}\n`);
  process.exit(1);
});

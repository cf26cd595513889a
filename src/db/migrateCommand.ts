// `npm run db:migrate`: applies pending migrations to the database the
// environment names (DATABASE_URL, or the embedded database in DATA_DIR) and
// exits, saying which database it migrated. It opens the database exactly as
// the server does, so on the embedded database it takes the data directory's
// lock: while a server holds it, it is refused with the reason and touches
// nothing. The migrator is the one the server runs at start-up; its records
// are those of `prisma migrate deploy`, which works on the same databases.
import { ConfigError, loadDatabaseConfig, type Config } from "../config.js";
import { openDatabase } from "./database.js";

export function describeDatabase(database: Config["database"]): string {
  if (database.kind === "pglite") return `the embedded database in ${database.dataDir}`;
  const url = new URL(database.url);
  const name = decodeURIComponent(url.pathname.replace(/^\//, "")) || url.username || "postgres";
  return `PostgreSQL database "${name}" at ${url.hostname}:${url.port || "5432"}`;
}

async function main(): Promise<void> {
  const selection = loadDatabaseConfig();
  const target = describeDatabase(selection);
  const database = await openDatabase(selection);
  let applied: string[];
  try {
    ({ applied } = await database.migrate());
  } finally {
    await database.close();
  }
  process.stdout.write(
    applied.length === 0
      ? `${target}: no pending migrations.\n`
      : `${target}: applied ${applied.length} migration(s):\n${applied.map((name) => `  ${name}\n`).join("")}`,
  );
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`Migration failed: ${message}\n`);
  process.exit(1);
});

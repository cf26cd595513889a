// Prisma CLI configuration. The CLI (Prisma 7) is used only to generate the
// client: its migration commands need a schema-engine binary that is
// downloaded at run time from a host these machines cannot reach. Migrations
// in prisma/migrations are applied by the project's own migrator
// (src/db/migrate.ts), at start-up and by `npm run db:migrate`.
import path from "node:path";
import { defineConfig } from "prisma/config";

// Every CLI command, `prisma generate` included, first looks for the schema
// engine and downloads it when missing; generating never runs it. Naming any
// existing file skips the download (a real engine, when one is set, wins).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.resolve("prisma", "schema.prisma");

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
});

// Prisma CLI configuration. The CLI runs on the bundled WebAssembly schema
// engine over a driver adapter (no engine binary is downloaded), using the
// same database selection as the server: DATABASE_URL for PostgreSQL, or the
// embedded PGlite database in DATA_DIR when it is unset.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (url) {
      const { PrismaPg } = await import("@prisma/adapter-pg");
      return new PrismaPg({ connectionString: url });
    }
    const { PGlite } = await import("@electric-sql/pglite");
    const { PrismaPGlite } = await import("pglite-prisma-adapter");
    const dataDir = path.resolve(process.env.DATA_DIR ?? "data", "pglite");
    mkdirSync(dataDir, { recursive: true });
    return new PrismaPGlite(new PGlite({ dataDir }));
  },
});

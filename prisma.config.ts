// Prisma CLI configuration. The CLI runs on the bundled WebAssembly schema
// engine over a driver adapter (no engine binary is downloaded), using the
// same database selection as the server: DATABASE_URL for PostgreSQL, or the
// embedded PGlite database in DATA_DIR when it is unset.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { PrismaPGlite } from "pglite-prisma-adapter";
import { defineConfig } from "prisma/config";

// The CLI asks for an adapter more than once per command (and closes each one
// it is done with): the data directory's lock is taken at the first ask.
let locked: Promise<unknown> | undefined;

async function openEmbedded(): Promise<PrismaPGlite> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { PrismaPGlite } = await import("pglite-prisma-adapter");
  const dataDir = path.resolve(process.env.DATA_DIR ?? "data", "pglite");
  mkdirSync(dataDir, { recursive: true });
  // The server's lock on the embedded database (src/db/dataDirLock.ts): the
  // CLI must not open it while a server does. The CLI exits without giving it
  // back; a lock whose process is gone is taken over by the next opener.
  const { lockDataDir } = await import("./src/db/dataDirLock.js");
  await (locked ??= lockDataDir(dataDir));
  return new PrismaPGlite(new PGlite({ dataDir }));
}

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
    return openEmbedded();
  },
});

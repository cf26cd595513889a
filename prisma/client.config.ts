// Configuration of the Prisma 7 CLI, which only generates the client
// (`npm run generate`). The project's `prisma` CLI stays Prisma 6.19, for the
// migration commands (`npx prisma migrate deploy`, prisma.config.ts): Prisma
// 7's need a schema-engine binary downloaded at run time from a host these
// machines cannot reach, and 6.19 runs them on its bundled WebAssembly engine.
//
// prisma/schema.prisma is the one data model. The two CLIs disagree on one
// thing in it: 6.19 requires the datasource `url` (never used: both connect
// through driver adapters) and `engineType`, which 7 refuses. So the client is
// generated from a copy without them, written here on every generate to
// src/generated/ (never committed), with the generator's `output` made
// relative to the copy's folder.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const source = path.resolve("prisma", "schema.prisma");
const copy = path.resolve("src", "generated", "client.prisma");

const schema = readFileSync(source, "utf8")
  .replace(/^\s*url\s*=.*$\n?/m, "")
  .replace(/^\s*engineType\s*=.*$\n?/m, "")
  .replace(/^(\s*output\s*=\s*)"([^"]+)"/m, (_line, prefix: string, output: string) => {
    const target = path.resolve(path.dirname(source), output);
    return `${prefix}"${path.relative(path.dirname(copy), target).split(path.sep).join("/")}"`;
  });
mkdirSync(path.dirname(copy), { recursive: true });
writeFileSync(copy, `// Generated from prisma/schema.prisma by prisma/client.config.ts: do not edit.\n${schema}`);

// Every Prisma 7 command, `generate` included, first looks for the schema
// engine and downloads it when missing; generating never runs it. Naming any
// existing file skips the download (a real engine, when one is set, wins).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= source;

export default { schema: copy };

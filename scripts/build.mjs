// The build: compiles src/ to JavaScript in dist/ (same layout, one file per
// module, so paths relative to a module stay right), then makes the embedded
// database template (src/db/pgliteTemplate.ts) unless the one in dist/ was
// made from the same migrations. `npm install` runs it after code generation;
// `npm start` runs what it made.
//
//   node scripts/build.mjs            compile, and refresh the template if needed
//   node scripts/build.mjs --no-template
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");

async function sources(directory) {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

async function compile() {
  const started = performance.now();
  // Modules deleted from src/ must not linger in dist/; what other steps put
  // there stays (the template, and the explorer of explorer/build.ts).
  for (const entry of await readdir(dist, { withFileTypes: true }).catch(() => [])) {
    if (entry.name.startsWith("pglite-template") || entry.name === "explorer") continue;
    await rm(path.join(dist, entry.name), { recursive: true, force: true });
  }
  const entryPoints = await sources(path.join(root, "src"));
  await build({
    entryPoints,
    outdir: dist,
    outbase: path.join(root, "src"),
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
  });
  return { modules: entryPoints.length, ms: Math.round(performance.now() - started) };
}

async function makeTemplate() {
  const started = performance.now();
  const { templateFingerprint, readTemplateStamp, TEMPLATE_FILE, STAMP_PATH } = await import(
    path.join(dist, "db", "pgliteTemplate.js")
  );
  const fingerprint = await templateFingerprint();
  if ((await readTemplateStamp())?.fingerprint === fingerprint) return { made: false };
  const { PGlite } = await import("@electric-sql/pglite");
  const { applyMigrations } = await import(path.join(dist, "db", "migrate.js"));
  const pglite = new PGlite();
  try {
    await pglite.waitReady;
    await applyMigrations({
      exec: async (sql) => {
        await pglite.exec(sql);
      },
      query: async (sql, params = []) => (await pglite.query(sql, params)).rows,
    });
    const dump = await pglite.dumpDataDir("gzip");
    await writeFile(TEMPLATE_FILE, Buffer.from(await dump.arrayBuffer()));
    await writeFile(STAMP_PATH, `${JSON.stringify({ fingerprint })}\n`);
  } finally {
    await pglite.close();
  }
  return { made: true, ms: Math.round(performance.now() - started) };
}

const compiled = await compile();
let line = `build: ${compiled.modules} modules compiled to dist/ in ${compiled.ms} ms`;
if (!process.argv.includes("--no-template")) {
  const template = await makeTemplate();
  line += template.made ? `; embedded database template made in ${template.ms} ms` : "; embedded database template up to date";
}
console.log(line);

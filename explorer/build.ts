// Bundles the explorer (GraphiQL 5, its explorer plugin, Monaco and its
// workers) from node_modules into dist/explorer, which the server serves at
// /explorer/ (src/http/explorer.ts). Run by `npm install` (postinstall) and
// `npm run build:explorer`. Everything the page needs ends up in these
// files: fonts are inlined, workers are files of their own, nothing is
// fetched from a CDN.
import { rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const EXPLORER_BUILD_DIR = path.join(root, "dist", "explorer");

/** Monaco's web workers: each its own script (workers.ts loads them by these names). */
const WORKER_ENTRIES = {
  "editor.worker": "monaco-editor/esm/vs/editor/editor.worker.js",
  "json.worker": "monaco-editor/esm/vs/language/json/json.worker.js",
  "graphql.worker": "monaco-graphql/esm/graphql.worker.js",
};

const shared: esbuild.BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  legalComments: "none",
  target: "es2022",
  outdir: EXPLORER_BUILD_DIR,
  logLevel: "warning",
  // React's production build; Monaco and graphql check NODE_ENV too.
  define: { "process.env.NODE_ENV": '"production"' },
  // Fonts and images a stylesheet names become data: URLs, never requests elsewhere.
  loader: { ".ttf": "dataurl", ".woff": "dataurl", ".woff2": "dataurl", ".svg": "dataurl", ".png": "dataurl" },
};

export async function buildExplorer(): Promise<void> {
  await rm(EXPLORER_BUILD_DIR, { recursive: true, force: true });
  await Promise.all([
    esbuild.build({
      ...shared,
      entryPoints: { explorer: path.join(root, "explorer", "app", "main.tsx") },
      format: "esm",
      jsx: "automatic",
    }),
    esbuild.build({ ...shared, entryPoints: WORKER_ENTRIES, format: "iife" }),
  ]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  await buildExplorer();
  console.log(`explorer built into ${path.relative(process.cwd(), EXPLORER_BUILD_DIR) || "."} in ${Math.round(performance.now() - started)} ms`);
}

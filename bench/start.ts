// How long the server takes to start on the embedded database: the first
// start (a new DATA_DIR) and a restart (the same DATA_DIR again), for
// `npm start` as it is (compiled JavaScript in dist/, the database created
// from the build's template) beside a baseline measured in the same run: the
// same source run through the TypeScript loader (`node --import tsx
// src/main.ts`) on a database created from scratch (no template).
//
//   npm run bench:start
//   BENCH_ROUNDS=5   (starts of each kind; the median is printed)
//
// Time runs from the spawn of the command to the first answer of /ready,
// the moment a load balancer would send traffic. Loopback only.
import { spawn } from "node:child_process";
import { mkdtemp, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { TEMPLATE_FILE } from "../src/db/pgliteTemplate.js";
import { boundedInt } from "./support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ROUNDS = boundedInt(process.env.BENCH_ROUNDS, 5, 1, 50, "BENCH_ROUNDS");
const TIMEOUT_MS = 60_000;

interface Variant {
  label: string;
  command: string;
  args: string[];
  template: boolean;
}

const VARIANTS: Variant[] = [
  { label: "npm start (dist/, template)", command: "npm", args: ["start", "--silent"], template: true },
  { label: "baseline: tsx src/main.ts, no template", command: process.execPath, args: ["--import", "tsx", "src/main.ts"], template: false },
];

async function freePort(): Promise<number> {
  const net = await import("node:net");
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as import("node:net").AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Milliseconds from spawn to the first 200 of /ready; then stops the server. */
async function timeStart(variant: Variant, dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(variant.command, variant.args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "development", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "warn" },
    stdio: "ignore",
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    for (;;) {
      if (performance.now() - started > TIMEOUT_MS) throw new Error(`${variant.label} did not become ready in ${TIMEOUT_MS} ms`);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
      if (ready) return performance.now() - started;
      await sleep(5);
    }
  } finally {
    process.kill(-child.pid!, "SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(variant: Variant): Promise<{ first: number; restart: number }> {
  const firsts: number[] = [];
  const restarts: number[] = [];
  // The baseline must not find the template: it is moved aside for its starts.
  const aside = `${TEMPLATE_FILE}.aside`;
  if (!variant.template) await rename(TEMPLATE_FILE, aside);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const dir = await mkdtemp(path.join(os.tmpdir(), "todo-bench-start-"));
      try {
        firsts.push(await timeStart(variant, dir));
        restarts.push(await timeStart(variant, dir));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    if (!variant.template) await rename(aside, TEMPLATE_FILE);
  }
  return { first: median(firsts), restart: median(restarts) };
}

async function main(): Promise<void> {
  console.log(`start-up on the embedded database, median of ${ROUNDS} (spawn to /ready)\n`);
  const results = [];
  for (const variant of VARIANTS) results.push({ variant, ...(await measure(variant)) });
  const [ours, baseline] = results as [(typeof results)[0], (typeof results)[0]];
  console.log("| how | first start | restart |");
  console.log("|---|---:|---:|");
  for (const r of results) console.log(`| ${r.variant.label} | ${(r.first / 1000).toFixed(2)} s | ${(r.restart / 1000).toFixed(2)} s |`);
  console.log(`\nbaseline / npm start: first start ${(baseline.first / ours.first).toFixed(2)}×, restart ${(baseline.restart / ours.restart).toFixed(2)}× longer`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

// `npm run worker`: the background jobs without the API, for deployments that
// scale them apart (the API instances then run with JOBS=off). Any number of
// workers and servers share the queue. It needs PostgreSQL: the embedded
// database (PGlite) belongs to the one process that opened it, and the data
// directory's lock refuses a second one.
//
// Configured like the server (same variables; JOBS is on whatever it says),
// /metrics on METRICS_PORT when set, and stopped by SIGTERM/SIGINT within
// SHUTDOWN_TIMEOUT: running jobs finish or are handed back (queue.ts).
import { ConfigError, loadConfig } from "../config.js";
import { DataDirInUseError } from "../db/dataDirLock.js";
import { openDatabase } from "../db/database.js";
import { createMetrics } from "../http/metrics.js";
import { listenForMetrics } from "../http/metricsListener.js";
import { createLogger } from "../logger.js";
import { resolveJwtSecret } from "../modules/auth/tokens.js";
import { createEventCursors } from "../realtime/eventCursor.js";
import { createRealtime } from "../realtime/index.js";
import { shutdownOnSignals } from "../shutdownOnSignals.js";
import { startJobs } from "./index.js";

export const PGLITE_WORKER_REFUSAL =
  "npm run worker needs PostgreSQL (DATABASE_URL): the embedded database (PGlite) can be opened by one process only, and its data directory's lock refuses a second one. With the embedded database, jobs run inside the server (JOBS=on, the default).";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig({ ...process.env, JOBS: "on" });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config);
  let database;
  try {
    database = await openDatabase(config.database);
  } catch (error) {
    if (error instanceof DataDirInUseError) {
      process.stderr.write(`${PGLITE_WORKER_REFUSAL}\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  if (config.database.kind === "pglite") logger.warn(PGLITE_WORKER_REFUSAL);
  if (config.migrateOnStart) {
    const { applied } = await database.migrate();
    if (applied.length) logger.info({ applied }, "applied migrations");
  }
  const secret = await resolveJwtSecret(config);
  const realtime = await createRealtime(database.prisma, config, logger, createEventCursors(secret));
  const metrics = createMetrics();
  const jobs = await startJobs({
    database,
    realtime,
    config,
    logger,
    observers: { jobs: metrics.jobs, webhooks: metrics.webhooks },
  });
  metrics.watchQueueDepth(() => jobs.queue.depth());
  const metricsListener = config.metrics.listener
    ? await listenForMetrics(metrics, { ...config.metrics.listener, token: config.metrics.token })
    : undefined;
  logger.info({ database: database.kind, metrics: metricsListener?.url }, "worker ready");

  shutdownOnSignals(
    logger,
    config.shutdownTimeoutMs,
    async () => {
      await jobs.stop(Math.max(1000, config.shutdownTimeoutMs - 1000));
      await realtime.close();
      await database.close();
      await metricsListener?.close();
    },
    { stopping: "worker stopping", timedOut: "worker stop timed out; exiting", stopped: "worker stopped", failed: "worker stop failed" },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`Worker failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

// The background work of one process: the queue, every kind of job defined on
// it, and the periodic ones. The server runs it in process (JOBS=on, the
// default); `npm run worker` (worker.ts) runs it alone. With JOBS=off the
// queue is still opened, to send jobs (a redelivery), but nothing is run.
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { Realtime } from "../realtime/index.js";
import { defineWebhookJobs, webhookQueue, type WebhookOptions, type WebhookQueue } from "../webhooks/index.js";
import type { WebhookObserver } from "../webhooks/deliver.js";
import { createJobQueue, type JobObserver, type JobQueue } from "./queue.js";

export const PRUNE_JOB = "event-log-prune";
const PRUNE_EVERY_MS = 60 * 60 * 1000;
// A tiny retention (tests use seconds) must not turn pruning into a busy loop.
const PRUNE_MIN_EVERY_MS = 1000;

export interface Jobs {
  readonly queue: JobQueue;
  readonly webhooks: WebhookQueue;
  /** Lets running jobs finish or hands them back within budgetMs; see queue.ts. */
  stop(budgetMs: number): Promise<void>;
}

export interface JobObservers {
  jobs?: JobObserver;
  webhooks?: WebhookObserver;
}

export async function startJobs(deps: {
  database: Database;
  realtime: Realtime;
  config: Pick<Config, "jobs" | "webhooks" | "eventRetentionMs" | "eventPollIntervalMs">;
  logger: Logger;
  observers?: JobObservers;
  webhookOptions?: WebhookOptions;
}): Promise<Jobs> {
  const { database, realtime, config } = deps;
  const logger = deps.logger.child({ component: "jobs" });
  const run = config.jobs.enabled;
  const sql = database.jobSql();
  const queue = createJobQueue({
    sql,
    logger,
    pollIntervalMs: config.jobs.pollIntervalMs,
    supervise: run,
    ...(deps.observers?.jobs ? { observer: deps.observers.jobs } : {}),
  });
  const webhookWorker = run
    ? defineWebhookJobs({
        prisma: database.prisma,
        sql,
        queue,
        realtime,
        config,
        logger,
        ...(deps.observers?.webhooks ? { observer: deps.observers.webhooks } : {}),
        ...(deps.webhookOptions ? { options: deps.webhookOptions } : {}),
      })
    : undefined;
  if (run) {
    queue.every(PRUNE_JOB, Math.max(PRUNE_MIN_EVERY_MS, Math.min(PRUNE_EVERY_MS, config.eventRetentionMs)), async () => {
      const pruned = await realtime.prune();
      if (pruned > 0) logger.debug({ pruned }, "pruned the event log");
    });
  }
  await queue.start({ work: run });
  webhookWorker?.start();
  let stopped: Promise<void> | undefined;
  return {
    queue,
    webhooks: webhookQueue(queue),
    // Once, however often it is called (close() and its resources both do).
    stop: (budgetMs) =>
      (stopped ??= (async () => {
        await webhookWorker?.stop();
        await queue.stop(budgetMs);
      })()),
  };
}

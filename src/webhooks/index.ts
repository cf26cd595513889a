// Webhooks on the job queue: the delivery job, the sweep that re-queues lost
// attempts, and the dispatcher that turns the event log into deliveries.
import type { Config } from "../config.js";
import type { RawPrismaClient, SqlExecutor } from "../db/database.js";
import type { JobQueue } from "../jobs/queue.js";
import type { Logger } from "../logger.js";
import type { Realtime } from "../realtime/index.js";
import { deliverAttempt, leaseMs, overdueDeliveries, type DeliveryJob, type WebhookObserver } from "./deliver.js";
import { Dispatcher } from "./dispatcher.js";
import type { LookupFunction } from "./urlGuard.js";

export const DELIVERY_JOB = "webhook-delivery";
export const SWEEP_JOB = "webhook-sweep";
const SWEEP_EVERY_MS = 15_000;

/** What the API needs of webhooks: queue the first attempt of deliveries it made (redeliver). */
export interface WebhookQueue {
  queueDeliveries(deliveryIds: string[]): Promise<void>;
}

export interface WebhookOptions {
  /** Resolves receivers' host names (dns.lookup unless a test gives another). */
  lookup?: LookupFunction;
}

export interface WebhookWorker {
  start(): void;
  stop(): Promise<void>;
}

export function webhookQueue(queue: JobQueue): WebhookQueue {
  return {
    async queueDeliveries(deliveryIds) {
      await queue.sendMany<DeliveryJob>(DELIVERY_JOB, deliveryIds.map((deliveryId) => ({ data: { deliveryId, attempt: 1 } })));
      queue.wake(DELIVERY_JOB, deliveryIds.length);
    },
  };
}

/** Defines the webhook jobs on `queue` (before it starts); start() then follows the log. */
export function defineWebhookJobs(deps: {
  prisma: RawPrismaClient;
  sql: SqlExecutor;
  queue: JobQueue;
  realtime: Realtime;
  config: Pick<Config, "webhooks" | "jobs" | "eventPollIntervalMs">;
  logger: Logger;
  observer?: WebhookObserver;
  options?: WebhookOptions;
}): WebhookWorker {
  const { prisma, queue, realtime, config, logger } = deps;
  const enqueue = async (job: DeliveryJob, startAfter?: Date) => {
    await queue.send<DeliveryJob>(DELIVERY_JOB, job, startAfter ? { startAfter } : {});
    if (!startAfter) queue.wake(DELIVERY_JOB, 1);
  };
  queue.define<DeliveryJob>({
    name: DELIVERY_JOB,
    concurrency: config.jobs.concurrency,
    // pg-boss takes a job back once its attempt's lease could have run out.
    expireInSeconds: Math.ceil(leaseMs(config.webhooks) / 1000) + 5,
    // The job records its own failures; this only covers a crash of the job itself (the database away).
    retryLimit: 3,
    run: (job, signal) =>
      deliverAttempt(job, signal, {
        prisma,
        sql: deps.sql,
        cursors: realtime.cursors,
        logger: logger.child({ job: DELIVERY_JOB }),
        settings: config.webhooks,
        enqueue,
        ...(deps.observer ? { observer: deps.observer } : {}),
        ...(deps.options?.lookup ? { lookup: deps.options.lookup } : {}),
      }),
  });
  // A job queued normally starts within a poll interval; one not started
  // well after that, with no attempt under way, was lost.
  const graceMs = 2 * config.jobs.pollIntervalMs + 5000;
  queue.every(SWEEP_JOB, SWEEP_EVERY_MS, async () => {
    const lost = await overdueDeliveries(prisma, graceMs);
    if (lost.length === 0) return;
    logger.warn({ deliveries: lost.length }, "re-queued webhook deliveries whose job was lost");
    await queue.sendMany<DeliveryJob>(DELIVERY_JOB, lost.map((data) => ({ data })));
    queue.wake(DELIVERY_JOB);
  });

  const queueDeliveries = webhookQueue(queue).queueDeliveries;
  const dispatcher = new Dispatcher(deps.sql, queueDeliveries, logger, config.eventPollIntervalMs);
  let unfollow: (() => void) | undefined;
  return {
    start() {
      dispatcher.start();
      // The tailer moves on when more of the log is final (below the horizon): the moment to dispatch.
      unfollow = realtime.tailer.onAdvance(() => dispatcher.wake());
    },
    async stop() {
      unfollow?.();
      await dispatcher.stop();
    },
  };
}

// The background job queue: pg-boss on the product's own database, through a
// SQL executor the database module provides (PGlite's one instance, or a
// small pool of its own on PostgreSQL), so the embedded database and a real
// server run the same code. pg-boss keeps its tables in the "pgboss" schema
// and creates (and migrates) them at start.
//
// Jobs are fetched with FOR UPDATE SKIP LOCKED, so any number of workers, on
// any number of instances, share a queue without two of them holding the same
// job. A kind of job is defined once (defineJob): its name, how many run at
// once on this instance, how long one may run before pg-boss takes it back,
// and its handler with a typed payload.
//
// Periodic work (every) is a job too: each instance offers one per period,
// throttled by pg-boss's singleton slot (singletonSeconds: one job per
// name and slot, whoever inserts it first), so it runs once per period across
// all instances however many there are. pg-boss's own cron runs at most once
// a minute; event-log pruning in tests needs seconds.
//
// Stopping (stop): no new jobs are fetched; running ones get the budget to
// finish; shortly before it ends their signal aborts, so each can hand its
// work back (the webhook delivery releases its attempt unmade); whatever is
// still running at the end is failed back to the queue by pg-boss (retried).
// pg-boss's own stop does not wait for everything it started: a fetch in
// flight when it stops still returns its jobs (which then run), and it marks
// a job completed without awaiting the statement. So stop also waits, within
// the budget, until no statement of the queue and no job is in flight: the
// caller closes the database next, and a statement sent to a closed pool
// would reject where nothing catches it.
import PgBoss from "pg-boss";
import type { SqlExecutor } from "../db/database.js";
import type { Logger } from "../logger.js";
import { timerDelay } from "../timers.js";

export interface JobDefinition<Data extends object> {
  /** The queue's name, also the metrics' `kind` label. */
  name: string;
  /** Jobs of this kind this instance runs at once. */
  concurrency: number;
  /** After this long pg-boss considers a running job lost and retries it. */
  expireInSeconds: number;
  /** Retries by pg-boss of a job whose handler threw (handlers that record their own failures never throw). */
  retryLimit: number;
  run(data: Data, signal: AbortSignal): Promise<void>;
}

export interface JobObserver {
  onJobFinished(kind: string, outcome: "completed" | "failed", seconds: number): void;
}

export interface JobQueue {
  define<Data extends object>(definition: JobDefinition<Data>): void;
  /** Runs `run` once per `everyMs` across every instance with jobs on. */
  every(name: string, everyMs: number, run: () => Promise<void>): void;
  send<Data extends object>(name: string, data: Data, options?: { startAfter?: Date }): Promise<void>;
  /** Many jobs in one statement. */
  sendMany<Data extends object>(name: string, jobs: { data: Data; startAfter?: Date }[]): Promise<void>;
  /** Wakes this instance's workers of `name` now, instead of at their next poll: as many as `jobs` new jobs need. */
  wake(name: string, jobs?: number): void;
  /** Jobs waiting (created or retrying), per kind. */
  depth(): Promise<Record<string, number>>;
  /** Opens the queue; with work, runs the defined jobs too (otherwise it only sends). */
  start(options: { work: boolean }): Promise<void>;
  /** Lets running jobs finish within budgetMs, or hands them back; see the top of this file. */
  stop(budgetMs: number): Promise<void>;
}

/** How long before the end of the stop budget running jobs are asked to hand their work back. */
const HAND_BACK_MARGIN_MS = 1500;
/** The most pg-boss workers per kind; more concurrency is taken as bigger batches. */
const MAX_WORKERS_PER_KIND = 4;

export function createJobQueue(options: {
  sql: SqlExecutor;
  logger: Logger;
  pollIntervalMs: number;
  /** Runs pg-boss's maintenance (expiring lost jobs, archiving) here: on instances that run jobs. */
  supervise: boolean;
  observer?: JobObserver;
}): JobQueue {
  const { logger, observer } = options;
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    const forget = () => inFlight.delete(work);
    work.then(forget, forget);
    return work;
  };
  const boss = new PgBoss({
    // pg-boss's type says values is always given; our executor takes either.
    db: { executeSql: (text: string, values: unknown[]) => track(options.sql.executeSql(text, values)) },
    schema: "pgboss",
    // No cron: periodic work uses singleton slots (every), see above.
    schedule: false,
    supervise: options.supervise,
    // Expired jobs are noticed (and retried) within this.
    maintenanceIntervalSeconds: 30,
    archiveCompletedAfterSeconds: 3600,
    deleteAfterDays: 7,
  });
  boss.on("error", (error: unknown) => logger.warn({ err: error }, "job queue error"));

  const definitions: JobDefinition<object>[] = [];
  const periodic: { name: string; everyMs: number }[] = [];
  const workerIds = new Map<string, string[]>();
  const batchSizes = new Map<string, number>();
  const timers: NodeJS.Timeout[] = [];
  const handBack = new AbortController();
  let started = false;

  const runOne = async (definition: JobDefinition<object>, job: PgBoss.Job<object>) => {
    const begun = performance.now();
    try {
      await definition.run(job.data, handBack.signal);
      observer?.onJobFinished(definition.name, "completed", (performance.now() - begun) / 1000);
    } catch (error) {
      observer?.onJobFinished(definition.name, "failed", (performance.now() - begun) / 1000);
      logger.warn({ err: error, kind: definition.name, jobId: job.id }, "job failed");
      throw error;
    }
  };

  const offerPeriodic = async (name: string, everyMs: number) => {
    const slotSeconds = Math.max(1, Math.round(everyMs / 1000));
    await boss.send(name, {}, { singletonKey: name, singletonSeconds: slotSeconds, retryLimit: 0 });
  };

  /** Waits until no statement and no job of the queue is in flight, or the deadline passes. */
  const settle = async (deadline: number) => {
    while (inFlight.size > 0) {
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) {
        logger.warn({ inFlight: inFlight.size }, "job queue stopped with statements or jobs still in flight");
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const timeUp = new Promise((resolve) => (timer = setTimeout(resolve, timerDelay(remainingMs))));
      await Promise.race([Promise.allSettled([...inFlight]), timeUp]);
      clearTimeout(timer);
      // What the settled work starts next (pg-boss's worker runs the jobs a
      // fetch returned; it completes a job whose handler returned) begins in
      // the promise continuations, before this macrotask.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  const queue: JobQueue = {
    define(definition) {
      if (started) throw new Error(`Job ${definition.name} defined after start.`);
      definitions.push(definition as unknown as JobDefinition<object>);
    },
    every(name, everyMs, run) {
      queue.define({ name, concurrency: 1, expireInSeconds: 15 * 60, retryLimit: 0, run: () => run() });
      periodic.push({ name, everyMs });
    },
    async send(name, data, sendOptions = {}) {
      await boss.send(name, data, sendOptions.startAfter ? { startAfter: sendOptions.startAfter } : {});
    },
    async sendMany(name, jobs) {
      if (jobs.length === 0) return;
      await boss.insert(jobs.map((job) => ({ name, data: job.data, ...(job.startAfter ? { startAfter: job.startAfter } : {}) })));
    },
    wake(name, jobs = Infinity) {
      // Each woken worker fetches a batch; more would only find nothing.
      const batch = batchSizes.get(name) ?? 1;
      const ids = workerIds.get(name) ?? [];
      for (const id of ids.slice(0, Math.ceil(jobs / batch))) boss.notifyWorker(id);
    },
    async depth() {
      const sizes: Record<string, number> = {};
      for (const definition of definitions) sizes[definition.name] = await boss.getQueueSize(definition.name);
      return sizes;
    },
    async start({ work }) {
      started = true;
      await boss.start();
      if (!work) return;
      for (const definition of definitions) {
        await boss.createQueue(definition.name, {
          name: definition.name,
          retryLimit: definition.retryLimit,
          retryDelay: 1,
          expireInSeconds: definition.expireInSeconds,
        });
      }
      for (const definition of definitions) {
        const workers = Math.min(definition.concurrency, MAX_WORKERS_PER_KIND);
        const batchSize = Math.ceil(definition.concurrency / workers);
        batchSizes.set(definition.name, batchSize);
        const ids: string[] = [];
        for (let i = 0; i < workers; i++) {
          let workerId: string | undefined;
          workerId = await boss.work<object>(
            definition.name,
            { batchSize, pollingIntervalSeconds: options.pollIntervalMs / 1000 },
            (jobs) =>
              track(
                (async () => {
                  // pg-boss waits out the rest of the poll interval after a batch;
                  // a worker that found jobs asks again at once instead (it waits
                  // only once the queue has nothing for it).
                  if (workerId) boss.notifyWorker(workerId);
                  // One failure fails only its own job: the others are completed.
                  const results = await Promise.allSettled(jobs.map((job) => runOne(definition, job)));
                  const failed = results.flatMap((result, index) => (result.status === "rejected" ? [jobs[index]!.id] : []));
                  if (failed.length === jobs.length && failed.length > 0) throw (results[0] as PromiseRejectedResult).reason;
                  if (failed.length > 0) await boss.fail(definition.name, failed);
                })(),
              ),
          );
          ids.push(workerId);
        }
        workerIds.set(definition.name, ids);
      }
      for (const { name, everyMs } of periodic) {
        const offer = () => offerPeriodic(name, everyMs).catch((error: unknown) => logger.warn({ err: error, kind: name }, "could not schedule job"));
        await offer();
        const timer = setInterval(offer, timerDelay(everyMs));
        timer.unref();
        timers.push(timer);
      }
    },
    async stop(budgetMs) {
      for (const timer of timers) clearInterval(timer);
      if (!started) return;
      const deadline = performance.now() + budgetMs;
      const handBackTimer = setTimeout(() => handBack.abort(), timerDelay(Math.max(0, budgetMs - HAND_BACK_MARGIN_MS)));
      handBackTimer.unref();
      try {
        await boss.stop({ graceful: true, wait: true, close: false, timeout: Math.max(1000, budgetMs - 500) });
        await settle(deadline);
      } finally {
        clearTimeout(handBackTimer);
      }
    },
  };
  return queue;
}

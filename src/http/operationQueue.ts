// Overload: at most GRAPHQL_MAX_CONCURRENT_OPERATIONS HTTP requests to
// /graphql execute at once on this instance; the rest wait in arrival order,
// up to GRAPHQL_MAX_QUEUED_OPERATIONS, and are served as others finish. So,
// under a burst, latency grows by queueing while the memory of requests in
// execution (their rows, loaders and responses) stays bounded, instead of
// every request being started at once and the heap growing with the burst. A
// request beyond the queue is refused at once with 503 SERVICE_UNAVAILABLE
// and Retry-After; nothing of it ran. A waiting client that goes away leaves
// the queue. WebSocket operations are not queued here (their number is bounded
// by the connection and subscription caps).
import type { RequestHandler } from "express";

export interface OperationQueueSettings {
  maxConcurrent: number;
  maxQueued: number;
}

export interface OperationQueue {
  middleware: RequestHandler;
  /** Requests executing now and waiting now, for tests and metrics. */
  state(): { executing: number; queued: number };
  /**
   * Resolves at once when no request is executing, else when the last one
   * finishes or after `maxWaitMs`, whichever is first. Background work that
   * holds the event loop (the realtime fan-out) waits on it between slices,
   * so that a request's statements and the database's CPU are not shared
   * with it (src/realtime/multiplex.ts).
   */
  settled(maxWaitMs: number): Promise<void>;
}

const RETRY_AFTER_SECONDS = 1;

export function createOperationQueue(settings: OperationQueueSettings): OperationQueue {
  let executing = 0;
  let queued = 0;
  // Waiters of settled(), released together when executing drops to 0.
  let whenSettled: (() => void)[] = [];
  // Waiting requests in arrival order; one whose client left is skipped when reached.
  const waiting: { start(): void; left: boolean }[] = [];

  const startNext = () => {
    while (executing < settings.maxConcurrent && waiting.length > 0) {
      const next = waiting.shift()!;
      if (next.left) continue;
      queued -= 1;
      next.start();
    }
  };

  const middleware: RequestHandler = (_req, res, next) => {
    const run = () => {
      executing += 1;
      // 'close' follows the end of the response, or the loss of the connection: either frees the slot.
      res.once("close", () => {
        executing -= 1;
        startNext();
        if (executing === 0 && whenSettled.length > 0) {
          const released = whenSettled;
          whenSettled = [];
          for (const release of released) release();
        }
      });
      next();
    };
    if (executing < settings.maxConcurrent) {
      run();
      return;
    }
    if (queued >= settings.maxQueued) {
      res.setHeader("retry-after", String(RETRY_AFTER_SECONDS));
      res.status(503).json({
        errors: [{ message: "The server is at capacity; try again shortly.", extensions: { code: "SERVICE_UNAVAILABLE" } }],
      });
      return;
    }
    let started = false;
    const entry = {
      start: () => {
        started = true;
        run();
      },
      left: false,
    };
    waiting.push(entry);
    queued += 1;
    res.once("close", () => {
      if (started || entry.left) return;
      entry.left = true;
      queued -= 1;
    });
  };

  const settled = (maxWaitMs: number) =>
    executing === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(release, maxWaitMs);
          function release() {
            clearTimeout(timer);
            whenSettled = whenSettled.filter((waiter) => waiter !== release);
            resolve();
          }
          whenSettled.push(release);
        });

  return { middleware, state: () => ({ executing, queued }), settled };
}

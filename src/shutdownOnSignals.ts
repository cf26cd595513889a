// How a process of this project stops (the server, src/main.ts, and the job
// worker, src/jobs/worker.ts): on SIGTERM or SIGINT it runs `stop` once and
// exits 0 when that succeeds, 1 when it fails, and 1 in any case once
// SHUTDOWN_TIMEOUT has passed, whatever is still running.
import type { Logger } from "./logger.js";
import { timerDelay } from "./timers.js";

export interface ShutdownMessages {
  stopping: string;
  timedOut: string;
  stopped: string;
  failed: string;
}

export function shutdownOnSignals(logger: Logger, timeoutMs: number, stop: () => Promise<void>, messages: ShutdownMessages): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const signalledAt = performance.now();
    logger.info({ signal }, messages.stopping);
    // Whatever happens, the process ends within the configured timeout.
    setTimeout(() => {
      logger.error(messages.timedOut);
      process.exit(1);
    }, timerDelay(timeoutMs)).unref();
    stop().then(
      () => {
        logger.info({ durationMs: Math.round(performance.now() - signalledAt) }, messages.stopped);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, messages.failed);
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a listener must stay registered, or a loader such as tsx
  // sees none left and re-raises the signal, killing the process mid-drain.
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

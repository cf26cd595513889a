// Process entry point: configuration, start-up, and graceful shutdown only.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { startServer } from "./server.js";
import { timerDelay } from "./timers.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config);
  const started = performance.now();
  const server = await startServer(config, { logger });
  logger.info(
    { url: server.url, database: server.database.kind, startupMs: Math.round(performance.now() - started) },
    `server ready at ${server.url}`,
  );

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    const signalledAt = performance.now();
    logger.info({ signal }, "shutting down");
    // Whatever happens, the process ends within the configured timeout.
    setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, timerDelay(config.shutdownTimeoutMs)).unref();
    server.close().then(
      () => {
        logger.info({ durationMs: Math.round(performance.now() - signalledAt) }, "shutdown complete");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a listener must stay registered, or a loader such as tsx
  // sees none left and re-raises the signal, killing the process mid-drain.
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

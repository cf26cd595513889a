// Process entry point: configuration, start-up, and graceful shutdown only.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { startServer } from "./server.js";
import { shutdownOnSignals } from "./shutdownOnSignals.js";

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

  shutdownOnSignals(logger, config.shutdownTimeoutMs, () => server.close(), {
    stopping: "shutting down",
    timedOut: "shutdown timed out; exiting",
    stopped: "shutdown complete",
    failed: "shutdown failed",
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

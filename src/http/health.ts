import { Router } from "express";
import type { Database } from "../db/database.js";
import { isDatabaseUnavailable } from "../db/prismaErrors.js";

const READINESS_TIMEOUT_MS = 2000;

class ReadinessTimeout extends Error {}

/**
 * /health: the process is up. /ready: it can take traffic now: it is not
 * shutting down, and it can reach its database. A load balancer that reads
 * /ready stops sending requests as soon as a stop begins, while the requests
 * it already sent are still served.
 */
export function healthRoutes(database: Pick<Database, "ping">, isShuttingDown: () => boolean): Router {
  const router = Router();
  router.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/ready", async (_req, res) => {
    if (isShuttingDown()) {
      res.status(503).json({ status: "unavailable", reason: "shutting down" });
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        database.ping(),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new ReadinessTimeout()), READINESS_TIMEOUT_MS);
        }),
      ]);
      res.json({ status: "ready" });
    } catch (error) {
      res.status(503).json({ status: "unavailable", reason: `database: ${reasonOf(error)}` });
    } finally {
      clearTimeout(timer);
    }
  });
  return router;
}

// A short, fixed phrase: driver messages can be empty, span lines, or name
// hosts and ports that a readiness probe's audience need not see.
function reasonOf(error: unknown): string {
  if (error instanceof ReadinessTimeout) return "did not answer in time";
  if (isDatabaseUnavailable(error)) return "cannot be reached";
  return "query failed";
}

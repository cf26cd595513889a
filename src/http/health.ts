import { Router } from "express";
import type { Database } from "../db/database.js";

const READINESS_TIMEOUT_MS = 2000;

/** /health: the process is up. /ready: it can reach its database now. */
export function healthRoutes(database: Pick<Database, "ping">): Router {
  const router = Router();
  router.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/ready", async (_req, res) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        database.ping(),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error("database did not answer in time")), READINESS_TIMEOUT_MS);
        }),
      ]);
      res.json({ status: "ready" });
    } catch (error) {
      res.status(503).json({ status: "unavailable", reason: `database: ${(error as Error).message.split("\n")[0]}` });
    } finally {
      clearTimeout(timer);
    }
  });
  return router;
}

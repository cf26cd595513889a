// The job queue's stop and what its caller does next: close the database.
// A worker's fetch in flight when the queue stops still returns its jobs; stop
// resolves only once those have run and been recorded, so no statement of the
// queue reaches the database after it (on a closed pool one would reject
// where nothing catches it, and the process would exit 1).
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type SqlExecutor } from "../../src/db/database.js";
import { createJobQueue } from "../../src/jobs/queue.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The database's job executor, with pg-boss's fetches held at a gate and every statement after `closed` recorded. */
function gatedExecutor(inner: SqlExecutor) {
  let gate: Promise<void> | undefined;
  let openGate = () => {};
  let heldFetches = 0;
  let closed = false;
  const afterClose: string[] = [];
  const executor: SqlExecutor = {
    async executeSql(text, values) {
      if (closed) afterClose.push(text);
      if (gate && /SKIP LOCKED/i.test(text)) {
        heldFetches++;
        await gate;
      }
      return inner.executeSql(text, values);
    },
  };
  return {
    executor,
    holdFetches: () => (gate = new Promise<void>((resolve) => (openGate = resolve))),
    releaseFetches: () => {
      gate = undefined;
      openGate();
    },
    heldFetches: () => heldFetches,
    close: () => (closed = true),
    afterClose,
  };
}

describe("stopping the job queue", () => {
  it("waits for the jobs a fetch in flight returns, and sends nothing once it has resolved", async () => {
    database = await createTestDatabase();
    const opened = await openDatabase(database.config);
    try {
      const gated = gatedExecutor(opened.jobSql());
      const logger = createLogger({ logLevel: "silent" });
      const queue = createJobQueue({ sql: gated.executor, logger, pollIntervalMs: 500, supervise: false });
      const ran: string[] = [];
      queue.define<{ label: string }>({
        name: "probe",
        concurrency: 1,
        expireInSeconds: 60,
        retryLimit: 0,
        run: async ({ label }) => {
          await sleep(200);
          ran.push(label);
        },
      });
      await queue.start({ work: true });

      // The worker's next fetch waits at the gate with the job already queued.
      gated.holdFetches();
      const deadline = Date.now() + 10_000;
      while (gated.heldFetches() === 0) {
        if (Date.now() > deadline) throw new Error("the worker never fetched");
        await sleep(20);
      }
      await queue.send("probe", { label: "fetched while stopping" });

      const stopping = queue.stop(8000);
      await sleep(300);
      gated.releaseFetches();
      await stopping;
      gated.close();

      expect(ran).toEqual(["fetched while stopping"]);
      const { rows } = await opened.jobSql().executeSql("SELECT state FROM pgboss.job WHERE name = $1", ["probe"]);
      expect(rows).toEqual([{ state: "completed" }]);
      await sleep(500);
      expect(gated.afterClose).toEqual([]);
    } finally {
      await opened.close();
    }
  }, 30_000);
});

// Follows the event log and creates one delivery per (event, active webhook
// that may deliver it), with a durable cursor: its place in the log is a row
// of its own (WebhookDispatchCursor), moved in the same statement (so the
// same transaction) that creates the deliveries for what it passed. A crash before the commit leaves
// cursor and deliveries as they were; after it, both have moved. So no event
// is skipped or handed out twice across restarts, and the unique index on
// (webhook, event) makes a second pass over the same rows harmless anyway.
//
// Like the tailer (src/realtime/tailer.ts) it only passes rows below the
// horizon (eventLog.ts), reading the horizon before the rows, and looks again
// soon when a committed row waits above it. The tailer tells it when more of
// the log has become final (onAdvance), without reading rows for it. Several
// instances may run it: the cursor row is taken FOR UPDATE SKIP LOCKED, so
// one dispatches at a time and the others skip that round.
//
// The jobs for new deliveries are queued after the commit; a crash in between
// leaves deliveries PENDING without a job, which the sweep (deliver.ts) finds.
import type { SqlExecutor } from "../db/database.js";
import type { Logger } from "../logger.js";
import { recurringFailure, type RecurringFailure } from "../recurringFailure.js";
import { HORIZON_SQL } from "../realtime/eventLog.js";
import { HeldRetry } from "../realtime/heldRetry.js";
import { timerDelay } from "../timers.js";

const BATCH = 500;
// Rounds start at least this far apart: at a hundred events a second, rounds
// of a few events each instead of one round (two statements) per event, for
// at most this much more lag.
const ROUND_GAP_MS = 50;
const ROUND_DELAY_MS = 10;

export interface DispatchRound {
  /** Deliveries created, to be queued. */
  deliveryIds: string[];
  /** More rows below the horizon wait: run again at once. */
  more: boolean;
  /** A committed row waits above the horizon (an older transaction still runs): look again soon. */
  held: boolean;
}

// One round in one statement (so in one transaction): take the cursor row
// (skipped when another instance holds it), read the rows after it in log
// order below the horizon ($1), create their deliveries, move the cursor.
// A webhook gets the events written after it was made, and never one of a
// private list of someone else than its creator (at the change): not even a
// delivery row, which would show that something happened there; what becomes
// unreadable later is decided at delivery time (payload.ts). A full batch
// stops the cursor at its last row; otherwise everything below the horizon
// has been passed (eventLog.ts: belowHorizon, laterOf).
const DISPATCH_ROUND = `
  WITH cursor AS (
    SELECT txid, "eventId" FROM "WebhookDispatchCursor" WHERE id = 1 FOR UPDATE SKIP LOCKED
  ), next AS (
    -- A row comparison against values computed once: an index range scan on (txid, id).
    SELECT e.id, e.txid, e."spaceId", e."listOwnerId", e."listPrivate", e."createdAt"
      FROM "Event" e
     WHERE (e.txid, e.id) > ((SELECT txid FROM cursor), (SELECT "eventId" FROM cursor))
     ORDER BY e.txid, e.id
     LIMIT ${BATCH + 1}
  ), final AS (
    SELECT * FROM next WHERE txid < $1::bigint ORDER BY txid, id LIMIT ${BATCH}
  ), inserted AS (
    INSERT INTO "WebhookDelivery" (id, "webhookId", "eventId", "eventAt")
    SELECT replace(gen_random_uuid()::text, '-', ''), w.id, f.id, f."createdAt"
      FROM final f
      JOIN "Webhook" w ON w."spaceId" = f."spaceId" AND w.active
     WHERE f."createdAt" >= w."createdAt" AND NOT (f."listPrivate" AND f."listOwnerId" <> w."createdById")
    ON CONFLICT DO NOTHING
    RETURNING id
  ), last AS (
    SELECT txid, id FROM final ORDER BY txid DESC, id DESC LIMIT 1
  ), reached AS (
    SELECT CASE WHEN n.passed = ${BATCH} THEN l.txid
                WHEN c.txid > $1::bigint OR (c.txid = $1::bigint AND c."eventId" > -1) THEN c.txid
                ELSE $1::bigint END AS txid,
           CASE WHEN n.passed = ${BATCH} THEN l.id
                WHEN c.txid > $1::bigint OR (c.txid = $1::bigint AND c."eventId" > -1) THEN c."eventId"
                ELSE -1 END AS id
      FROM cursor c CROSS JOIN (SELECT count(*) AS passed FROM final) n LEFT JOIN last l ON true
  ), moved AS (
    UPDATE "WebhookDispatchCursor" d SET txid = r.txid, "eventId" = r.id, "updatedAt" = now()
      FROM reached r WHERE d.id = 1
    RETURNING d.id
  )
  SELECT (SELECT count(*) FROM final)::int AS passed,
         (SELECT count(*) FROM next WHERE txid >= $1::bigint)::int AS held,
         (SELECT string_agg(id, ',') FROM inserted) AS ids,
         (SELECT count(*) FROM moved)::int AS moved`;

/** One round: the next rows after the cursor, their deliveries, the cursor moved. */
export async function dispatchOnce(sql: SqlExecutor): Promise<DispatchRound> {
  // Plain SQL on the queue's connection: a round runs every few events, and
  // Prisma compiles every query it is given on the event loop (TOOLCHAIN.md),
  // where the subscriptions' delivery checks wait. The horizon first, then
  // the rows it bounds.
  const [horizonRow] = (await sql.executeSql(HORIZON_SQL)).rows as { horizon: string }[];
  const [round] = (await sql.executeSql(DISPATCH_ROUND, [horizonRow!.horizon])).rows as {
    passed: number;
    held: number;
    ids: string | null;
  }[];
  return {
    deliveryIds: round?.ids ? round.ids.split(",") : [],
    more: Number(round?.passed ?? 0) === BATCH,
    held: Number(round?.held ?? 0) > 0,
  };
}

/**
 * Runs dispatch rounds whenever woken (the log has grown) and every
 * `pollIntervalMs`, one at a time, handing new deliveries to `enqueue`.
 */
export class Dispatcher {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private readonly heldRetry: HeldRetry;
  private lastStart = -Infinity;
  private readonly failures: RecurringFailure;

  constructor(
    private readonly sql: SqlExecutor,
    private readonly enqueue: (deliveryIds: string[]) => Promise<void>,
    logger: Logger,
    private readonly pollIntervalMs: number,
  ) {
    this.failures = recurringFailure(logger, "webhook dispatch");
    this.heldRetry = new HeldRetry(pollIntervalMs, () => this.wake());
  }

  start(): void {
    this.timer = setInterval(() => this.wake(), timerDelay(this.pollIntervalMs));
    this.timer.unref();
    this.wake();
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running || this.soon) {
      this.again = true;
      return;
    }
    // Never at once: the wake-up comes as the tailer hands the same events
    // to subscriptions, whose delivery checks (reads of rows that may change
    // any moment) go first. And rounds start ROUND_GAP_MS apart at most:
    // wake-ups in between wait for the next one, which takes all their events.
    const wait = Math.max(ROUND_DELAY_MS, this.lastStart + ROUND_GAP_MS - performance.now());
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.runRound();
    }, wait);
  }

  private runRound(): void {
    if (this.stopped) return;
    this.lastStart = performance.now();
    this.again = false;
    this.running = this.drain()
      .then(
        () => this.failures.recovered(),
        (error: unknown) => this.failures.failed(error),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) this.wake();
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const round = await dispatchOnce(this.sql);
      if (round.deliveryIds.length > 0) await this.enqueue(round.deliveryIds);
      if (round.held) this.heldRetry.schedule();
      else this.heldRetry.reset();
      if (!round.more || this.stopped) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.heldRetry.stop();
    await this.running;
  }
}

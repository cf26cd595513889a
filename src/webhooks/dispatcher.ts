// Follows the event log and creates one delivery per (event, active webhook
// that may deliver it), with a durable cursor: its place in the log is a row
// of its own (WebhookDispatchCursor), moved in the same transaction that
// creates the deliveries for what it passed. A crash before the commit leaves
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
import type { RawPrismaClient } from "../db/database.js";
import type { Logger } from "../logger.js";
import { recurringFailure, type RecurringFailure } from "../recurringFailure.js";
import { randomUUID } from "node:crypto";
import { belowHorizon, laterOf, readHorizon, type LogPosition } from "../realtime/eventLog.js";
import { timerDelay } from "../timers.js";

const BATCH = 500;
// Rounds start at least this far apart: at a hundred events a second, rounds
// of a few events each instead of one round (seven statements) per event,
// for at most this much more lag.
const ROUND_GAP_MS = 50;
/** The first look again at rows held above the horizon; doubles up to the poll interval. */
const HELD_RETRY_MIN_MS = 5;

export interface DispatchRound {
  /** Deliveries created, to be queued. */
  deliveryIds: string[];
  /** More rows below the horizon wait: run again at once. */
  more: boolean;
  /** A committed row waits above the horizon (an older transaction still runs): look again soon. */
  held: boolean;
}

/** Random, like the cuids Prisma makes elsewhere, and within the ids the API accepts (letters and digits). */
const deliveryId = () => randomUUID().replaceAll("-", "");

interface EventRow {
  id: bigint;
  txid: bigint;
  spaceId: string;
  listOwnerId: string;
  listPrivate: boolean;
  createdAt: Date;
}

/** One round: the next rows after the cursor, their deliveries, the cursor moved; in one transaction. */
export async function dispatchOnce(prisma: RawPrismaClient): Promise<DispatchRound> {
  const horizon = await readHorizon(prisma);
  // Plain SQL: a round runs for every few events, and Prisma would compile
  // each of its queries on the event loop every time (TOOLCHAIN.md).
  return prisma.$transaction(async (tx) => {
    const [cursor] = await tx.$queryRaw<{ txid: bigint; eventId: bigint }[]>`
      SELECT txid, "eventId" FROM "WebhookDispatchCursor" WHERE id = 1 FOR UPDATE SKIP LOCKED`;
    // Another instance is dispatching.
    if (!cursor) return { deliveryIds: [], more: false, held: false };
    const position: LogPosition = { txid: BigInt(cursor.txid), id: BigInt(cursor.eventId) };
    // The rows after the cursor in log order, and one more: is a row held above the horizon?
    const next = await tx.$queryRaw<EventRow[]>`
      SELECT id, txid, "spaceId", "listOwnerId", "listPrivate", "createdAt" FROM "Event"
       WHERE txid > ${position.txid} OR (txid = ${position.txid} AND id > ${position.id})
       ORDER BY txid, id LIMIT ${BATCH + 1}`;
    const final = next.filter((row) => BigInt(row.txid) < horizon);
    const held = final.length < next.length;
    const rows = final.slice(0, BATCH);
    const spaceIds = [...new Set(rows.map((row) => row.spaceId))];
    const webhooks =
      spaceIds.length === 0
        ? []
        : await tx.$queryRaw<{ id: string; spaceId: string; createdById: string; createdAt: Date }[]>`
            SELECT id, "spaceId", "createdById", "createdAt" FROM "Webhook"
             WHERE active AND "spaceId" = ANY(${spaceIds}::text[])`;
    const deliveries: { webhookId: string; eventId: bigint; eventAt: Date }[] = [];
    for (const row of rows) {
      for (const webhook of webhooks) {
        if (webhook.spaceId !== row.spaceId) continue;
        // A webhook receives the events written after it was made.
        if (row.createdAt < webhook.createdAt) continue;
        // Never readable by the creator (a private list of someone else, at
        // the change): not even a delivery row, which would show that
        // something happened there. What becomes unreadable later is
        // decided at delivery time (payload.ts).
        if (row.listPrivate && row.listOwnerId !== webhook.createdById) continue;
        deliveries.push({ webhookId: webhook.id, eventId: BigInt(row.id), eventAt: row.createdAt });
      }
    }
    const created =
      deliveries.length === 0
        ? []
        : await tx.$queryRaw<{ id: string }[]>`
            INSERT INTO "WebhookDelivery" (id, "webhookId", "eventId", "eventAt")
            SELECT * FROM unnest(
              ${deliveries.map(() => deliveryId())}::text[], ${deliveries.map((d) => d.webhookId)}::text[],
              ${deliveries.map((d) => String(d.eventId))}::bigint[], ${deliveries.map((d) => d.eventAt.toISOString())}::timestamptz[])
            ON CONFLICT DO NOTHING
            RETURNING id`;
    const more = final.length > BATCH;
    const last = rows.at(-1);
    const lastPosition = last ? { txid: BigInt(last.txid), id: BigInt(last.id) } : position;
    // A full batch stops at its last row; otherwise everything below the horizon has been passed.
    const reached = more ? lastPosition : laterOf(lastPosition, belowHorizon(horizon));
    await tx.$executeRaw`
      UPDATE "WebhookDispatchCursor" SET txid = ${reached.txid}, "eventId" = ${reached.id}, "updatedAt" = now() WHERE id = 1`;
    return { deliveryIds: created.map((row) => row.id), more, held };
  });
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
  private heldTimer: NodeJS.Timeout | undefined;
  private heldRetryMs = HELD_RETRY_MIN_MS;
  private lastStart = -Infinity;
  private readonly failures: RecurringFailure;

  constructor(
    private readonly prisma: RawPrismaClient,
    private readonly enqueue: (deliveryIds: string[]) => Promise<void>,
    logger: Logger,
    private readonly pollIntervalMs: number,
  ) {
    this.failures = recurringFailure(logger, "webhook dispatch");
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
    // Rounds start ROUND_GAP_MS apart at most: wake-ups in between wait for
    // the next one, which takes all their events at once.
    const wait = this.lastStart + ROUND_GAP_MS - performance.now();
    if (wait > 0) {
      this.soon = setTimeout(() => {
        this.soon = undefined;
        this.wake();
      }, wait);
      return;
    }
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
      const round = await dispatchOnce(this.prisma);
      if (round.deliveryIds.length > 0) await this.enqueue(round.deliveryIds);
      if (round.held) this.lookAgainSoon();
      else this.heldRetryMs = HELD_RETRY_MIN_MS;
      if (!round.more || this.stopped) return;
    }
  }

  /** As the tailer does: the older transaction may write no event, so nobody would say when it ends. */
  private lookAgainSoon(): void {
    if (this.heldTimer || this.stopped) return;
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined;
      this.wake();
    }, timerDelay(this.heldRetryMs));
    this.heldTimer.unref();
    this.heldRetryMs = Math.min(this.heldRetryMs * 2, this.pollIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    if (this.heldTimer) clearTimeout(this.heldTimer);
    await this.running;
  }
}

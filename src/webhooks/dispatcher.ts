// Follows the event log and creates one delivery per (event, active webhook
// that may deliver it), with a durable cursor: its place in the log is a row
// of its own (WebhookDispatchCursor), moved in the same transaction that
// creates the deliveries for what it passed. A crash before the commit leaves
// cursor and deliveries as they were; after it, both have moved. So no event
// is skipped or handed out twice across restarts, and the unique index on
// (webhook, event) makes a second pass over the same rows harmless anyway.
//
// Like the tailer (src/realtime/tailer.ts) it only passes rows below the
// horizon (eventLog.ts), reading the horizon before the rows. Several
// instances may run it: the cursor row is taken FOR UPDATE SKIP LOCKED, so
// one dispatches at a time and the others skip that round.
//
// The jobs for new deliveries are queued after the commit; a crash in between
// leaves deliveries PENDING without a job, which the sweep (deliver.ts) finds.
import type { RawPrismaClient } from "../db/database.js";
import type { Logger } from "../logger.js";
import { recurringFailure, type RecurringFailure } from "../recurringFailure.js";
import { afterPosition, belowHorizon, laterOf, LOG_ORDER, positionOf, readHorizon, type LogPosition } from "../realtime/eventLog.js";
import { timerDelay } from "../timers.js";

const BATCH = 500;
// Wake-ups that come while a round runs are served by one more round this
// much later: at a hundred events a second, rounds of a few events each
// instead of one round (eight statements) per event.
const ROUND_GAP_MS = 20;

export interface DispatchRound {
  /** Deliveries created, to be queued. */
  deliveryIds: string[];
  /** More rows below the horizon wait: run again at once. */
  more: boolean;
}

/** One round: the next rows after the cursor, their deliveries, the cursor moved; in one transaction. */
export async function dispatchOnce(prisma: RawPrismaClient): Promise<DispatchRound> {
  const horizon = await readHorizon(prisma);
  return prisma.$transaction(async (tx) => {
    const [cursor] = await tx.$queryRaw<{ txid: bigint; eventId: bigint }[]>`
      SELECT txid, "eventId" FROM "WebhookDispatchCursor" WHERE id = 1 FOR UPDATE SKIP LOCKED`;
    // Another instance is dispatching.
    if (!cursor) return { deliveryIds: [], more: false };
    const position: LogPosition = { txid: BigInt(cursor.txid), id: BigInt(cursor.eventId) };
    const rows = await tx.event.findMany({
      where: { AND: [afterPosition(position), { txid: { lt: horizon } }] },
      orderBy: LOG_ORDER,
      take: BATCH,
    });
    const spaceIds = [...new Set(rows.map((row) => row.spaceId))];
    const webhooks =
      spaceIds.length === 0
        ? []
        : await tx.webhook.findMany({
            where: { spaceId: { in: spaceIds }, active: true },
            select: { id: true, spaceId: true, createdById: true, createdAt: true },
          });
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
        deliveries.push({ webhookId: webhook.id, eventId: row.id, eventAt: row.createdAt });
      }
    }
    const created =
      deliveries.length === 0
        ? []
        : await tx.webhookDelivery.createManyAndReturn({ data: deliveries, skipDuplicates: true, select: { id: true } });
    const more = rows.length === BATCH;
    const last = rows.at(-1);
    // A full batch stops at its last row; otherwise everything below the horizon has been passed.
    const reached = more && last ? positionOf(last) : laterOf(last ? positionOf(last) : position, belowHorizon(horizon));
    await tx.webhookDispatchCursor.update({ where: { id: 1 }, data: { txid: reached.txid, eventId: reached.id } });
    return { deliveryIds: created.map((row) => row.id), more };
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
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(
        () => this.failures.recovered(),
        (error: unknown) => this.failures.failed(error),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.soon && !this.stopped) {
          this.again = false;
          this.soon = setTimeout(() => {
            this.soon = undefined;
            this.wake();
          }, ROUND_GAP_MS);
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const round = await dispatchOnce(this.prisma);
      if (round.deliveryIds.length > 0) await this.enqueue(round.deliveryIds);
      if (!round.more || this.stopped) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    await this.running;
  }
}

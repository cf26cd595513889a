// The delivery job: one attempt of one delivery (docs/api/WEBHOOKS.md,
// "Delivery"). Its payload names the delivery and the attempt it is for.
//
// An attempt is claimed before it is made: a conditional UPDATE gives it a
// lease (a token and a time) only if the delivery is still PENDING, has made
// exactly attempt-1 attempts, is due, and holds no live lease. So two jobs for
// the same attempt (a job queued again by the sweep after a crash, or by two
// instances) never both make it, and every later write of the attempt is
// conditional on the token: an attempt whose lease ran out (its process
// stalled) cannot overwrite the one that took over. A process killed
// mid-attempt leaves a lease that runs out; the sweep then queues the attempt
// again, and the receiver may see it twice, with the same webhook-id and the
// same body (at least once).
//
// The body is built at the first attempt and stored; every later attempt
// sends it unchanged (one webhook-id, one content), after checking again that
// the creator is still an admin and may still read the event.
import { randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import type { RawPrismaClient } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { EventCursors } from "../realtime/eventCursor.js";
import { toChangeEvent } from "../realtime/eventLog.js";
import { buildPayload } from "./payload.js";
import { describeStatus, postWebhook, type AttemptResult } from "./send.js";
import { signedHeaders } from "./signing.js";
import type { LookupFunction } from "./urlGuard.js";

export interface DeliveryJob {
  deliveryId: string;
  /** The attempt this job makes: 1 for the first. */
  attempt: number;
}

export interface WebhookObserver {
  /** One per attempt made: succeeded (2xx) or failed. */
  onAttempt(outcome: "succeeded" | "failed"): void;
  /** A delivery reached its end: succeeded, failed (no more attempts), or dropped (not readable by the creator). */
  onDeliveryEnded(outcome: "succeeded" | "failed" | "dropped"): void;
  /** From the event's commit to the 2xx. */
  onDelivered(lagSeconds: number): void;
}

export interface DeliveryDeps {
  prisma: RawPrismaClient;
  cursors: EventCursors;
  logger: Logger;
  settings: Config["webhooks"];
  /** Queues the job for a later attempt (or the same one again). */
  enqueue(job: DeliveryJob, startAfter?: Date): Promise<void>;
  observer?: WebhookObserver;
  lookup?: LookupFunction;
}

/** A lease outlives the attempt's deadline by this much: time to record the outcome. */
const LEASE_MARGIN_MS = 5000;
/** A job may start this much before nextAttemptAt (clocks of the queue and the check are the database's own). */
const EARLY_TOLERANCE_MS = 1000;
const JITTER = 0.2;

export const leaseMs = (settings: Config["webhooks"]) => settings.timeoutMs + LEASE_MARGIN_MS;

/** The delay before attempt `made + 1`, after `made` failed attempts, with ±20% jitter. */
export function retryDelayMs(schedule: number[], made: number, random = Math.random): number {
  const base = schedule[Math.min(made, schedule.length) - 1] ?? schedule.at(-1) ?? 0;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

export async function deliverAttempt(job: DeliveryJob, signal: AbortSignal, deps: DeliveryDeps): Promise<void> {
  const { prisma, settings, logger } = deps;
  const token = randomUUID();
  const claimed = await prisma.$executeRaw`
    UPDATE "WebhookDelivery"
       SET "leaseToken" = ${token}, "leaseUntil" = now() + ${leaseMs(settings)} * interval '1 millisecond'
     WHERE id = ${job.deliveryId} AND status = 'PENDING' AND attempts = ${job.attempt - 1}
       AND ("nextAttemptAt" IS NULL OR "nextAttemptAt" <= now() + ${EARLY_TOLERANCE_MS} * interval '1 millisecond')
       AND ("leaseUntil" IS NULL OR "leaseUntil" < now())`;
  if (claimed === 0) return;

  const delivery = await prisma.webhookDelivery.findUnique({ where: { id: job.deliveryId }, include: { webhook: true } });
  if (!delivery) return;
  const { webhook } = delivery;
  const ours = { id: delivery.id, leaseToken: token };
  const end = async (data: { status: "FAILED"; lastError: string }, deactivate: boolean) => {
    await prisma.$transaction(async (tx) => {
      const { count } = await tx.webhookDelivery.updateMany({
        where: ours,
        data: { ...data, nextAttemptAt: null, leaseToken: null, leaseUntil: null },
      });
      if (count > 0 && deactivate) await tx.webhook.update({ where: { id: webhook.id }, data: { active: false } });
    });
    deps.observer?.onDeliveryEnded("failed");
    logger.info({ webhookId: webhook.id, deliveryId: delivery.id, reason: data.lastError }, "webhook delivery ended without an attempt");
  };

  // ACCESS.md: a webhook acts for its creator, who must still be an admin.
  const creatorIsAdmin = await prisma.spaceMember.count({
    where: { spaceId: webhook.spaceId, userId: webhook.createdById, role: "ADMIN" },
  });
  if (creatorIsAdmin === 0) {
    return end({ status: "FAILED", lastError: "The webhook's creator is no longer an admin of the space." }, true);
  }
  // A redelivery is an admin's explicit request; it is made even while the webhook is inactive.
  if (!webhook.active && delivery.redeliveryOf === null) {
    return end({ status: "FAILED", lastError: "The webhook is inactive." }, false);
  }
  const row = await prisma.event.findUnique({ where: { id: delivery.eventId } });
  if (!row) return end({ status: "FAILED", lastError: "The event is no longer in the event log." }, false);
  const fresh = await buildPayload(prisma, { ...toChangeEvent(row), createdAt: row.createdAt }, webhook.createdById, deps.cursors);
  if (fresh === undefined) {
    // Not readable by the creator now: as if there had been nothing to deliver.
    await prisma.webhookDelivery.deleteMany({ where: ours });
    deps.observer?.onDeliveryEnded("dropped");
    return;
  }
  const body = delivery.payload ?? fresh;
  if (delivery.payload === null) await prisma.webhookDelivery.updateMany({ where: ours, data: { payload: body } });

  const started = performance.now();
  const result = await postWebhook(webhook.url, signedHeaders(webhook.secret, delivery.id, body, new Date()), body, {
    timeoutMs: settings.timeoutMs,
    allowPrivateNetworks: settings.allowPrivateNetworks,
    signal,
    ...(deps.lookup ? { lookup: deps.lookup } : {}),
  });
  const durationMs = Math.round(performance.now() - started);

  if (result.kind === "handedBack") {
    // Shutting down: the attempt is given back unmade, to be made by whoever runs the queue next.
    await prisma.webhookDelivery.updateMany({ where: ours, data: { leaseToken: null, leaseUntil: null } });
    await deps.enqueue(job);
    logger.info({ webhookId: webhook.id, deliveryId: delivery.id, attempt: job.attempt }, "webhook attempt handed back at shutdown");
    return;
  }
  await recordAttempt(job, result, { deliveryId: delivery.id, token, webhookId: webhook.id, eventAt: delivery.eventAt, durationMs, url: webhook.url }, deps);
}

async function recordAttempt(
  job: DeliveryJob,
  result: Exclude<AttemptResult, { kind: "handedBack" }>,
  attempt: { deliveryId: string; token: string; webhookId: string; eventAt: Date; durationMs: number; url: string },
  deps: DeliveryDeps,
): Promise<void> {
  const { prisma, settings } = deps;
  const statusCode = result.kind === "response" ? result.statusCode : null;
  const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
  const lastError = succeeded ? null : result.kind === "failed" ? result.error : describeStatus(statusCode as number);
  const gone = statusCode === 410;
  const lastAttempt = job.attempt >= settings.maxAttempts;
  const ends = succeeded || gone || lastAttempt;
  const now = new Date();
  const nextAttemptAt = ends ? null : new Date(now.getTime() + retryDelayMs(settings.retryScheduleMs, job.attempt));

  const recorded = await prisma.$transaction(async (tx) => {
    const { count } = await tx.webhookDelivery.updateMany({
      where: { id: attempt.deliveryId, leaseToken: attempt.token },
      data: {
        attempts: job.attempt,
        status: succeeded ? "SUCCEEDED" : ends ? "FAILED" : "PENDING",
        lastStatusCode: statusCode,
        lastError,
        nextAttemptAt,
        deliveredAt: succeeded ? now : null,
        leaseToken: null,
        leaseUntil: null,
      },
    });
    if (count === 0) return false;
    if (succeeded) {
      await tx.webhook.updateMany({ where: { id: attempt.webhookId, failuresInARow: { gt: 0 } }, data: { failuresInARow: 0 } });
    } else if (gone) {
      await tx.webhook.update({ where: { id: attempt.webhookId }, data: { active: false } });
    } else if (ends) {
      const webhook = await tx.webhook.update({ where: { id: attempt.webhookId }, data: { failuresInARow: { increment: 1 } } });
      if (webhook.failuresInARow >= settings.disableAfter) {
        await tx.webhook.update({ where: { id: attempt.webhookId }, data: { active: false } });
      }
    }
    return true;
  });

  deps.logger.info(
    {
      webhookId: attempt.webhookId,
      deliveryId: attempt.deliveryId,
      attempt: job.attempt,
      statusCode,
      outcome: succeeded ? "succeeded" : "failed",
      error: lastError ?? undefined,
      durationMs: attempt.durationMs,
      nextAttemptAt: nextAttemptAt?.toISOString(),
      recorded,
    },
    "webhook delivery attempt",
  );
  if (!recorded) return;
  deps.observer?.onAttempt(succeeded ? "succeeded" : "failed");
  if (succeeded) {
    deps.observer?.onDelivered(Math.max(0, (now.getTime() - attempt.eventAt.getTime()) / 1000));
    deps.observer?.onDeliveryEnded("succeeded");
  } else if (ends) deps.observer?.onDeliveryEnded("failed");
  if (nextAttemptAt) await deps.enqueue({ deliveryId: attempt.deliveryId, attempt: job.attempt + 1 }, nextAttemptAt);
}

/**
 * Deliveries that should have an attempt under way and have none: PENDING,
 * due for a while, no live lease. A job was lost: queued after a crash that
 * came between a commit and its job (dispatcher, recordAttempt), or held by a
 * process that died. Each gets a job for its next attempt again; a job that
 * was merely late finds the attempt claimed and does nothing.
 */
export async function overdueDeliveries(prisma: RawPrismaClient, graceMs: number, limit = 1000): Promise<DeliveryJob[]> {
  const rows = await prisma.$queryRaw<{ id: string; attempts: number }[]>`
    SELECT id, attempts FROM "WebhookDelivery"
     WHERE status = 'PENDING' AND "nextAttemptAt" < now() - ${graceMs} * interval '1 millisecond'
       AND ("leaseUntil" IS NULL OR "leaseUntil" < now())
     ORDER BY "nextAttemptAt" LIMIT ${limit}`;
  return rows.map((row) => ({ deliveryId: row.id, attempt: row.attempts + 1 }));
}

// The delivery job: one attempt of one delivery (docs/api/WEBHOOKS.md,
// "Delivery"). Its payload names the delivery and the attempt it is for.
//
// An attempt is claimed before it is made: a conditional UPDATE gives it a
// lease (a token and a time) only if the delivery is still PENDING, has made
// exactly attempt-1 attempts, is due, and holds no live lease (`claimable`;
// the writes that end or drop a delivery without an attempt carry the same
// condition). So two jobs for the same attempt (a job queued again by the
// sweep after a crash, or by two instances) never both make it, and every
// later write of the attempt is conditional on the token: an attempt whose lease ran out (its process
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
import { Prisma } from "../generated/prisma/client.js";
import type { Logger } from "../logger.js";
import type { EventCursors } from "../realtime/eventCursor.js";
import { buildPayload, type LoggedEvent } from "./payload.js";
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

/** The delivery, its webhook, whether its creator is still an admin, and its event, read in one statement. */
interface AttemptContext {
  id: string;
  eventAt: Date;
  payload: string | null;
  redeliveryOf: string | null;
  webhookId: string;
  url: string;
  secret: string;
  active: boolean;
  createdById: string;
  failuresInARow: number;
  creatorIsAdmin: boolean;
  event: LoggedEvent | undefined;
}

// Whether a delivery may have attempt $attempt made now: the condition of
// every write before the lease is taken (the claim, an end without attempt,
// a drop), so that of two jobs for one attempt only one ever acts.
const claimable = (job: DeliveryJob) => Prisma.sql`
  status = 'PENDING' AND attempts = ${job.attempt - 1}
  AND ("nextAttemptAt" IS NULL OR "nextAttemptAt" <= now() + ${EARLY_TOLERANCE_MS} * interval '1 millisecond')
  AND ("leaseUntil" IS NULL OR "leaseUntil" < now())`;

async function readAttempt(prisma: RawPrismaClient, job: DeliveryJob): Promise<AttemptContext | undefined> {
  // Plain SQL on the hot path: a delivery is a handful of statements, and
  // Prisma compiles every query it builds on the event loop (TOOLCHAIN.md).
  const [row] = await prisma.$queryRaw<
    (Omit<AttemptContext, "event"> & {
      eventId: bigint | null;
      txid: bigint | null;
      kind: LoggedEvent["kind"] | null;
      subject: LoggedEvent["subject"] | null;
      spaceId: string | null;
      listId: string | null;
      todoId: string | null;
      listOwnerId: string | null;
      listPrivate: boolean | null;
      eventCreatedAt: Date | null;
    })[]
  >`
    SELECT d.id, d."eventAt", d.payload, d."redeliveryOf",
           w.id AS "webhookId", w.url, w.secret, w.active, w."createdById", w."failuresInARow",
           EXISTS (SELECT 1 FROM "SpaceMember" m
                    WHERE m."spaceId" = w."spaceId" AND m."userId" = w."createdById" AND m.role = 'ADMIN') AS "creatorIsAdmin",
           e.id AS "eventId", e.txid, e.kind::text AS kind, e.subject::text AS subject, e."spaceId", e."listId", e."todoId",
           e."listOwnerId", e."listPrivate", e."createdAt" AS "eventCreatedAt"
      FROM "WebhookDelivery" d
      JOIN "Webhook" w ON w.id = d."webhookId"
      LEFT JOIN "Event" e ON e.id = d."eventId"
     WHERE d.id = ${job.deliveryId} AND ${claimable(job)}`;
  if (!row) return undefined;
  const event: LoggedEvent | undefined =
    row.eventId === null
      ? undefined
      : {
          id: BigInt(row.eventId),
          txid: BigInt(row.txid!),
          kind: row.kind!,
          subject: row.subject!,
          spaceId: row.spaceId!,
          listId: row.listId!,
          todoId: row.todoId,
          listOwnerId: row.listOwnerId!,
          listPrivate: row.listPrivate!,
          createdAt: row.eventCreatedAt!,
        };
  return {
    id: row.id,
    eventAt: row.eventAt,
    payload: row.payload,
    redeliveryOf: row.redeliveryOf,
    webhookId: row.webhookId,
    url: row.url,
    secret: row.secret,
    active: row.active,
    createdById: row.createdById,
    failuresInARow: Number(row.failuresInARow),
    creatorIsAdmin: row.creatorIsAdmin,
    event,
  };
}

export async function deliverAttempt(job: DeliveryJob, signal: AbortSignal, deps: DeliveryDeps): Promise<void> {
  const { prisma, settings, logger } = deps;
  const delivery = await readAttempt(prisma, job);
  // Done, deleted, not due, or an attempt under way: another job's business.
  if (!delivery) return;
  const end = async (lastError: string, deactivate: boolean) => {
    const ended = await prisma.$executeRaw`
      UPDATE "WebhookDelivery" SET status = 'FAILED', "lastError" = ${lastError}, "nextAttemptAt" = NULL
       WHERE id = ${delivery.id} AND ${claimable(job)}`;
    if (ended === 0) return;
    if (deactivate) await prisma.$executeRaw`UPDATE "Webhook" SET active = false, "updatedAt" = now() WHERE id = ${delivery.webhookId}`;
    deps.observer?.onDeliveryEnded("failed");
    logger.info({ webhookId: delivery.webhookId, deliveryId: delivery.id, reason: lastError }, "webhook delivery ended without an attempt");
  };

  // ACCESS.md: a webhook acts for its creator, who must still be an admin.
  if (!delivery.creatorIsAdmin) return end("The webhook's creator is no longer an admin of the space.", true);
  // A redelivery is an admin's explicit request; it is made even while the webhook is inactive.
  if (!delivery.active && delivery.redeliveryOf === null) return end("The webhook is inactive.", false);
  if (!delivery.event) return end("The event is no longer in the event log.", false);
  const fresh = await buildPayload(prisma, delivery.event, delivery.createdById, deps.cursors);
  if (fresh === undefined) {
    // Not readable by the creator now: as if there had been nothing to deliver.
    const dropped = await prisma.$executeRaw`DELETE FROM "WebhookDelivery" WHERE id = ${delivery.id} AND ${claimable(job)}`;
    if (dropped > 0) deps.observer?.onDeliveryEnded("dropped");
    return;
  }

  // The claim: a lease, and the body of the first attempt kept for every later one.
  const token = randomUUID();
  const [claimed] = await prisma.$queryRaw<{ payload: string }[]>`
    UPDATE "WebhookDelivery"
       SET "leaseToken" = ${token}, "leaseUntil" = now() + ${leaseMs(settings)} * interval '1 millisecond',
           payload = COALESCE(payload, ${fresh})
     WHERE id = ${delivery.id} AND ${claimable(job)}
     RETURNING payload`;
  if (!claimed) return;
  const body = claimed.payload;

  const started = performance.now();
  const result = await postWebhook(delivery.url, signedHeaders(delivery.secret, delivery.id, body, new Date()), body, {
    timeoutMs: settings.timeoutMs,
    allowPrivateNetworks: settings.allowPrivateNetworks,
    signal,
    ...(deps.lookup ? { lookup: deps.lookup } : {}),
  });
  const durationMs = Math.round(performance.now() - started);

  if (result.kind === "handedBack") {
    // Shutting down: the attempt is given back unmade, to be made by whoever runs the queue next.
    await prisma.$executeRaw`
      UPDATE "WebhookDelivery" SET "leaseToken" = NULL, "leaseUntil" = NULL WHERE id = ${delivery.id} AND "leaseToken" = ${token}`;
    await deps.enqueue(job);
    logger.info({ webhookId: delivery.webhookId, deliveryId: delivery.id, attempt: job.attempt }, "webhook attempt handed back at shutdown");
    return;
  }
  await recordAttempt(job, result, { ...delivery, token, durationMs }, deps);
}

async function recordAttempt(
  job: DeliveryJob,
  result: Exclude<AttemptResult, { kind: "handedBack" }>,
  attempt: AttemptContext & { token: string; durationMs: number },
  deps: DeliveryDeps,
): Promise<void> {
  const { prisma, settings } = deps;
  const statusCode = result.kind === "response" ? result.statusCode : null;
  const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
  const lastError = succeeded ? null : result.kind === "failed" ? result.error : describeStatus(statusCode as number);
  const gone = statusCode === 410;
  const lastAttempt = job.attempt >= settings.maxAttempts;
  const ends = succeeded || gone || lastAttempt;
  const status = succeeded ? "SUCCEEDED" : ends ? "FAILED" : "PENDING";
  const now = new Date();
  const nextAttemptAt = ends ? null : new Date(now.getTime() + retryDelayMs(settings.retryScheduleMs, job.attempt));

  // The common case, a success of a webhook with no failures to forgive or
  // a retry to come, is one statement; the others touch the webhook too.
  const touchesWebhook = (succeeded && attempt.failuresInARow > 0) || (ends && !succeeded);
  const record = async (tx: Pick<RawPrismaClient, "$executeRaw">) => {
    // Only while the lease is ours: an attempt whose lease ran out was taken over.
    const count = await tx.$executeRaw`
      UPDATE "WebhookDelivery"
         SET attempts = ${job.attempt}, status = ${status}::"WebhookDeliveryStatus", "lastStatusCode" = ${statusCode},
             "lastError" = ${lastError}, "nextAttemptAt" = ${nextAttemptAt}, "deliveredAt" = ${succeeded ? now : null},
             "leaseToken" = NULL, "leaseUntil" = NULL
       WHERE id = ${attempt.id} AND "leaseToken" = ${attempt.token}`;
    if (count === 0) return false;
    if (succeeded && attempt.failuresInARow > 0) {
      await tx.$executeRaw`UPDATE "Webhook" SET "failuresInARow" = 0 WHERE id = ${attempt.webhookId}`;
    } else if (gone) {
      await tx.$executeRaw`UPDATE "Webhook" SET active = false, "updatedAt" = now() WHERE id = ${attempt.webhookId}`;
    } else if (ends && !succeeded) {
      await tx.$executeRaw`
        UPDATE "Webhook" SET "failuresInARow" = "failuresInARow" + 1,
               active = active AND "failuresInARow" + 1 < ${settings.disableAfter},
               "updatedAt" = CASE WHEN "failuresInARow" + 1 >= ${settings.disableAfter} THEN now() ELSE "updatedAt" END
         WHERE id = ${attempt.webhookId}`;
    }
    return true;
  };
  const recorded = touchesWebhook ? await prisma.$transaction((tx) => record(tx)) : await record(prisma);

  deps.logger.info(
    {
      webhookId: attempt.webhookId,
      deliveryId: attempt.id,
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
  if (nextAttemptAt) await deps.enqueue({ deliveryId: attempt.id, attempt: job.attempt + 1 }, nextAttemptAt);
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

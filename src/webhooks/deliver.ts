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
import type { RawPrismaClient, SqlExecutor } from "../db/database.js";
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
  /** For the payload, read through the creator's policy client. */
  prisma: RawPrismaClient;
  /**
   * The delivery's own bookkeeping, in plain SQL on the queue's connection:
   * an attempt is a handful of statements, and Prisma compiles every query it
   * is given on the event loop (TOOLCHAIN.md), raw ones included.
   */
  sql: SqlExecutor;
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

// Whether delivery $1 may have attempt $2 + 1 made now: the condition of
// every write before the lease is taken (the claim, an end without attempt,
// a drop), so that of two jobs for one attempt only one ever acts.
const CLAIMABLE = `d.id = $1 AND d.status = 'PENDING' AND d.attempts = $2
  AND (d."nextAttemptAt" IS NULL OR d."nextAttemptAt" <= now() + interval '${EARLY_TOLERANCE_MS} milliseconds')
  AND (d."leaseUntil" IS NULL OR d."leaseUntil" < now())`;

const READ_ATTEMPT = `
  SELECT d.id, d."eventAt", d.payload, d."redeliveryOf",
         w.id AS "webhookId", w.url, w.secret, w.active, w."createdById", w."failuresInARow",
         EXISTS (SELECT 1 FROM "SpaceMember" m
                  WHERE m."spaceId" = w."spaceId" AND m."userId" = w."createdById" AND m.role = 'ADMIN') AS "creatorIsAdmin",
         e.id::text AS "eventId", e.txid::text AS txid, e.kind::text AS kind, e.subject::text AS subject, e."spaceId",
         e."listId", e."todoId", e."listOwnerId", e."listPrivate", e."createdAt" AS "eventCreatedAt"
    FROM "WebhookDelivery" d
    JOIN "Webhook" w ON w.id = d."webhookId"
    LEFT JOIN "Event" e ON e.id = d."eventId"
   WHERE ${CLAIMABLE}`;

const END_WITHOUT_ATTEMPT = `
  WITH ended AS (
    UPDATE "WebhookDelivery" d SET status = 'FAILED', "lastError" = $3::text, "nextAttemptAt" = NULL
     WHERE ${CLAIMABLE} RETURNING d."webhookId"
  ), webhook AS (
    UPDATE "Webhook" w SET active = false, "updatedAt" = now() FROM ended WHERE w.id = ended."webhookId" AND $4::boolean
  )
  SELECT count(*)::int AS ended FROM ended`;

const DROP = `DELETE FROM "WebhookDelivery" d WHERE ${CLAIMABLE} RETURNING d.id`;

const CLAIM = `
  UPDATE "WebhookDelivery" d
     SET "leaseToken" = $3::text, "leaseUntil" = now() + $4::int * interval '1 millisecond', payload = COALESCE(d.payload, $5::text)
   WHERE ${CLAIMABLE}
   RETURNING d.payload`;

const HAND_BACK = `UPDATE "WebhookDelivery" SET "leaseToken" = NULL, "leaseUntil" = NULL WHERE id = $1 AND "leaseToken" = $2`;

// The attempt's outcome, only while the lease is ours (an attempt whose lease
// ran out was taken over), and what it does to the webhook ($9): none,
// reset (a success after failures), gone (410), failed (the delivery ended
// FAILED: one more in a row, inactive at WEBHOOK_DISABLE_AFTER, $10). One
// statement: the two writes commit together.
const RECORD = `
  WITH recorded AS (
    UPDATE "WebhookDelivery"
       SET attempts = $3::int, status = $4::text::"WebhookDeliveryStatus", "lastStatusCode" = $5::int, "lastError" = $6::text,
           "nextAttemptAt" = $7::timestamptz, "deliveredAt" = $8::timestamptz, "leaseToken" = NULL, "leaseUntil" = NULL
     WHERE id = $1 AND "leaseToken" = $2
     RETURNING "webhookId"
  ), webhook AS (
    UPDATE "Webhook" w
       SET "failuresInARow" = CASE $9::text WHEN 'reset' THEN 0 WHEN 'failed' THEN w."failuresInARow" + 1 ELSE w."failuresInARow" END,
           active = CASE $9::text WHEN 'gone' THEN false WHEN 'failed' THEN w.active AND w."failuresInARow" + 1 < $10::int ELSE w.active END,
           "updatedAt" = CASE WHEN $9::text = 'gone' OR ($9::text = 'failed' AND w."failuresInARow" + 1 >= $10::int) THEN now() ELSE w."updatedAt" END
      FROM recorded
     WHERE w.id = recorded."webhookId" AND $9::text <> 'none'
  )
  SELECT count(*)::int AS recorded FROM recorded`;

interface AttemptRow extends Omit<AttemptContext, "event"> {
  eventId: string | null;
  txid: string | null;
  kind: LoggedEvent["kind"] | null;
  subject: LoggedEvent["subject"] | null;
  spaceId: string | null;
  listId: string | null;
  todoId: string | null;
  listOwnerId: string | null;
  listPrivate: boolean | null;
  eventCreatedAt: Date | null;
}

async function readAttempt(sql: SqlExecutor, job: DeliveryJob): Promise<AttemptContext | undefined> {
  const [row] = (await sql.executeSql(READ_ATTEMPT, [job.deliveryId, job.attempt - 1])).rows as unknown as AttemptRow[];
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
          createdAt: new Date(row.eventCreatedAt!),
        };
  return {
    id: row.id,
    eventAt: new Date(row.eventAt),
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
  const { sql, settings, logger } = deps;
  const delivery = await readAttempt(sql, job);
  // Done, deleted, not due, or an attempt under way: another job's business.
  if (!delivery) return;
  const claimKey = [delivery.id, job.attempt - 1];
  const end = async (lastError: string, deactivate: boolean) => {
    const [ended] = (await sql.executeSql(END_WITHOUT_ATTEMPT, [...claimKey, lastError, deactivate])).rows;
    if (!ended || Number(ended.ended) === 0) return;
    deps.observer?.onDeliveryEnded("failed");
    logger.info({ webhookId: delivery.webhookId, deliveryId: delivery.id, reason: lastError }, "webhook delivery ended without an attempt");
  };

  // ACCESS.md: a webhook acts for its creator, who must still be an admin.
  if (!delivery.creatorIsAdmin) return end("The webhook's creator is no longer an admin of the space.", true);
  // A redelivery is an admin's explicit request; it is made even while the webhook is inactive.
  if (!delivery.active && delivery.redeliveryOf === null) return end("The webhook is inactive.", false);
  if (!delivery.event) return end("The event is no longer in the event log.", false);
  const fresh = await buildPayload(deps.prisma, delivery.event, delivery.createdById, deps.cursors);
  if (fresh === undefined) {
    // Not readable by the creator now: as if there had been nothing to deliver.
    const { rows } = await sql.executeSql(DROP, claimKey);
    if (rows.length > 0) deps.observer?.onDeliveryEnded("dropped");
    return;
  }

  // The claim: a lease, and the body of the first attempt kept for every later one.
  const token = randomUUID();
  const [claimed] = (await sql.executeSql(CLAIM, [...claimKey, token, leaseMs(settings), fresh])).rows as { payload: string }[];
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
    await sql.executeSql(HAND_BACK, [delivery.id, token]);
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
  const { sql, settings } = deps;
  const statusCode = result.kind === "response" ? result.statusCode : null;
  const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
  const lastError = succeeded ? null : result.kind === "failed" ? result.error : describeStatus(statusCode as number);
  const gone = statusCode === 410;
  const lastAttempt = job.attempt >= settings.maxAttempts;
  const ends = succeeded || gone || lastAttempt;
  const status = succeeded ? "SUCCEEDED" : ends ? "FAILED" : "PENDING";
  const now = new Date();
  const nextAttemptAt = ends ? null : new Date(now.getTime() + retryDelayMs(settings.retryScheduleMs, job.attempt));
  const onWebhook = succeeded ? (attempt.failuresInARow > 0 ? "reset" : "none") : gone ? "gone" : ends ? "failed" : "none";
  const [row] = (
    await sql.executeSql(RECORD, [
      attempt.id,
      attempt.token,
      job.attempt,
      status,
      statusCode,
      lastError,
      nextAttemptAt?.toISOString() ?? null,
      succeeded ? now.toISOString() : null,
      onWebhook,
      settings.disableAfter,
    ])
  ).rows;
  const recorded = Number(row?.recorded ?? 0) > 0;

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

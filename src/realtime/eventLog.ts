// The event log: one row per list or todo change, written in the same
// transaction as the change (via PolicyClient.$appendEvent).
//
// How it is ordered, without a lock. Ids come from a sequence, which hands
// them out in call order, not commit order: event 7 can commit after event 8,
// and a reader that had moved past 8 would skip 7 forever. Instead of making
// every writer of the deployment queue on one lock until commit, each event
// records its writing transaction's id (`txid`, pg_current_xact_id()), and
// the log's order is (txid, id). Readers take the horizon first: the oldest
// transaction still running that could write here (readHorizon). Every
// transaction below it has committed or rolled back, so the part of the log
// below the horizon is final, and a reader that moves past it in (txid, id)
// order can never skip an event. A transaction still running gets, or already
// has, a txid at or above the horizon of every read made meanwhile, so its
// events land after whatever those reads passed.
//
// The price: an event waits for every transaction of this database older than
// its own to end, which on a healthy database is milliseconds. A transaction
// left open on it (an idle psql session in BEGIN) holds delivery back until it
// ends; `idle_in_transaction_session_timeout` bounds that.
import type { Prisma } from "../generated/prisma/client.js";
import type { RawPrismaClient } from "../db/database.js";
import type { ChangeEvent } from "./events.js";

export type NewEvent = Omit<ChangeEvent, "id" | "txid">;
export type CommittedEvent = ChangeEvent;

/** A place in the log's (txid, id) order. */
export interface LogPosition {
  readonly txid: bigint;
  readonly id: bigint;
}

export const positionOf = (event: Pick<ChangeEvent, "txid" | "id">): LogPosition => ({ txid: event.txid, id: event.id });

/** Whether `a` comes strictly after `b` in the log. */
export const isAfter = (a: LogPosition, b: LogPosition): boolean => a.txid > b.txid || (a.txid === b.txid && a.id > b.id);

export const laterOf = (a: LogPosition, b: LogPosition): LogPosition => (isAfter(a, b) ? a : b);

/** The position just before every event of transaction `horizon`: all of the log below it is behind. */
export const belowHorizon = (horizon: bigint): LogPosition => ({ txid: horizon, id: -1n });

/** The rows strictly after `position` in log order. */
export const afterPosition = (position: LogPosition): Prisma.EventWhereInput => ({
  OR: [{ txid: { gt: position.txid } }, { txid: position.txid, id: { gt: position.id } }],
});

export const LOG_ORDER: Prisma.EventOrderByWithRelationInput[] = [{ txid: "asc" }, { id: "asc" }];
export const LOG_ORDER_NEWEST_FIRST: Prisma.EventOrderByWithRelationInput[] = [{ txid: "desc" }, { id: "desc" }];

/**
 * The oldest transaction still running that could write to this database's
 * log, as a txid: every event with a txid below it is committed (or never
 * will be). Read it before the rows it bounds, never after.
 *
 * It is the snapshot's xmin (the oldest running transaction of the whole
 * PostgreSQL server) except that transactions of sessions connected to other
 * databases are left out: they cannot write here, and on a shared server they
 * would otherwise hold this log's delivery back. A transaction is left out
 * only when pg_stat_activity names its database as another one; any doubt
 * keeps it in. A snapshot lists the running transactions below its xmax (one
 * past the newest transaction that has ended); with none of those left, the
 * horizon is xmax itself: everything below it has ended, and anything at or
 * above it is still running or yet to begin.
 */
export async function readHorizon(prisma: RawPrismaClient): Promise<bigint> {
  const [row] = await prisma.$queryRawUnsafe<{ horizon: string }[]>(HORIZON_SQL);
  return BigInt(row!.horizon);
}

/** readHorizon's statement, for readers on a connection of their own (the webhook dispatcher). */
export const HORIZON_SQL = `
    SELECT COALESCE(
      (SELECT min(running::text::bigint) FROM pg_snapshot_xip(snapshot) AS running
        WHERE NOT EXISTS (
          SELECT 1 FROM pg_stat_activity AS session
           WHERE session.datname <> current_database() AND session.backend_xid = running::xid)),
      pg_snapshot_xmax(snapshot)::text::bigint
    )::text AS horizon
    FROM pg_current_snapshot() AS snapshot`;

/** Appends one event in `tx`: one INSERT, no lock (txid and id come from column defaults). */
export async function appendEvent(tx: Prisma.TransactionClient, event: NewEvent): Promise<CommittedEvent> {
  return toChangeEvent(await tx.event.create({ data: event }));
}

export function toChangeEvent(row: {
  id: bigint;
  txid: bigint;
  kind: ChangeEvent["kind"];
  subject: ChangeEvent["subject"];
  spaceId: string;
  listId: string;
  todoId: string | null;
  listOwnerId: string;
  listPrivate: boolean;
}): ChangeEvent {
  return {
    id: row.id,
    txid: row.txid,
    kind: row.kind,
    subject: row.subject,
    spaceId: row.spaceId,
    listId: row.listId,
    todoId: row.todoId,
    listOwnerId: row.listOwnerId,
    listPrivate: row.listPrivate,
  };
}

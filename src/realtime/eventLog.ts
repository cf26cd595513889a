// The event log: one row per list or todo change, written in the same
// transaction as the change (via PolicyClient.$appendEvent).
//
// Ids come from a sequence, and a sequence hands out ids in call order, not
// commit order: without care, event 7 could commit after event 8 and a reader
// that has seen 8 would skip 7 forever. Appending therefore takes a
// transaction-scoped advisory lock first, held until commit, so ids are
// allocated and committed in the same order. A reader that has seen id N can
// then trust that every event below N is visible.
import type { Prisma } from "../generated/prisma/client.js";
import type { ChangeEvent } from "./events.js";

export type NewEvent = Omit<ChangeEvent, "id">;
export type CommittedEvent = ChangeEvent;

const EVENT_APPEND_LOCK_KEY = 7_303_011;

export async function appendEvent(tx: Prisma.TransactionClient, event: NewEvent): Promise<CommittedEvent> {
  await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${EVENT_APPEND_LOCK_KEY})`);
  const row = await tx.event.create({ data: event });
  return toChangeEvent(row);
}

export function toChangeEvent(row: {
  id: bigint;
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
    kind: row.kind,
    subject: row.subject,
    spaceId: row.spaceId,
    listId: row.listId,
    todoId: row.todoId,
    listOwnerId: row.listOwnerId,
    listPrivate: row.listPrivate,
  };
}

// The body of a delivery (docs/api/WEBHOOKS.md, "Body"), built through the
// policy-bound client of the webhook's creator, at delivery time: it carries
// an event only when that user may read it now (docs/api/ACCESS.md, Webhook),
// by the same rules as a subscription's delivery (src/realtime/delivery.ts):
// - the row exists and is readable: it is sent as it is now;
// - the row is gone (deleted since, or a DELETED event): `todo`/`list` is null,
//   provided the list is readable now, or, when the list is gone too, was
//   readable by the rule applied to its owner and privacy at the change;
// - otherwise (a private list of someone else, say) nothing is sent.
// The caller has checked that the creator is still an admin of the space.
import type { List, Todo } from "../generated/prisma/client.js";
import type { RawPrismaClient } from "../db/database.js";
import { createPolicyClient } from "../policy/client.js";
import type { EventCursors } from "../realtime/eventCursor.js";
import type { ChangeEvent } from "../realtime/events.js";

export type LoggedEvent = ChangeEvent & { createdAt: Date };

const eventType = (event: ChangeEvent) => `${event.subject.toLowerCase()}.${event.kind.toLowerCase()}`;

const todoFields = (todo: Todo) => ({
  id: todo.id,
  title: todo.title,
  completed: todo.completedAt !== null,
  completedAt: todo.completedAt,
  ownerId: todo.ownerId,
  listId: todo.listId,
  createdAt: todo.createdAt,
  updatedAt: todo.updatedAt,
});

const listFields = (list: List) => ({
  id: list.id,
  title: list.title,
  private: list.private,
  ownerId: list.ownerId,
  spaceId: list.spaceId,
  createdAt: list.createdAt,
  updatedAt: list.updatedAt,
});

/** The JSON body for `creatorId`, or undefined when the creator may not read the event now. */
export async function buildPayload(
  prisma: RawPrismaClient,
  event: LoggedEvent,
  creatorId: string,
  cursors: EventCursors,
): Promise<string | undefined> {
  const db = createPolicyClient(prisma, { id: creatorId });
  const listReadableWhenRowGone = async (): Promise<boolean> => {
    if (await db.list.findFirst({ where: { id: event.listId }, select: { id: true } })) return true;
    // Not readable: because it is private to someone else, or because it is gone?
    const stillThere = await prisma.list.count({ where: { id: event.listId } });
    return stillThere === 0 && (event.listOwnerId === creatorId || !event.listPrivate);
  };

  const base = { cursor: cursors.encode(event.id), spaceId: event.spaceId, listId: event.listId };
  let data: Record<string, unknown>;
  if (event.subject === "TODO") {
    const todo = event.todoId && event.kind !== "DELETED" ? await db.todo.findFirst({ where: { id: event.todoId } }) : null;
    if (!todo && !(await listReadableWhenRowGone())) return undefined;
    data = { ...base, todoId: event.todoId, todo: todo ? todoFields(todo) : null };
  } else {
    const list = event.kind !== "DELETED" ? await db.list.findFirst({ where: { id: event.listId } }) : null;
    if (!list && !(await listReadableWhenRowGone())) return undefined;
    data = { ...base, list: list ? listFields(list) : null };
  }
  return JSON.stringify({ type: eventType(event), timestamp: event.createdAt.toISOString(), data });
}

import { orNotFound } from "../../errors.js";
import type { List, Todo } from "../../generated/prisma/client.js";
import type { PolicyClient } from "../../policy/client.js";
import type { NewEvent } from "../../realtime/eventLog.js";
import { recordedWrite } from "../changes.js";
import { notNull, requireText } from "../validation.js";

const todoTitle = (value: string) => requireText(value, "title", "Title", 1, 100);

/** The event for a change of `todo` in `list`; the list's owner and privacy are snapshotted. */
export const todoEventOf = (
  kind: NewEvent["kind"],
  todo: Pick<Todo, "id">,
  list: Pick<List, "id" | "spaceId" | "ownerId" | "private">,
): NewEvent => ({
  kind,
  subject: "TODO",
  spaceId: list.spaceId,
  listId: list.id,
  todoId: todo.id,
  listOwnerId: list.ownerId,
  listPrivate: list.private,
});

/** The event for a todo change, its list read when not given. */
async function todoEvent(db: PolicyClient, kind: NewEvent["kind"], todo: Todo, readList?: List | null): Promise<NewEvent> {
  return todoEventOf(kind, todo, orNotFound(readList ?? (await db.list.findUnique({ where: { id: todo.listId } })), "List"));
}

export async function createTodo(db: PolicyClient, viewerId: string, input: { listId: string; title: string }) {
  const title = todoTitle(input.title);
  // The list is read first, for the event's snapshot; having read it in this
  // transaction, the policy needs no statement to know it is readable. An
  // unreadable list is left to the create rule to refuse (NOT_FOUND).
  const { todo } = await recordedWrite(
    db,
    async (tx) => {
      const list = await tx.list.findUnique({ where: { id: input.listId } });
      return { list, todo: await tx.todo.create({ data: { listId: input.listId, title, ownerId: viewerId } }) };
    },
    ({ list, todo }, tx) => todoEvent(tx, "CREATED", todo, list),
  );
  return todo;
}

export function updateTodo(db: PolicyClient, id: string, input: { title?: string | null; completed?: boolean | null }) {
  const title = notNull(input.title, "title", "Title");
  const completed = notNull(input.completed, "completed", "Completed");
  // ACCESS.md: `completed: true` sets completedAt to now (also when it was
  // already completed), `false` clears it; absent leaves it alone.
  const completedAt = completed === undefined ? undefined : completed ? new Date() : null;
  const data = { ...(title === undefined ? {} : { title: todoTitle(title) }), completedAt };
  return recordedWrite(db, (tx) => tx.todo.update({ where: { id }, data }), (todo, tx) => todoEvent(tx, "UPDATED", todo));
}

export async function deleteTodo(db: PolicyClient, id: string): Promise<string> {
  const todo = await recordedWrite(db, (tx) => tx.todo.delete({ where: { id } }), (row, tx) => todoEvent(tx, "DELETED", row));
  return todo.id;
}

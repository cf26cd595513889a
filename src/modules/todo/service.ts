import { orNotFound } from "../../errors.js";
import type { Todo } from "../../generated/prisma/client.js";
import type { PolicyClient } from "../../policy/client.js";
import type { NewEvent } from "../../realtime/eventLog.js";
import { notNull, requireText } from "../validation.js";

const todoTitle = (value: string) => requireText(value, "title", "Title", 1, 100);

/** The event for a todo change; the list's owner and privacy are snapshotted. */
async function todoEvent(db: PolicyClient, kind: NewEvent["kind"], todo: Todo): Promise<NewEvent> {
  const list = orNotFound(await db.list.findUnique({ where: { id: todo.listId } }), "List");
  return {
    kind,
    subject: "TODO",
    spaceId: list.spaceId,
    listId: list.id,
    todoId: todo.id,
    listOwnerId: list.ownerId,
    listPrivate: list.private,
  };
}

export function createTodo(db: PolicyClient, viewerId: string, input: { listId: string; title: string }) {
  const title = todoTitle(input.title);
  return db.$transaction(async (tx) => {
    const todo = await tx.todo.create({ data: { listId: input.listId, title, ownerId: viewerId } });
    await tx.$appendEvent(await todoEvent(tx, "CREATED", todo));
    return todo;
  });
}

export function updateTodo(db: PolicyClient, id: string, input: { title?: string | null; completed?: boolean | null }) {
  const title = notNull(input.title, "title", "Title");
  const completed = notNull(input.completed, "completed", "Completed");
  // ACCESS.md: `completed: true` sets completedAt to now (also when it was
  // already completed), `false` clears it; absent leaves it alone.
  const completedAt = completed === undefined ? undefined : completed ? new Date() : null;
  return db.$transaction(async (tx) => {
    const todo = await tx.todo.update({
      where: { id },
      data: { ...(title === undefined ? {} : { title: todoTitle(title) }), completedAt },
    });
    await tx.$appendEvent(await todoEvent(tx, "UPDATED", todo));
    return todo;
  });
}

export function deleteTodo(db: PolicyClient, id: string): Promise<string> {
  return db.$transaction(async (tx) => {
    const todo = await tx.todo.delete({ where: { id } });
    await tx.$appendEvent(await todoEvent(tx, "DELETED", todo));
    return todo.id;
  });
}

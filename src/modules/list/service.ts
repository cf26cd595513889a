import type { List } from "../../generated/prisma/client.js";
import type { PolicyClient } from "../../policy/client.js";
import type { NewEvent } from "../../realtime/eventLog.js";
import { recordedWrite } from "../changes.js";
import { notNull, requireText } from "../validation.js";

const listTitle = (value: string) => requireText(value, "title", "Title", 1, 100);

export const listEvent = (kind: NewEvent["kind"], list: Pick<List, "id" | "spaceId" | "ownerId" | "private">): NewEvent => ({
  kind,
  subject: "LIST",
  spaceId: list.spaceId,
  listId: list.id,
  todoId: null,
  listOwnerId: list.ownerId,
  listPrivate: list.private,
});

export function createList(db: PolicyClient, viewerId: string, input: { spaceId: string; title: string; private?: boolean | null }) {
  const title = listTitle(input.title);
  return recordedWrite(
    db,
    (tx) => tx.list.create({ data: { spaceId: input.spaceId, title, private: input.private ?? false, ownerId: viewerId } }),
    (list) => listEvent("CREATED", list),
  );
}

export function updateList(db: PolicyClient, id: string, input: { title?: string | null; private?: boolean | null }) {
  const title = notNull(input.title, "title", "Title");
  const isPrivate = notNull(input.private, "private", "Private");
  const data = { ...(title === undefined ? {} : { title: listTitle(title) }), private: isPrivate };
  return recordedWrite(db, (tx) => tx.list.update({ where: { id }, data }), (list) => listEvent("UPDATED", list));
}

export async function deleteList(db: PolicyClient, id: string): Promise<string> {
  const list = await recordedWrite(db, (tx) => tx.list.delete({ where: { id } }), (row) => listEvent("DELETED", row));
  return list.id;
}

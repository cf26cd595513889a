// Decides, for one subscriber and one event, whether the event may be
// delivered, by reading through that subscriber's own policy-bound client in a
// fresh context (new loaders: no row cached from an earlier event).
//
// The rules, at delivery time (not at the time of the change):
// - the subscriber must still be a member of the event's space: after removal
//   no subscription delivers anything more from it (shared/api/ACCESS.md);
// - CREATED/UPDATED: the row must be readable now, and is delivered as it is
//   now. A row deleted since is not readable: its DELETED event follows;
// - DELETED: the row is gone, so the list rule is applied to the list's owner
//   and privacy as they were at the change (snapshotted in the event).
import type { GraphQLContext } from "../context.js";
import type { ChangeEvent, DeliveredEvent } from "./events.js";

export async function readableEvent(event: ChangeEvent, context: GraphQLContext): Promise<DeliveredEvent | undefined> {
  const viewer = context.viewer;
  if (!viewer) return undefined;
  // The event's nested fields resolve through these same fresh loaders.
  const { loaders } = context.refresh();

  if (event.kind === "DELETED") {
    if (!(await loaders.space.load(event.spaceId))) return undefined;
    const listReadable = event.listOwnerId === viewer.id || !event.listPrivate;
    return listReadable ? { ...event, todo: null, list: null } : undefined;
  }
  // Both loads go out together; loaders batch per kind.
  const [space, todo, list] = await Promise.all([
    loaders.space.load(event.spaceId),
    event.subject === "TODO" && event.todoId ? loaders.todo.load(event.todoId) : null,
    event.subject === "LIST" ? loaders.list.load(event.listId) : null,
  ]);
  if (!space) return undefined;
  if (event.subject === "TODO") return todo ? { ...event, todo, list: null } : undefined;
  return list ? { ...event, todo: null, list } : undefined;
}

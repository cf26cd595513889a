// Decides, for one subscriber and one event, whether the event may be
// delivered, by reading through that subscriber's own policy-bound client in a
// fresh context (new loaders: no row cached from an earlier event).
import type { GraphQLContext } from "../context.js";
import type { ChangeEvent, DeliveredEvent } from "./events.js";

export type Scope = "space" | "list";

export async function readableEvent(
  event: ChangeEvent,
  scope: Scope,
  context: GraphQLContext,
): Promise<DeliveredEvent | undefined> {
  const viewer = context.viewer;
  if (!viewer) return undefined;
  // The event's nested fields resolve through these same fresh loaders.
  const { loaders } = context.refresh();

  // Space activity stops the moment the subscriber stops being a member.
  if (scope === "space" && !(await loaders.space.load(event.spaceId))) return undefined;

  if (event.kind === "DELETED") {
    // The row is gone: apply the list rule to the list as it was at the change.
    const isMember = (await loaders.viewerMembership.load(event.spaceId)) !== null;
    const listReadable = event.listOwnerId === viewer.id || (isMember && !event.listPrivate);
    return listReadable ? { ...event, todo: null, list: null } : undefined;
  }
  if (event.subject === "TODO") {
    const todo = event.todoId ? await loaders.todo.load(event.todoId) : null;
    return todo ? { ...event, todo, list: null } : undefined;
  }
  const list = await loaders.list.load(event.listId);
  return list ? { ...event, todo: null, list } : undefined;
}

// todoChanged and spaceActivity. Access is checked when subscribing (NOT_FOUND
// for a list or space the caller cannot read) and again for every event at
// delivery (delivery.ts). spaceActivity with `after` replays the log first,
// then continues live; ids only ever increase, so skipping ids at or below the
// last one delivered joins the two with no gap and no duplicate.
import { requireViewer, type GraphQLContext } from "../context.js";
import { notFound } from "../errors.js";
import type { Resolvers } from "../generated/graphql.js";
import { looksLikeId } from "../modules/validation.js";
import { readableEvent, type Scope } from "./delivery.js";
import { decodeEventCursor, encodeEventCursor, type ChangeEvent, type DeliveredEvent } from "./events.js";
import type { EventFilter } from "./tailer.js";

async function* deliver(
  context: GraphQLContext,
  scope: Scope,
  filter: EventFilter,
  after: bigint | undefined,
): AsyncGenerator<DeliveredEvent> {
  const live = context.realtime.tailer.subscribe(filter);
  try {
    let last = after ?? live.startId;
    const sources: AsyncIterable<ChangeEvent>[] = [];
    if (after !== undefined) sources.push(context.realtime.replay(filter, after));
    sources.push(live.events);
    for (const source of sources) {
      for await (const event of source) {
        if (event.id <= last) continue;
        last = event.id;
        const delivered = await readableEvent(event, scope, context);
        if (delivered) yield delivered;
      }
    }
  } finally {
    live.close();
  }
}

export const realtimeResolvers: Resolvers = {
  Subscription: {
    todoChanged: {
      subscribe: async (_parent, { listId }, context) => {
        requireViewer(context);
        if (!looksLikeId(listId) || !(await context.loaders.list.load(listId))) throw notFound("List");
        return deliver(context, "list", { listId, subject: "TODO" }, undefined);
      },
      resolve: (event: DeliveredEvent) => event,
    },
    spaceActivity: {
      subscribe: async (_parent, { spaceId, after }, context) => {
        requireViewer(context);
        const afterId = after == null ? undefined : decodeEventCursor(after);
        if (!looksLikeId(spaceId) || !(await context.loaders.space.load(spaceId))) throw notFound("Space");
        if (afterId !== undefined) await context.realtime.assertCursorRetained(afterId);
        return deliver(context, "space", { spaceId }, afterId);
      },
      resolve: (event: DeliveredEvent) => event,
    },
  },
  SpaceEvent: {
    __resolveType: (event) => (event.subject === "TODO" ? "TodoEvent" : "ListEvent"),
  },
  TodoEvent: {
    todoId: (event) => event.todoId ?? "",
    cursor: (event) => encodeEventCursor(event.id),
  },
  ListEvent: {
    cursor: (event) => encodeEventCursor(event.id),
  },
};

// todoChanged and spaceActivity. Access is checked when subscribing (NOT_FOUND
// for a list or space the caller cannot read) and again for every event at
// delivery (delivery.ts). spaceActivity with `after` replays the log first,
// then continues live (stream.ts).
import { requireViewer, type GraphQLContext } from "../context.js";
import { notFound } from "../errors.js";
import type { Resolvers } from "../generated/graphql.js";
import { looksLikeId } from "../modules/validation.js";
import type { DeliveredEvent } from "./events.js";
import { eventStream } from "./stream.js";

// The access check at subscribe: decided for many subscribers at once (subscribeCheck.ts).
const readableList = (context: GraphQLContext, listId: string) => context.realtime.readable({ model: "list", id: listId }, context);
const readableSpace = (context: GraphQLContext, spaceId: string) => context.realtime.readable({ model: "space", id: spaceId }, context);

export const realtimeResolvers: Resolvers = {
  Subscription: {
    todoChanged: {
      subscribe: async (_parent, { listId }, context) => {
        requireViewer(context);
        if (!looksLikeId(listId) || !(await readableList(context, listId))) throw notFound("List");
        return eventStream(context, { listId, subject: "TODO" }, undefined);
      },
      resolve: (event: DeliveredEvent) => event,
    },
    spaceActivity: {
      subscribe: async (_parent, { spaceId, after }, context) => {
        requireViewer(context);
        const afterId = after == null ? undefined : context.realtime.cursors.decode(after);
        if (!looksLikeId(spaceId) || !(await readableSpace(context, spaceId))) throw notFound("Space");
        const resumeAt = afterId === undefined ? undefined : await context.realtime.cursorPosition(afterId);
        return eventStream(context, { spaceId }, resumeAt);
      },
      resolve: (event: DeliveredEvent) => event,
    },
  },
  SpaceEvent: {
    __resolveType: (event) => (event.subject === "TODO" ? "TodoEvent" : "ListEvent"),
  },
  TodoEvent: {
    todoId: (event) => event.todoId ?? "",
    cursor: (event, _args, context) => context.realtime.cursors.encode(event.id),
  },
  ListEvent: {
    cursor: (event, _args, context) => context.realtime.cursors.encode(event.id),
  },
};

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

// The access check at subscribe reads through the policy client of a context
// of its own: the subscription's context lives as long as the subscription,
// and a client made in it would stay with it, unused, through every event
// (with thousands of subscriptions, most of their memory). One row by id,
// its id only: no loaders to make for a single read.
const readableList = async (context: GraphQLContext, listId: string) =>
  (await context.fresh().db.list.findFirst({ where: { id: listId }, select: { id: true } })) !== null;
const readableSpace = async (context: GraphQLContext, spaceId: string) =>
  (await context.fresh().db.space.findFirst({ where: { id: spaceId }, select: { id: true } })) !== null;

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

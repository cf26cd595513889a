import { requireViewer } from "../../context.js";
import { orNotFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { parsePageArgs } from "../../pagination/connection.js";
import { looksLikeId } from "../validation.js";
import { createList, deleteList, updateList } from "./service.js";

export const listResolvers: Resolvers = {
  Query: {
    list: (_parent, { id }, context) => {
      requireViewer(context);
      return looksLikeId(id) ? context.loaders.list.load(id) : null;
    },
  },
  Mutation: {
    createList: (_parent, { input }, context) => createList(context.db, requireViewer(context).id, input),
    updateList: (_parent, { id, input }, context) => {
      requireViewer(context);
      return updateList(context.db, id, input);
    },
    deleteList: (_parent, { id }, context) => {
      requireViewer(context);
      return deleteList(context.db, id);
    },
  },
  List: {
    owner: async (list, _args, context) => orNotFound(await context.loaders.user.load(list.ownerId), "User"),
    space: async (list, _args, context) => orNotFound(await context.loaders.space.load(list.spaceId), "Space"),
    todos: (list, { first, after, completed }, context) =>
      context.loaders.todosOfList(list.id, parsePageArgs(first, after, 50), completed ?? undefined),
  },
};

import type { Resolvers } from "../../generated/graphql.js";
import { parsePageArgs } from "../../pagination/connection.js";
import { selectedNodeFields } from "../../pagination/lookahead.js";
import { entityMutations, related, rowById } from "../resolve.js";
import { createList, deleteList, updateList } from "./service.js";

const mutations = entityMutations({ create: createList, update: updateList, delete: deleteList });

export const listResolvers: Resolvers = {
  Query: { list: rowById((loaders) => loaders.list) },
  Mutation: { createList: mutations.create, updateList: mutations.update, deleteList: mutations.delete },
  List: {
    owner: related("User", (loaders) => loaders.user, (list) => list.ownerId),
    space: related("Space", (loaders) => loaders.space, (list) => list.spaceId),
    todos: (list, { first, after, completed }, context, info) =>
      context.loaders.todosOfList(list.id, parsePageArgs(first, after, 50), completed ?? undefined, selectedNodeFields(info)),
  },
};

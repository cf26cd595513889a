import type { Resolvers } from "../../generated/graphql.js";
import { parsePageArgs } from "../../pagination/connection.js";
import { entityMutations, related, rowById } from "../resolve.js";
import { createList, deleteList, updateList } from "./service.js";

const mutations = entityMutations({ create: createList, update: updateList, delete: deleteList });

export const listResolvers: Resolvers = {
  Query: { list: rowById((loaders) => loaders.list) },
  Mutation: { createList: mutations.create, updateList: mutations.update, deleteList: mutations.delete },
  List: {
    owner: related("User", (list, loaders) => loaders.user.load(list.ownerId)),
    space: related("Space", (list, loaders) => loaders.space.load(list.spaceId)),
    todos: (list, { first, after, completed }, context) =>
      context.loaders.todosOfList(list.id, parsePageArgs(first, after, 50), completed ?? undefined),
  },
};

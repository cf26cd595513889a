import type { Resolvers } from "../../generated/graphql.js";
import { entityMutations, related, rowById } from "../resolve.js";
import { createTodo, deleteTodo, updateTodo } from "./service.js";

const mutations = entityMutations({ create: createTodo, update: updateTodo, delete: deleteTodo });

export const todoResolvers: Resolvers = {
  Query: { todo: rowById((loaders) => loaders.todo) },
  Mutation: { createTodo: mutations.create, updateTodo: mutations.update, deleteTodo: mutations.delete },
  Todo: {
    completed: (todo) => todo.completedAt !== null,
    owner: related("User", (loaders) => loaders.user, (todo) => todo.ownerId),
    list: related("List", (loaders) => loaders.list, (todo) => todo.listId),
  },
};

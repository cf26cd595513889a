import { requireViewer } from "../../context.js";
import { orNotFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { looksLikeId } from "../validation.js";
import { createTodo, deleteTodo, updateTodo } from "./service.js";

export const todoResolvers: Resolvers = {
  Query: {
    todo: (_parent, { id }, context) => {
      requireViewer(context);
      return looksLikeId(id) ? context.loaders.todo.load(id) : null;
    },
  },
  Mutation: {
    createTodo: (_parent, { input }, context) => createTodo(context.db, requireViewer(context).id, input),
    updateTodo: (_parent, { id, input }, context) => {
      requireViewer(context);
      return updateTodo(context.db, id, input);
    },
    deleteTodo: (_parent, { id }, context) => {
      requireViewer(context);
      return deleteTodo(context.db, id);
    },
  },
  Todo: {
    completed: (todo) => todo.completedAt !== null,
    owner: async (todo, _args, context) => orNotFound(await context.loaders.user.load(todo.ownerId), "User"),
    list: async (todo, _args, context) => orNotFound(await context.loaders.list.load(todo.listId), "List"),
  },
};

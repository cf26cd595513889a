import { requireViewer } from "../../context.js";
import type { Resolvers } from "../../generated/graphql.js";
import { looksLikeId } from "../validation.js";
import { updateMe } from "./service.js";

export const userResolvers: Resolvers = {
  Query: {
    me: (_parent, _args, context) => (context.viewer ? context.loaders.user.load(context.viewer.id) : null),
    user: (_parent, { id }, context) => {
      requireViewer(context);
      return looksLikeId(id) ? context.loaders.user.load(id) : null;
    },
  },
  Mutation: {
    signUp: (_parent, { input }, context) => context.auth.signUp(input, context.clientAddress),
    logIn: (_parent, { email, password }, context) => context.auth.logIn(email, password, context.clientAddress),
    updateMe: (_parent, { input }, context) => updateMe(context.db, requireViewer(context).id, input),
  },
};

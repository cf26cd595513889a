import type { Resolvers } from "../../generated/graphql.js";
import { rowById, signedIn } from "../resolve.js";
import { updateMe } from "./service.js";

export const userResolvers: Resolvers = {
  Query: {
    me: (_parent, _args, context) => (context.viewer ? context.loaders.user.load(context.viewer.id) : null),
    user: rowById((loaders) => loaders.user),
  },
  Mutation: {
    signUp: (_parent, { input }, context) => context.auth.signUp(input, context.client),
    logIn: (_parent, { email, password }, context) => context.auth.logIn(email, password, context.client),
    updateMe: signedIn(({ input }, { db }, viewer) => updateMe(db, viewer.id, input)),
  },
};

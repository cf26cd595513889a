import { requireViewer } from "../../context.js";
import { orNotFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { addSpaceMember, removeSpaceMember, updateSpaceMember } from "./service.js";

export const memberResolvers: Resolvers = {
  Mutation: {
    addSpaceMember: (_parent, { spaceId, email, role }, context) => {
      requireViewer(context);
      return addSpaceMember(context.db, context.loaders, context.auth, { spaceId, email, role: role ?? "USER" });
    },
    updateSpaceMember: (_parent, { id, role }, context) => {
      requireViewer(context);
      return updateSpaceMember(context.db, id, role);
    },
    removeSpaceMember: (_parent, { id }, context) => {
      requireViewer(context);
      return removeSpaceMember(context.db, id);
    },
  },
  SpaceMember: {
    user: async (member, _args, context) => orNotFound(await context.loaders.user.load(member.userId), "User"),
    space: async (member, _args, context) => orNotFound(await context.loaders.space.load(member.spaceId), "Space"),
  },
};

import { requireViewer } from "../../context.js";
import { notFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { parsePageArgs } from "../../pagination/connection.js";
import { looksLikeId } from "../validation.js";
import { createSpace, deleteSpace, spaceLookup, listSpaces, updateSpace } from "./service.js";

export const spaceResolvers: Resolvers = {
  Query: {
    spaces: (_parent, { first, after }, context) => {
      requireViewer(context);
      return listSpaces(context.db, parsePageArgs(first, after, 20));
    },
    space: async (_parent, args, context) => {
      requireViewer(context);
      const where = spaceLookup(args);
      if ("id" in where) return looksLikeId(where.id) ? context.loaders.space.load(where.id) : null;
      return context.db.space.findUnique({ where: { slug: where.slug } });
    },
  },
  Mutation: {
    createSpace: (_parent, { input }, context) => createSpace(context.db, requireViewer(context).id, input),
    updateSpace: (_parent, { id, input }, context) => {
      requireViewer(context);
      return updateSpace(context.db, id, input);
    },
    deleteSpace: (_parent, { id }, context) => {
      requireViewer(context);
      return deleteSpace(context.db, id);
    },
  },
  Space: {
    owner: (space, _args, context) => (space.ownerId ? context.loaders.user.load(space.ownerId) : null),
    viewerRole: async (space, _args, context) => {
      const membership = await context.loaders.viewerMembership.load(space.id);
      // A readable space always has the viewer as a member, unless it was just left.
      if (!membership) throw notFound("Space");
      return membership.role;
    },
    members: (space, _args, context) => context.loaders.membersOfSpace.load(space.id),
    lists: (space, { first, after }, context) =>
      context.loaders.listsOfSpace(space.id, parsePageArgs(first, after, 20)),
  },
};

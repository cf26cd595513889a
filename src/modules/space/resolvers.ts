import { notFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { parsePageArgs } from "../../pagination/connection.js";
import { selectedNodeFields } from "../../pagination/lookahead.js";
import { entityMutations, signedIn } from "../resolve.js";
import { looksLikeId } from "../validation.js";
import { createSpace, deleteSpace, listSpaces, spaceLookup, updateSpace } from "./service.js";

const mutations = entityMutations({ create: createSpace, update: updateSpace, delete: deleteSpace });

export const spaceResolvers: Resolvers = {
  Query: {
    spaces: signedIn(({ first, after }, { db }) => listSpaces(db, parsePageArgs(first, after, 20))),
    space: signedIn((args, { db, loaders }) => {
      const where = spaceLookup(args);
      if ("id" in where) return looksLikeId(where.id) ? loaders.space.load(where.id) : null;
      return db.space.findUnique({ where: { slug: where.slug } });
    }),
  },
  Mutation: { createSpace: mutations.create, updateSpace: mutations.update, deleteSpace: mutations.delete },
  Space: {
    owner: (space, _args, context) => (space.ownerId ? context.loaders.user.load(space.ownerId) : null),
    viewerRole: async (space, _args, context) => {
      const membership = await context.loaders.viewerMembership.load(space.id);
      // A readable space always has the viewer as a member, unless it was just left.
      if (!membership) throw notFound("Space");
      return membership.role;
    },
    members: (space, _args, context) => context.loaders.membersOfSpace.load(space.id),
    lists: (space, { first, after }, context, info) =>
      context.loaders.listsOfSpace(space.id, parsePageArgs(first, after, 20), selectedNodeFields(info)),
  },
};

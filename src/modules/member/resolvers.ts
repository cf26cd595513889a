import type { Resolvers } from "../../generated/graphql.js";
import { related, signedIn } from "../resolve.js";
import { addSpaceMember, removeSpaceMember, updateSpaceMember } from "./service.js";

export const memberResolvers: Resolvers = {
  Mutation: {
    addSpaceMember: signedIn(({ spaceId, email, role }, { db, loaders, auth }) =>
      addSpaceMember(db, auth, { spaceId, email, role: role ?? "USER" }),
    ),
    updateSpaceMember: signedIn(({ id, role }, { db }) => updateSpaceMember(db, id, role)),
    removeSpaceMember: signedIn(({ id }, { db }) => removeSpaceMember(db, id)),
  },
  SpaceMember: {
    user: related("User", (loaders) => loaders.user, (member) => member.userId),
    space: related("Space", (loaders) => loaders.space, (member) => member.spaceId),
  },
};

import type { Resolvers } from "../../generated/graphql.js";
import { signedIn } from "../resolve.js";

export const sessionResolvers: Resolvers = {
  Query: {
    sessions: signedIn((_args, { auth, db }) => auth.listSessions(db)),
  },
  Mutation: {
    // The refresh token is the credential: no bearer token is needed.
    refreshSession: (_parent, { refreshToken }, { auth }) => auth.refreshSession(refreshToken),
    logOut: signedIn((_args, { auth, db }, viewer) => auth.logOut(db, viewer)),
    endSession: signedIn(({ id }: { id: string }, { auth, db }) => auth.endSession(db, id)),
    endOtherSessions: signedIn((_args, { auth, db }, viewer) => auth.endOtherSessions(db, viewer)),
    changePassword: signedIn(({ currentPassword, newPassword }: { currentPassword: string; newPassword: string }, context, viewer) =>
      context.auth.changePassword(viewer, currentPassword, newPassword, context.client),
    ),
  },
  Session: {
    current: (session, _args, { viewer }) => session.id === viewer?.sessionId,
  },
};

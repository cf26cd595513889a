// Sign-up, log-in, refreshing and ending sessions, and changing the password.
// This module, with the policy engine, is one of the few allowed to use the
// raw Prisma client: it looks users up before anyone is signed in, and it
// alone writes password hashes.
import { conflict, invalidCredentials, unauthenticated } from "../../errors.js";
import type { User } from "../../generated/prisma/client.js";
import type { RawPrismaClient } from "../../db/database.js";
import { isDatabaseUnavailable, isUniqueViolation } from "../../db/prismaErrors.js";
import type { PolicyClient } from "../../policy/client.js";
import type { Viewer } from "../../policy/viewer.js";
import { normalizeEmail, optionalText, requirePassword } from "../validation.js";
import { decoyPasswordHash, hashPassword, verifyPassword } from "./passwords.js";
import type { AuthRateLimiter } from "./rateLimits.js";
import type { SessionCheck } from "./sessionCheck.js";
import { createSessions, type AuthResult, type ClientInfo } from "./sessions.js";
import type { TokenService } from "./tokens.js";

export type { AuthResult, ClientInfo } from "./sessions.js";

export interface SignUpInput {
  email: string;
  password: string;
  name?: string | null;
}

export function createAuthService(deps: {
  prisma: RawPrismaClient;
  tokens: TokenService;
  limiter: AuthRateLimiter;
  sessionCheck: SessionCheck;
  refreshTtlMs: number;
}) {
  const { prisma, tokens, limiter } = deps;
  const sessions = createSessions({ prisma, tokens, check: deps.sessionCheck, refreshTtlMs: deps.refreshTtlMs });

  /** The session of a signed-in viewer (every request-built viewer has one). */
  const sessionOf = (viewer: Viewer): string => {
    if (!viewer.sessionId) throw unauthenticated();
    return viewer.sessionId;
  };

  return {
    tokens,
    sessionCheck: deps.sessionCheck,

    /** The viewer a bearer token names, if its session is still active; UNAUTHENTICATED otherwise. */
    async authenticate(token: string) {
      const verified = await tokens.verify(token);
      await deps.sessionCheck.assertActive(verified.viewer.id, verified.viewer.sessionId);
      return verified;
    },

    async signUp(input: SignUpInput, client: ClientInfo): Promise<AuthResult> {
      const email = normalizeEmail(input.email);
      const password = requirePassword(input.password);
      const name = optionalText(input.name, "name", "Name", 100);
      const attempt = await limiter.consumeSignUp(client.address);
      const passwordHash = await hashPassword(password);
      try {
        // The user and their first session, together or not at all.
        return await prisma.$transaction(async (tx) => {
          const user = await tx.user.create({ data: { email, passwordHash, name } });
          return sessions.start(tx, user, client);
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict("That email is already registered.", "email");
        // Clients retry through an outage (ERRORS.md says they may): those
        // retries must not use up the address's sign-ups for the hour.
        if (isDatabaseUnavailable(error)) await attempt.refund().catch(() => undefined);
        throw error;
      }
    },

    async logIn(emailInput: string, password: string, client: ClientInfo): Promise<AuthResult> {
      // A malformed email cannot match an account: same answer as a wrong one.
      const email = emailInput.trim().toLowerCase();
      // Counted before the password is checked; a locked account or address
      // is refused here, whatever the password.
      const attempt = await limiter.startLogIn(email, client.address);
      let user: User | null;
      try {
        user = email.length <= 254 ? await prisma.user.findUnique({ where: { email } }) : null;
      } catch (error) {
        // No password was checked (typically the database is down): not a failure.
        await attempt.abandoned().catch(() => undefined);
        throw error;
      }
      const valid = await verifyPassword(user?.passwordHash ?? (await decoyPasswordHash()), password);
      if (!user || !valid) throw invalidCredentials();
      await attempt.succeeded();
      const signedIn = user;
      return prisma.$transaction((tx) => sessions.start(tx, signedIn, client));
    },

    refreshSession: (refreshToken: string) => sessions.refresh(refreshToken),

    listSessions: (db: PolicyClient) => sessions.list(db),

    async logOut(db: PolicyClient, viewer: Viewer): Promise<boolean> {
      await sessions.endOne(db, sessionOf(viewer), "LOGGED_OUT");
      return true;
    },

    endSession: (db: PolicyClient, id: string) => sessions.endOne(db, id, "ENDED"),

    endOtherSessions: (db: PolicyClient, viewer: Viewer) => sessions.endOthers(db, sessionOf(viewer)),

    /**
     * Rate limited as log-in is, on the same counters: guessing the current
     * password here is guessing it at logIn. The user row written is always
     * the viewer's own (ACCESS.md: update, the user is me); the password hash
     * is immutable through the policy client, so it is written here.
     */
    async changePassword(viewer: Viewer, currentPassword: string, newPasswordInput: string, client: ClientInfo): Promise<AuthResult> {
      const sessionId = sessionOf(viewer);
      const newPassword = requirePassword(newPasswordInput, "newPassword");
      const user = await prisma.user.findUnique({ where: { id: viewer.id } });
      if (!user) throw unauthenticated();
      const attempt = await limiter.startLogIn(user.email, client.address);
      if (!(await verifyPassword(user.passwordHash, currentPassword))) {
        throw unauthenticated("The current password is wrong.");
      }
      await attempt.succeeded();
      const passwordHash = await hashPassword(newPassword);
      const { result, ended } = await prisma.$transaction(async (tx) => {
        const updated = await tx.user.update({ where: { id: user.id }, data: { passwordHash } });
        return sessions.afterPasswordChange(tx, updated, sessionId);
      });
      deps.sessionCheck.announceEnded(ended);
      return result();
    },

    /** For adding members by email; callers authorise before asking. */
    async userIdByEmail(email: string): Promise<string | undefined> {
      const user = await prisma.user.findUnique({ where: { email }, select: { id: true } });
      return user?.id;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;

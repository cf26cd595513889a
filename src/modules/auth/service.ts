// Sign-up and log-in. This module, with the policy engine, is one of the few
// allowed to use the raw Prisma client: it looks users up before anyone is
// signed in.
import { conflict, invalidCredentials } from "../../errors.js";
import type { User } from "../../generated/prisma/client.js";
import type { RawPrismaClient } from "../../db/database.js";
import { isDatabaseUnavailable, isUniqueViolation } from "../../db/prismaErrors.js";
import { normalizeEmail, optionalText, requirePassword } from "../validation.js";
import { decoyPasswordHash, hashPassword, verifyPassword } from "./passwords.js";
import type { AuthRateLimiter } from "./rateLimits.js";
import type { TokenService } from "./tokens.js";

export interface AuthResult {
  token: string;
  user: User;
}

export interface SignUpInput {
  email: string;
  password: string;
  name?: string | null;
}

export function createAuthService(prisma: RawPrismaClient, tokens: TokenService, limiter: AuthRateLimiter) {
  return {
    tokens,

    async signUp(input: SignUpInput, clientAddress: string): Promise<AuthResult> {
      const email = normalizeEmail(input.email);
      const password = requirePassword(input.password);
      const name = optionalText(input.name, "name", "Name", 100);
      const attempt = await limiter.consumeSignUp(clientAddress);
      const passwordHash = await hashPassword(password);
      try {
        const user = await prisma.user.create({ data: { email, passwordHash, name } });
        return { token: await tokens.issue(user.id), user };
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict("That email is already registered.", "email");
        // Clients retry through an outage (ERRORS.md says they may): those
        // retries must not use up the address's sign-ups for the hour.
        if (isDatabaseUnavailable(error)) await attempt.refund().catch(() => undefined);
        throw error;
      }
    },

    async logIn(emailInput: string, password: string, clientAddress: string): Promise<AuthResult> {
      // A malformed email cannot match an account: same answer as a wrong one.
      const email = emailInput.trim().toLowerCase();
      // Counted before the password is checked; a locked account or address
      // is refused here, whatever the password.
      const attempt = await limiter.startLogIn(email, clientAddress);
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
      return { token: await tokens.issue(user.id), user };
    },

    /** For adding members by email; callers authorise before asking. */
    async userIdByEmail(email: string): Promise<string | undefined> {
      const user = await prisma.user.findUnique({ where: { email }, select: { id: true } });
      return user?.id;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;

// Sessions: one per signed-in device or client. signUp and logIn start one;
// its access token (tokens.ts, JWT_TTL) names it, and a refresh token renews
// it. Refresh tokens are single-use and rotated on every refreshSession
// (refresh-token rotation with reuse detection, as the OAuth 2.0 security
// BCP describes): presenting one that was already used means two parties
// hold the session's tokens, and the whole session ends.
//
// Refresh tokens are 256 random bits; only their SHA-256 is stored (a
// token of that entropy needs no slow hash). Starting and renewing sessions
// happens before there is a viewer, on the raw client; listing and ending
// them goes through the policy client (rules.ts: only my own).
import { createHash, randomBytes } from "node:crypto";
import type { Prisma, Session, SessionEndReason, User } from "../../generated/prisma/client.js";
import type { RawPrismaClient } from "../../db/database.js";
import type { PolicyClient } from "../../policy/client.js";
import { notFound, unauthenticated } from "../../errors.js";
import { looksLikeId } from "../validation.js";
import type { SessionCheck } from "./sessionCheck.js";
import { SESSION_ENDED_MESSAGE } from "./sessionCheck.js";
import type { TokenService } from "./tokens.js";

/** Where a sign-in comes from; the user agent is shown in `sessions`. */
export interface ClientInfo {
  address: string;
  userAgent: string | null;
}

export interface AuthResult {
  token: string;
  tokenExpiresAt: Date;
  refreshToken: string;
  user: User;
}

/** User-Agent headers are kept to this length. */
const USER_AGENT_MAX = 512;
const REFRESH_TOKEN_BYTES = 32;

export const REFRESH_TOKEN_INVALID = "This refresh token is not valid. Sign in again.";
export const REFRESH_TOKEN_REUSED =
  "This refresh token was already used, so the session has been ended in case someone else has it. Sign in again.";

export const hashRefreshToken = (token: string) => createHash("sha256").update(token).digest("base64url");

function newRefreshToken() {
  const token = randomBytes(REFRESH_TOKEN_BYTES).toString("base64url");
  return { token, hash: hashRefreshToken(token) };
}

const isActive = (session: Pick<Session, "endedAt" | "expiresAt">, now: Date) =>
  session.endedAt === null && session.expiresAt > now;

/** The `where` of a session that has not ended or expired, as of `now`. */
const activeWhere = (now: Date): Prisma.SessionWhereInput => ({ endedAt: null, expiresAt: { gt: now } });

export function createSessions(deps: {
  prisma: RawPrismaClient;
  tokens: TokenService;
  check: SessionCheck;
  refreshTtlMs: number;
}) {
  const { tokens, check } = deps;
  const expiresFrom = (now: Date) => new Date(now.getTime() + deps.refreshTtlMs);

  const authResult = async (user: User, sessionId: string, refreshToken: string): Promise<AuthResult> => {
    const { token, expiresAt } = await tokens.issue(user.id, sessionId);
    return { token, tokenExpiresAt: expiresAt, refreshToken, user };
  };

  /**
   * A new refresh token for an active session of `userId`, and REFRESH_TOKEN_TTL
   * more for the session; UNAUTHENTICATED if it ended meanwhile (logOut on
   * another device), which rolls the caller's transaction back.
   */
  const renew = async (tx: Prisma.TransactionClient, sessionId: string, userId: string, now: Date): Promise<string> => {
    const next = newRefreshToken();
    await tx.refreshToken.create({ data: { hash: next.hash, sessionId } });
    const renewed = await tx.session.updateMany({
      where: { id: sessionId, userId, ...activeWhere(now) },
      data: { lastUsedAt: now, expiresAt: expiresFrom(now) },
    });
    if (renewed.count === 0) throw unauthenticated(SESSION_ENDED_MESSAGE);
    return next.token;
  };

  /** Ends sessions through the policy client (only the viewer's own), and tells every instance. */
  const end = async (db: PolicyClient, where: Prisma.SessionWhereInput, reason: SessionEndReason) => {
    const now = new Date();
    const ended = await db.$transaction(async (tx) => {
      const sessions = await tx.session.findMany({ where: { AND: [where, activeWhere(now)] }, select: { id: true } });
      for (const { id } of sessions) {
        await tx.session.update({ where: { id, endedAt: null }, data: { endedAt: now, endReason: reason } });
      }
      return sessions.map((session) => session.id);
    });
    check.announceEnded(ended);
    return ended;
  };

  return {
    /** Starts a session for `user` in `tx` (the transaction that signs them in). */
    async start(tx: Prisma.TransactionClient, user: User, client: ClientInfo): Promise<AuthResult> {
      const refresh = newRefreshToken();
      const session = await tx.session.create({
        data: {
          userId: user.id,
          userAgent: client.userAgent?.slice(0, USER_AGENT_MAX) || null,
          expiresAt: expiresFrom(new Date()),
          refreshTokens: { create: { hash: refresh.hash } },
        },
        select: { id: true },
      });
      return authResult(user, session.id, refresh.token);
    },

    /**
     * A new access token and refresh token for the session `refreshToken`
     * belongs to. A refresh token used before ends its session: the reuse is
     * committed, then refused.
     */
    async refresh(refreshToken: string): Promise<AuthResult> {
      const hash = hashRefreshToken(refreshToken);
      const now = new Date();
      const outcome = await deps.prisma.$transaction(async (tx) => {
        const stored = await tx.refreshToken.findUnique({ where: { hash }, include: { session: { include: { user: true } } } });
        if (!stored) return { kind: "unknown" } as const;
        const { session } = stored;
        if (!isActive(session, now)) return { kind: "ended" } as const;
        // Atomic claim: of two refreshes with one token, exactly one gets it,
        // and the other is the reuse it is.
        const claimed = await tx.refreshToken.updateMany({ where: { hash, usedAt: null }, data: { usedAt: now } });
        if (claimed.count === 0) {
          await tx.session.updateMany({
            where: { id: session.id, endedAt: null },
            data: { endedAt: now, endReason: "REFRESH_TOKEN_REUSED" },
          });
          return { kind: "reused", sessionId: session.id } as const;
        }
        const next = await renew(tx, session.id, session.userId, now);
        return { kind: "renewed", user: session.user, sessionId: session.id, refreshToken: next } as const;
      });
      switch (outcome.kind) {
        case "unknown":
          throw unauthenticated(REFRESH_TOKEN_INVALID);
        case "ended":
          throw unauthenticated(SESSION_ENDED_MESSAGE);
        case "reused":
          check.announceEnded([outcome.sessionId]);
          throw unauthenticated(REFRESH_TOKEN_REUSED);
        case "renewed":
          return authResult(outcome.user, outcome.sessionId, outcome.refreshToken);
      }
    },

    /**
     * In the transaction that changed the password: ends every other session
     * of the user, and gives this one a new refresh token (retiring the old
     * ones, so a copy of one taken before the change is a reuse).
     */
    async afterPasswordChange(tx: Prisma.TransactionClient, user: User, sessionId: string): Promise<{ result: () => Promise<AuthResult>; ended: string[] }> {
      const now = new Date();
      const others = await tx.session.findMany({
        where: { userId: user.id, id: { not: sessionId }, ...activeWhere(now) },
        select: { id: true },
      });
      await tx.session.updateMany({
        where: { id: { in: others.map((session) => session.id) }, endedAt: null },
        data: { endedAt: now, endReason: "PASSWORD_CHANGED" },
      });
      await tx.refreshToken.updateMany({ where: { sessionId, usedAt: null }, data: { usedAt: now } });
      const next = await renew(tx, sessionId, user.id, now);
      return { result: () => authResult(user, sessionId, next), ended: others.map((session) => session.id) };
    },

    /** The viewer's active sessions, newest first. */
    list: (db: PolicyClient) =>
      db.session.findMany({ where: activeWhere(new Date()), orderBy: [{ createdAt: "desc" }, { id: "desc" }] }),

    /** Ends one of the viewer's sessions; NOT_FOUND for anyone else's, or one already over. */
    async endOne(db: PolicyClient, id: string, reason: SessionEndReason): Promise<string> {
      if (!looksLikeId(id)) throw notFound("Session");
      const [ended] = await end(db, { id }, reason);
      if (!ended) throw notFound("Session");
      return ended;
    },

    /** Ends every session of the viewer but `keep`; how many ended. */
    async endOthers(db: PolicyClient, keep: string): Promise<number> {
      return (await end(db, { id: { not: keep } }, "ENDED")).length;
    },

    check,
  };
}

export type Sessions = ReturnType<typeof createSessions>;

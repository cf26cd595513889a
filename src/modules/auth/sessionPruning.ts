// Sessions that ended or expired, and refresh tokens used long ago, are kept
// for a while and then deleted, so the tables do not grow with every sign-in
// and every refresh forever. "A while" is REFRESH_TOKEN_TTL: a used refresh
// token presented within that time is still recognised as a reuse (and ends
// its session); one presented later is only an unknown token, refused all the
// same. An ended session's row stays that long too, then goes with its tokens.
import type { RawPrismaClient } from "../../db/database.js";
import type { Logger } from "../../logger.js";
import { recurringFailure } from "../../recurringFailure.js";

const PRUNE_EVERY_MS = 60 * 60 * 1000;

export async function pruneSessions(prisma: RawPrismaClient, keepMs: number, now = new Date()) {
  const before = new Date(now.getTime() - keepMs);
  const sessions = await prisma.session.deleteMany({
    where: { OR: [{ endedAt: { lt: before } }, { expiresAt: { lt: before } }] },
  });
  const refreshTokens = await prisma.refreshToken.deleteMany({ where: { usedAt: { lt: before } } });
  return { sessions: sessions.count, refreshTokens: refreshTokens.count };
}

/** Prunes once an hour (and once at start), until closed. */
export function startSessionPruning(prisma: RawPrismaClient, keepMs: number, logger: Logger) {
  const failures = recurringFailure(logger, "pruning sessions");
  const prune = () =>
    pruneSessions(prisma, keepMs).then(
      (pruned) => {
        failures.recovered();
        if (pruned.sessions || pruned.refreshTokens) logger.debug(pruned, "pruned sessions");
      },
      (error: unknown) => failures.failed(error),
    );
  void prune();
  const timer = setInterval(() => void prune(), PRUNE_EVERY_MS);
  timer.unref();
  return { close: async () => clearInterval(timer) };
}

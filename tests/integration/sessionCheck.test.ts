// The session check (src/modules/auth/sessionCheck.ts) reads the sessions
// asked for within one turn of the event loop together: one statement for a
// burst of sockets connecting at once, each answered as its own session
// stands. On the test database, through a client that counts what the check
// asks of the Session table and passes every call on to the real one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { createSessionCheck, TOUCH_EVERY_MS, type SessionCheck } from "../../src/modules/auth/sessionCheck.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let prisma: RawPrismaClient;
let sequence = 0;

beforeAll(async () => {
  server = await startTestServer();
  prisma = server.database.prisma;
});
afterAll(async () => {
  await server?.close();
});

/** The real client, with the calls made on `session` counted by method. */
function countingSessions(): { client: RawPrismaClient; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const sessions = new Proxy(prisma.session, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.set(String(property), (calls.get(String(property)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const client = new Proxy(prisma, {
    get: (target, property, receiver) => (property === "session" ? sessions : Reflect.get(target, property, receiver)),
  });
  return { client, calls };
}

type SessionShape = { ended?: boolean; expired?: boolean; lastUsedMsAgo?: number };

/** A user with one session of the given shape: its ids. */
async function sessionOf(shape: SessionShape = {}): Promise<{ userId: string; sessionId: string }> {
  const n = ++sequence;
  const user = await prisma.user.create({ data: { email: `check-${process.pid}-${n}@example.com`, passwordHash: "not-a-hash" } });
  const now = Date.now();
  const session = await prisma.session.create({
    data: {
      userId: user.id,
      expiresAt: new Date(shape.expired ? now - 1000 : now + 3_600_000),
      lastUsedAt: new Date(now - (shape.lastUsedMsAgo ?? 0)),
      ...(shape.ended ? { endedAt: new Date(now - 1000), endReason: "LOGGED_OUT" as const } : {}),
    },
  });
  return { userId: user.id, sessionId: session.id };
}

const checks: SessionCheck[] = [];
function newCheck(client: RawPrismaClient): SessionCheck {
  const check = createSessionCheck(client, { cacheTtlMs: 4000, redisUrl: undefined }, server.logger);
  checks.push(check);
  return check;
}
afterAll(async () => {
  await Promise.all(checks.map((check) => check.close()));
});

describe("the session check", () => {
  it("reads the sessions of a burst of connections in one statement", async () => {
    const sessions = await Promise.all(Array.from({ length: 40 }, () => sessionOf()));
    const { client, calls } = countingSessions();
    const check = newCheck(client);
    await Promise.all(sessions.map(({ userId, sessionId }) => check.assertActive(userId, sessionId)));
    expect(Object.fromEntries(calls)).toEqual({ findMany: 1 });
    // Remembered for the TTL: asked again, nothing is read.
    await Promise.all(sessions.map(({ userId, sessionId }) => check.assertActive(userId, sessionId)));
    expect(Object.fromEntries(calls)).toEqual({ findMany: 1 });
  });

  it("answers each session of one read as it stands: ended, expired, unknown or another user's are refused", async () => {
    const active = await sessionOf();
    const ended = await sessionOf({ ended: true });
    const expired = await sessionOf({ expired: true });
    const { client, calls } = countingSessions();
    const check = newCheck(client);
    const outcomes = await Promise.allSettled([
      check.assertActive(active.userId, active.sessionId),
      check.assertActive(ended.userId, ended.sessionId),
      check.assertActive(expired.userId, expired.sessionId),
      check.assertActive(active.userId, "no-such-session"),
      check.assertActive(ended.userId, active.sessionId),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "rejected", "rejected", "rejected", "rejected"]);
    for (const outcome of outcomes.slice(1)) {
      expect((outcome as PromiseRejectedResult).reason.extensions?.code).toBe("UNAUTHENTICATED");
    }
    expect(Object.fromEntries(calls)).toEqual({ findMany: 1 });
  });

  it("reads a session once however many requests ask for it at once", async () => {
    const { userId, sessionId } = await sessionOf();
    const { client, calls } = countingSessions();
    const check = newCheck(client);
    await Promise.all(Array.from({ length: 25 }, () => check.assertActive(userId, sessionId)));
    expect(Object.fromEntries(calls)).toEqual({ findMany: 1 });
  });

  it("records lastUsedAt of the sessions of one read last used long ago in one statement, and of those only", async () => {
    const stale = await Promise.all(Array.from({ length: 5 }, () => sessionOf({ lastUsedMsAgo: TOUCH_EVERY_MS + 60_000 })));
    const fresh = await sessionOf({ lastUsedMsAgo: 1000 });
    const before = new Map(
      (await prisma.session.findMany({ where: { id: { in: [...stale, fresh].map((s) => s.sessionId) } } })).map((row) => [row.id, row.lastUsedAt.getTime()]),
    );
    const { client, calls } = countingSessions();
    const check = newCheck(client);
    await Promise.all([...stale, fresh].map(({ userId, sessionId }) => check.assertActive(userId, sessionId)));
    // The touch is not waited for by the check.
    for (let attempt = 0; attempt < 100 && (calls.get("updateMany") ?? 0) === 0; attempt++) await new Promise((r) => setTimeout(r, 20));
    const touched = async () =>
      (await prisma.session.findMany({ where: { id: { in: stale.map((s) => s.sessionId) } } })).every((row) => row.lastUsedAt.getTime() > before.get(row.id)!);
    for (let attempt = 0; attempt < 100 && !(await touched()); attempt++) await new Promise((r) => setTimeout(r, 20));
    expect(await touched()).toBe(true);
    const freshNow = await prisma.session.findUniqueOrThrow({ where: { id: fresh.sessionId } });
    expect(freshNow.lastUsedAt.getTime()).toBe(before.get(fresh.sessionId));
    expect(Object.fromEntries(calls)).toEqual({ findMany: 1, updateMany: 1 });
  });
});

// Sessions end to end over HTTP and WebSocket, on the database the suite runs
// on: starting them (signUp, logIn), renewing them (refreshSession, with
// rotation and reuse detection), listing and ending them (sessions, logOut,
// endSession, endOtherSessions, changePassword), and what an ended session's
// tokens and sockets get. Every refusal is checked to change nothing.
import { SignJWT, decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, postGraphQL, startTestServer, TEST_JWT_SECRET, uniqueEmail, type TestServer } from "../helpers/server.js";
import { connect, eventually, type Connection } from "../realtime/helpers.js";
import { pruneSessions } from "../../src/modules/auth/sessionPruning.js";

const PASSWORD = "correct-horse-1";
// A low per-(account, address) limit, so changePassword's lock-out is reached in a few attempts.
const LOGIN_LIMIT = 4;

let server: TestServer;
const connections: Connection[] = [];
beforeAll(async () => {
  server = await startTestServer({ env: { RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: String(LOGIN_LIMIT) } });
});
afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.dispose()));
  await server?.close();
});

interface Payload {
  token: string;
  tokenExpiresAt: string;
  refreshToken: string;
  user: { id: string; email: string };
}
const PAYLOAD = `token tokenExpiresAt refreshToken user { id email }`;
const SIGN_UP = `mutation ($input: SignUpInput!) { signUp(input: $input) { ${PAYLOAD} } }`;
const LOG_IN = `mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { ${PAYLOAD} } }`;
const REFRESH = `mutation ($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { ${PAYLOAD} } }`;
const SESSIONS = `{ sessions { id createdAt lastUsedAt userAgent current } }`;
const CHANGE_PASSWORD = `mutation ($current: String!, $next: String!) { changePassword(currentPassword: $current, newPassword: $next) { ${PAYLOAD} } }`;
const ME = `{ me { id } }`;

interface SessionRow {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string | null;
  current: boolean;
}

/** A GraphQL request with a User-Agent of our choosing. */
async function gqlAs(userAgent: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": userAgent },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, Payload>; errors?: { extensions?: { code?: string } }[] };
}

async function newUser(userAgent = "sessions-test/1.0") {
  const email = uniqueEmail("sessions");
  const result = await gqlAs(userAgent, SIGN_UP, { input: { email, password: PASSWORD } });
  if (!result.data?.signUp) throw new Error(`signUp failed: ${JSON.stringify(result.errors)}`);
  return { ...result.data.signUp, email };
}

async function logIn(email: string, password = PASSWORD, userAgent = "sessions-test/1.0"): Promise<Payload> {
  const result = await gqlAs(userAgent, LOG_IN, { email, password });
  if (!result.data?.logIn) throw new Error(`logIn failed: ${JSON.stringify(result.errors)}`);
  return result.data.logIn;
}

const sessionIdOf = (token: string) => String(decodeJwt(token).sid);

async function sessionsOf(token: string): Promise<SessionRow[]> {
  const result = await server.gql<{ sessions: SessionRow[] }>(SESSIONS, {}, token);
  if (!result.data) throw new Error(`sessions failed: ${JSON.stringify(result.errors)}`);
  return result.data.sessions;
}

/** Everything stored about a user's sessions, to show that a refusal changed nothing. */
const stored = (userId: string) =>
  server.database.prisma.session.findMany({
    where: { userId },
    orderBy: { id: "asc" },
    include: { refreshTokens: { orderBy: { hash: "asc" } } },
  });

const accepted = async (token: string) => (await server.gql<{ me: { id: string } | null }>(ME, {}, token)).data?.me?.id !== undefined;

/** The request is refused outright with 401 UNAUTHENTICATED; returns the message. */
async function refused(token: string): Promise<string> {
  const result = await server.gql(ME, {}, token);
  expect(result.status).toBe(401);
  expect(errorCode(result)).toBe("UNAUTHENTICATED");
  return result.errors?.[0]?.message ?? "";
}

function open(token: string) {
  const connection = connect(server, token);
  connections.push(connection);
  return connection;
}

/** Resolves once the connection is acknowledged (a query over it answers). */
async function acknowledged(connection: Connection) {
  const answer = await new Promise<unknown>((resolve, reject) =>
    connection.client.subscribe({ query: ME }, { next: resolve, error: reject, complete: () => undefined }),
  );
  expect(answer).toMatchObject({ data: { me: { id: expect.any(String) } } });
}

describe("starting a session", () => {
  it("signUp and logIn each start one, with a short-lived token, a refresh token and the User-Agent", async () => {
    const user = await newUser("Browser A");
    const started = Date.now();
    const second = await logIn(user.email, PASSWORD, "Browser B");
    for (const payload of [user, second]) {
      expect(payload.refreshToken).toMatch(/^[\w-]{43}$/);
      const expiresAt = Date.parse(payload.tokenExpiresAt);
      // JWT_TTL defaults to 15 minutes; the token's exp claim says the same.
      expect(expiresAt).toBeGreaterThan(started + 14 * 60_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 15 * 60_000);
      expect(decodeJwt(payload.token).exp).toBe(expiresAt / 1000);
    }
    expect(sessionIdOf(user.token)).not.toBe(sessionIdOf(second.token));

    // Newest first; `current` marks the session of the token asking.
    const seen = await sessionsOf(second.token);
    expect(seen.map((s) => [s.id, s.userAgent, s.current])).toEqual([
      [sessionIdOf(second.token), "Browser B", true],
      [sessionIdOf(user.token), "Browser A", false],
    ]);
    expect((await sessionsOf(user.token)).map((s) => s.current)).toEqual([false, true]);
    // The refresh token itself is never stored, only its SHA-256.
    const rows = await stored(user.user.id);
    expect(rows.flatMap((row) => row.refreshTokens.map((t) => t.hash))).not.toContain(user.refreshToken);
    expect(rows.flatMap((row) => row.refreshTokens)).toHaveLength(2);
  });

  it("refuses a token issued before sessions (no session claim) with a clear UNAUTHENTICATED, over HTTP and WebSocket", async () => {
    const user = await newUser();
    const old = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(user.user.id)
      .setIssuer("todo-graphql-server")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await refused(old)).toMatch(/issued before sessions.*Sign in again/);
    expect((await open(old).closed).code).toBe(4403);
  });

  it("lets only the session operations' owners call them: anonymous callers get UNAUTHENTICATED", async () => {
    for (const query of [
      SESSIONS,
      `mutation { logOut }`,
      `mutation { endSession(id: "abc") }`,
      `mutation { endOtherSessions }`,
      `mutation { changePassword(currentPassword: "x", newPassword: "long-enough-1") { token } }`,
    ]) {
      expect(errorCode(await server.gql(query)), query).toBe("UNAUTHENTICATED");
    }
  });
});

describe("refreshSession", () => {
  it("rotates: a new token and refresh token in the same session; the old access token lives out its time", async () => {
    const user = await newUser();
    const [before] = await stored(user.user.id);
    const result = await postGraphQL<{ refreshSession: Payload }>(server.url, REFRESH, { refreshToken: user.refreshToken });
    expect(result.errors).toBeUndefined();
    const renewed = result.data!.refreshSession;
    expect(renewed.user.id).toBe(user.user.id);
    expect(sessionIdOf(renewed.token)).toBe(sessionIdOf(user.token));
    expect(renewed.refreshToken).not.toBe(user.refreshToken);
    expect(await accepted(renewed.token)).toBe(true);
    expect(await accepted(user.token)).toBe(true);

    const [after] = await stored(user.user.id);
    expect(after!.lastUsedAt.getTime()).toBeGreaterThanOrEqual(before!.lastUsedAt.getTime());
    expect(after!.expiresAt.getTime()).toBeGreaterThan(before!.expiresAt.getTime());
    expect(after!.refreshTokens.filter((t) => t.usedAt === null)).toHaveLength(1);

    // And again with the new one.
    const again = await postGraphQL<{ refreshSession: Payload }>(server.url, REFRESH, { refreshToken: renewed.refreshToken });
    expect(again.data?.refreshSession.user.id).toBe(user.user.id);
  });

  it("ends the whole session when a used refresh token comes back: every token of it is refused from then on", async () => {
    const user = await newUser();
    const other = await logIn(user.email);
    const renewed = (await postGraphQL<{ refreshSession: Payload }>(server.url, REFRESH, { refreshToken: user.refreshToken })).data!
      .refreshSession;
    const socket = open(renewed.token);
    await acknowledged(socket);

    // The first refresh token again: someone else has a copy.
    const reused = await postGraphQL(server.url, REFRESH, { refreshToken: user.refreshToken });
    expect(errorCode(reused)).toBe("UNAUTHENTICATED");
    expect(reused.errors?.[0]?.message).toMatch(/already used.*session has been ended/);

    expect(await refused(user.token)).toMatch(/session has ended/);
    expect(await refused(renewed.token)).toMatch(/session has ended/);
    expect(errorCode(await postGraphQL(server.url, REFRESH, { refreshToken: renewed.refreshToken }))).toBe("UNAUTHENTICATED");
    expect(await socket.closed).toEqual({ code: 4403, reason: "Forbidden: session ended" });
    const [ended] = (await stored(user.user.id)).filter((row) => row.id === sessionIdOf(user.token));
    expect(ended).toMatchObject({ endReason: "REFRESH_TOKEN_REUSED", endedAt: expect.any(Date) });
    // The user's other session is untouched.
    expect((await sessionsOf(other.token)).map((s) => s.id)).toEqual([sessionIdOf(other.token)]);
  });

  it("gives exactly one of two concurrent refreshes with the same token, and treats the other as the reuse it is", async () => {
    const user = await newUser();
    const results = await Promise.all([1, 2].map(() => postGraphQL<{ refreshSession: Payload }>(server.url, REFRESH, { refreshToken: user.refreshToken })));
    expect(results.map((result) => errorCode(result) ?? "ok").sort()).toEqual(["UNAUTHENTICATED", "ok"]);
    const winner = results.find((result) => result.data?.refreshSession)!.data!.refreshSession;
    expect(await refused(winner.token)).toMatch(/session has ended/);
  });

  it("refuses an unknown refresh token, or one of an ended or expired session, and changes nothing", async () => {
    const user = await newUser();
    const before = await stored(user.user.id);
    for (const refreshToken of ["", "not-a-refresh-token", user.refreshToken.slice(0, -1) + (user.refreshToken.endsWith("A") ? "B" : "A"), user.token]) {
      const result = await postGraphQL(server.url, REFRESH, { refreshToken });
      expect(errorCode(result), refreshToken).toBe("UNAUTHENTICATED");
      expect(result.errors?.[0]?.message).toMatch(/not valid/);
    }
    expect(await stored(user.user.id)).toEqual(before);
    expect(await accepted(user.token)).toBe(true);

    // Expired: not refreshed within REFRESH_TOKEN_TTL.
    const expiring = await newUser();
    await server.database.prisma.session.update({ where: { id: sessionIdOf(expiring.token) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expiredBefore = await stored(expiring.user.id);
    expect(errorCode(await postGraphQL(server.url, REFRESH, { refreshToken: expiring.refreshToken }))).toBe("UNAUTHENTICATED");
    expect(await stored(expiring.user.id)).toEqual(expiredBefore);
  });
});

describe("ending sessions", () => {
  it("logOut ends the caller's session only: its token, refresh token and sockets stop working", async () => {
    const user = await newUser();
    const other = await logIn(user.email);
    const socket = open(user.token);
    const otherSocket = open(other.token);
    await acknowledged(socket);
    await acknowledged(otherSocket);

    const result = await server.gql<{ logOut: boolean }>(`mutation { logOut }`, {}, user.token);
    expect(result.data).toEqual({ logOut: true });
    expect(await refused(user.token)).toBe("This session has ended. Sign in again.");
    expect(errorCode(await postGraphQL(server.url, REFRESH, { refreshToken: user.refreshToken }))).toBe("UNAUTHENTICATED");
    expect(await socket.closed).toEqual({ code: 4403, reason: "Forbidden: session ended" });
    const reopened = open(user.token);
    expect((await reopened.closed).code).toBe(4403);

    expect(await accepted(other.token)).toBe(true);
    await acknowledged(otherSocket);
    expect((await sessionsOf(other.token)).map((s) => s.id)).toEqual([sessionIdOf(other.token)]);
    const [row] = (await stored(user.user.id)).filter((r) => r.id === sessionIdOf(user.token));
    expect(row?.endReason).toBe("LOGGED_OUT");
  });

  it("endSession ends one of mine and returns its id; another user's, an ended one or a malformed id is NOT_FOUND and changes nothing", async () => {
    const me = await newUser();
    const laptop = await logIn(me.email);
    const stranger = await newUser();

    const ended = await server.gql<{ endSession: string }>(`mutation ($id: ID!) { endSession(id: $id) }`, { id: sessionIdOf(laptop.token) }, me.token);
    expect(ended.data).toEqual({ endSession: sessionIdOf(laptop.token) });
    expect(await refused(laptop.token)).toMatch(/session has ended/);
    expect(await accepted(me.token)).toBe(true);

    const mine = await stored(me.user.id);
    const theirs = await stored(stranger.user.id);
    for (const id of [sessionIdOf(stranger.token), sessionIdOf(laptop.token), "no-such-session", "x".repeat(500)]) {
      const result = await server.gql(`mutation ($id: ID!) { endSession(id: $id) }`, { id }, me.token);
      expect(errorCode(result), id).toBe("NOT_FOUND");
      expect(result.errors?.[0]?.message).toBe("Session not found.");
    }
    expect(await stored(me.user.id)).toEqual(mine);
    expect(await stored(stranger.user.id)).toEqual(theirs);
    expect(await accepted(stranger.token)).toBe(true);
    // Nor does anyone see another user's sessions.
    expect((await sessionsOf(me.token)).map((s) => s.id)).toEqual([sessionIdOf(me.token)]);
  });

  it("endSession may end the caller's own current session", async () => {
    const me = await newUser();
    const result = await server.gql(`mutation ($id: ID!) { endSession(id: $id) }`, { id: sessionIdOf(me.token) }, me.token);
    expect(result.data).toEqual({ endSession: sessionIdOf(me.token) });
    expect(await refused(me.token)).toMatch(/session has ended/);
  });

  it("endOtherSessions ends all but the current one and says how many", async () => {
    const me = await newUser();
    const others = [await logIn(me.email), await logIn(me.email)];
    const stranger = await newUser();
    const sockets = others.map((other) => open(other.token));
    await Promise.all(sockets.map(acknowledged));

    const result = await server.gql<{ endOtherSessions: number }>(`mutation { endOtherSessions }`, {}, me.token);
    expect(result.data).toEqual({ endOtherSessions: 2 });
    for (const other of others) expect(await refused(other.token)).toMatch(/session has ended/);
    for (const socket of sockets) expect((await socket.closed).code).toBe(4403);
    expect(await accepted(me.token)).toBe(true);
    expect(await accepted(stranger.token)).toBe(true);
    expect((await sessionsOf(me.token)).map((s) => s.id)).toEqual([sessionIdOf(me.token)]);
    expect((await server.gql(`mutation { endOtherSessions }`, {}, me.token)).data).toEqual({ endOtherSessions: 0 });
  });

  it("refuses a session ended behind the server's back (no announcement) within 5 s, and closes its sockets", async () => {
    const me = await newUser();
    const socket = open(me.token);
    await acknowledged(socket);
    expect(await accepted(me.token)).toBe(true);
    // As another instance would, with the bus message lost.
    await server.database.prisma.session.update({ where: { id: sessionIdOf(me.token) }, data: { endedAt: new Date(), endReason: "ENDED" } });
    const started = Date.now();
    await eventually(async () => !(await accepted(me.token)), "the token refused", 5000);
    const closed = await socket.closed;
    expect(closed.code).toBe(4403);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("changePassword", () => {
  it("changes the password, ends every other session and returns fresh tokens for this one", async () => {
    const me = await newUser();
    const other = await logIn(me.email);
    const otherSocket = open(other.token);
    await acknowledged(otherSocket);

    const result = await server.gql<{ changePassword: Payload }>(CHANGE_PASSWORD, { current: PASSWORD, next: "a-new-password-2" }, me.token);
    expect(result.errors).toBeUndefined();
    const fresh = result.data!.changePassword;
    expect(sessionIdOf(fresh.token)).toBe(sessionIdOf(me.token));
    expect(await accepted(fresh.token)).toBe(true);
    expect(await refused(other.token)).toMatch(/session has ended/);
    expect((await otherSocket.closed).code).toBe(4403);
    expect((await sessionsOf(fresh.token)).map((s) => [s.id, s.current])).toEqual([[sessionIdOf(me.token), true]]);

    expect(errorCode(await server.gql(LOG_IN, { email: me.email, password: PASSWORD }))).toBe("UNAUTHENTICATED");
    await logIn(me.email, "a-new-password-2");
    // The refresh token from before the change was retired with it: presenting it is a reuse.
    expect(errorCode(await postGraphQL(server.url, REFRESH, { refreshToken: me.refreshToken }))).toBe("UNAUTHENTICATED");
    expect(await refused(fresh.token)).toMatch(/session has ended/);
  });

  it("refuses a wrong current password (UNAUTHENTICATED) or a bad new one (BAD_USER_INPUT on newPassword), changing nothing", async () => {
    const me = await newUser();
    const other = await logIn(me.email);
    const user = () => server.database.prisma.user.findUniqueOrThrow({ where: { id: me.user.id } });
    const before = { user: await user(), sessions: await stored(me.user.id) };

    const wrong = await server.gql(CHANGE_PASSWORD, { current: "not-my-password", next: "a-new-password-2" }, me.token);
    expect(errorCode(wrong)).toBe("UNAUTHENTICATED");
    expect(wrong.errors?.[0]?.message).toBe("The current password is wrong.");
    const short = await server.gql(CHANGE_PASSWORD, { current: PASSWORD, next: "short" }, me.token);
    expect(errorCode(short)).toBe("BAD_USER_INPUT");
    expect(short.errors?.[0]?.extensions?.field).toBe("newPassword");

    expect({ user: await user(), sessions: await stored(me.user.id) }).toEqual(before);
    expect(await accepted(other.token)).toBe(true);
    await logIn(me.email, PASSWORD);
  });

  it("is rate limited like logIn, on the same counters", async () => {
    const me = await newUser();
    for (let attempt = 1; attempt <= LOGIN_LIMIT; attempt++) {
      const result = await server.gql(CHANGE_PASSWORD, { current: `wrong-${attempt}-password`, next: "a-new-password-2" }, me.token);
      expect(errorCode(result), `attempt ${attempt}`).toBe("UNAUTHENTICATED");
    }
    const locked = await server.gql(CHANGE_PASSWORD, { current: PASSWORD, next: "a-new-password-2" }, me.token);
    expect(errorCode(locked)).toBe("RATE_LIMITED");
    expect(locked.errors?.[0]?.extensions?.retryAfterSeconds).toEqual(expect.any(Number));
    // Guessing through changePassword used up log-in's attempts from this address too.
    expect(errorCode(await server.gql(LOG_IN, { email: me.email, password: PASSWORD }))).toBe("RATE_LIMITED");
    // Nothing changed: the old password is still the password.
    const row = await server.database.prisma.user.findUniqueOrThrow({ where: { id: me.user.id } });
    const { verifyPassword } = await import("../../src/modules/auth/passwords.js");
    expect(await verifyPassword(row.passwordHash, PASSWORD)).toBe(true);
  });
});

describe("pruning", () => {
  it("deletes sessions ended or expired, and refresh tokens used, longer ago than REFRESH_TOKEN_TTL; keeps the rest", async () => {
    const keepMs = 30 * 86_400_000;
    const now = new Date();
    const longAgo = new Date(now.getTime() - keepMs - 60_000);
    const lately = new Date(now.getTime() - keepMs + 60_000);
    const prisma = server.database.prisma;
    const user = await newUser();
    const endedLongAgo = await logIn(user.email);
    const endedLately = await logIn(user.email);
    const expiredLongAgo = await logIn(user.email);
    await prisma.session.update({ where: { id: sessionIdOf(endedLongAgo.token) }, data: { endedAt: longAgo, endReason: "ENDED" } });
    await prisma.session.update({ where: { id: sessionIdOf(endedLately.token) }, data: { endedAt: lately, endReason: "ENDED" } });
    await prisma.session.update({ where: { id: sessionIdOf(expiredLongAgo.token) }, data: { expiresAt: longAgo } });
    // The active session: one refresh token used long ago, one lately, the current one unused.
    const active = sessionIdOf(user.token);
    const [first] = await prisma.refreshToken.findMany({ where: { sessionId: active } });
    await prisma.refreshToken.update({ where: { hash: first!.hash }, data: { usedAt: longAgo } });
    await prisma.refreshToken.createMany({
      data: [
        { hash: `used-lately-${active}`, sessionId: active, usedAt: lately },
        { hash: `current-${active}`, sessionId: active },
      ],
    });

    const pruned = await pruneSessions(prisma, keepMs, now);
    expect(pruned.sessions).toBeGreaterThanOrEqual(2);
    const left = await stored(user.user.id);
    expect(left.map((row) => row.id).sort()).toEqual([active, sessionIdOf(endedLately.token)].sort());
    const activeTokens = left.find((row) => row.id === active)!.refreshTokens.map((token) => token.hash).sort();
    expect(activeTokens).toEqual([`current-${active}`, `used-lately-${active}`].sort());
    expect(left.find((row) => row.id === sessionIdOf(endedLately.token))!.refreshTokens).toHaveLength(1);
    expect(await accepted(user.token)).toBe(true);
  });
});

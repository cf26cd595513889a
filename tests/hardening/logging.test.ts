// Structured logs, read back from the server's own logger writing into memory:
// one line per operation, nothing secret at any level, unexpected errors in
// full with their request id (and masked for the client), policy denials at
// debug.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUp, startTestServer, uniqueEmail, type TestServer } from "../helpers/server.js";
import { api, connect, eventually, untilLive } from "../realtime/helpers.js";
import { captureLogs, post, type LogSink } from "./ops-support.js";
import { RawSocket } from "./wsProtocol-raw.js";

type Line = Record<string, unknown>;
const operationLines = (logs: LogSink, requestId: string) =>
  logs.lines().filter((line) => line.msg === "graphql operation" && line.requestId === requestId);

/** A test server whose logger writes into memory at `level`. */
async function serverWithLogs(level: "info" | "debug" | "trace", env: Record<string, string> = {}) {
  const logs = captureLogs(level);
  return { logs, server: await startTestServer({ logger: logs.logger, env }) };
}

describe("operation log lines (LOG_LEVEL=info)", () => {
  let server: TestServer;
  let logs: LogSink;
  beforeAll(async () => ({ server, logs } = await serverWithLogs("info")));
  afterAll(() => server?.close());

  it("writes one JSON line per operation: request id (as in x-request-id), name, type, duration, viewer, outcome", async () => {
    const user = await signUp(server);
    const response = await post(server.url, `query WhoAmI { me { id } }`, undefined, {
      authorization: `Bearer ${user.token}`,
    });
    const requestId = response.headers.get("x-request-id")!;
    expect(requestId).toBeTruthy();
    const lines = operationLines(logs, requestId);
    expect(lines).toHaveLength(1);
    const [line] = lines as [Line];
    expect(line).toMatchObject({
      level: 30,
      msg: "graphql operation",
      requestId,
      operationName: "WhoAmI",
      operationType: "query",
      outcome: "success",
      errorCodes: [],
      viewerId: user.user.id,
    });
    expect(typeof line.durationMs).toBe("number");
    expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
    expect(typeof line.sqlStatements).toBe("number");
    expect(new Date(String(line.time)).toISOString()).toBe(line.time);
  });

  it("keeps a caller's x-request-id, logs anonymous callers as null and failures with their codes", async () => {
    const response = await post(
      server.url,
      `mutation BadLogIn($email: String!, $password: String!) { logIn(email: $email, password: $password) { token } }`,
      { email: uniqueEmail(), password: "wrong-password" },
      { "x-request-id": "trace-abc-123" },
    );
    expect(response.headers.get("x-request-id")).toBe("trace-abc-123");
    const [line] = operationLines(logs, "trace-abc-123") as [Line];
    expect(line).toMatchObject({
      operationName: "BadLogIn",
      operationType: "mutation",
      outcome: "error",
      errorCodes: ["UNAUTHENTICATED"],
      viewerId: null,
    });
  });

  it("logs a request refused for an invalid token too, under its request id", async () => {
    const response = await post(server.url, `query Me { me { id } }`, undefined, {
      authorization: "Bearer not-a-valid-token",
      "x-request-id": "bad-token-1",
    });
    expect(response.status).toBe(401);
    expect(operationLines(logs, "bad-token-1")).toEqual([
      expect.objectContaining({ outcome: "error", errorCodes: ["UNAUTHENTICATED"], viewerId: null }),
    ]);
  });

  it("names an unnamed operation 'anonymous'", async () => {
    const response = await post(server.url, `{ me { id } }`);
    const [line] = operationLines(logs, response.headers.get("x-request-id")!) as [Line];
    expect(line.operationName).toBe("anonymous");
  });

  it("logs an unexpected error in full with the request id; the client sees only a generic INTERNAL_SERVER_ERROR", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const spaceId = await owned.createSpace();
    const list = await owned.createList(spaceId, "Doomed list");
    // A fault no code path expects: the table is gone underneath the server.
    await server.database.prisma.$executeRawUnsafe(`ALTER TABLE "Todo" RENAME TO "TodoGone"`);
    try {
      const response = await post(
        server.url,
        `mutation Broken($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
        { input: { listId: list.id, title: "variable-canary-7Q2" } },
        { authorization: `Bearer ${user.token}`, "x-request-id": "boom-1" },
      );
      expect(response.errors?.[0]).toEqual({
        message: "Something went wrong on our side.",
        locations: expect.any(Array),
        path: ["createTodo"],
        extensions: { code: "INTERNAL_SERVER_ERROR" },
      });
      expect(JSON.stringify(response)).not.toMatch(/TodoGone|Todo`|prisma|stack|\.ts:/i);
    } finally {
      await server.database.prisma.$executeRawUnsafe(`ALTER TABLE "TodoGone" RENAME TO "Todo"`);
    }
    const errors = logs.lines().filter((line) => line.msg === "unexpected error" && line.requestId === "boom-1");
    expect(errors).toHaveLength(1);
    const [logged] = errors as [Line];
    expect(logged.level).toBe(50);
    const err = logged.err as { message: string; stack: string };
    expect(err.message).toMatch(/TodoGone|does not exist/);
    expect(err.stack).toBeTruthy();
    expect(operationLines(logs, "boom-1")[0]).toMatchObject({ outcome: "error", errorCodes: ["INTERNAL_SERVER_ERROR"] });
    expect(logs.text()).not.toContain("variable-canary-7Q2");
  });
});

describe("WebSocket operation log lines (LOG_LEVEL=info)", () => {
  let server: TestServer;
  let logs: LogSink;
  beforeAll(async () => ({ server, logs } = await serverWithLogs("info")));
  afterAll(() => server?.close());

  const wsLines = (operationName: string) =>
    logs.lines().filter((line) => line.msg === "graphql operation" && line.transport === "websocket" && line.operationName === operationName);
  const untilLogged = (operationName: string, count = 1) =>
    eventually(async () => wsLines(operationName).length >= count, `${count} log line(s) for ${operationName}`);

  it("writes one line per query over WebSocket, with its own request id, the viewer and one result", async () => {
    const user = await signUp(server);
    const connection = connect(server, user.token);
    try {
      await connection.subscribe(`query WsWhoAmI { me { id } }`).next();
      await connection.subscribe(`query WsWhoAmI { me { id } }`).next();
    } finally {
      await connection.dispose();
    }
    await untilLogged("WsWhoAmI", 2);
    const lines = wsLines("WsWhoAmI");
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatchObject({
        level: 30,
        transport: "websocket",
        operationType: "query",
        outcome: "success",
        errorCodes: [],
        events: 1,
        viewerId: user.user.id,
      });
      expect(String(line.requestId)).toMatch(/^ws-[0-9a-f-]{36}$/);
      expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
    }
    expect(lines[0]!.requestId).not.toBe(lines[1]!.requestId);
  });

  it("writes a subscription's line when it ends: completed by the client, or cut off by the socket closing", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const list = await owned.createList(await owned.createSpace(), "Logged list");
    const query = (name: string) => `subscription ${name}($listId: ID!) { todoChanged(listId: $listId) { todoId } }`;
    const connection = connect(server, user.token);
    try {
      const completed = connection.subscribe<{ todoChanged: { todoId: string } }>(query("WsCompleted"), { listId: list.id });
      await untilLive(completed, () => owned.createTodo(list.id, "probe"), () => true);
      const cutOff = connection.subscribe<{ todoChanged: { todoId: string } }>(query("WsCutOff"), { listId: list.id });
      await untilLive(cutOff, () => owned.createTodo(list.id, "probe-2"), () => true);
      // Both streams have every event up to the last probe: settle the counts.
      const last = await owned.createTodo(list.id, "last");
      await completed.until((item) => item.todoChanged.todoId === last.id);
      await cutOff.until((item) => item.todoChanged.todoId === last.id);
      expect(wsLines("WsCompleted")).toHaveLength(0); // nothing until it ends

      completed.close();
      await untilLogged("WsCompleted");
      expect(wsLines("WsCompleted")[0]).toMatchObject({
        operationType: "subscription",
        outcome: "success",
        end: "completed",
        errorCodes: [],
        events: completed.received.length,
        viewerId: user.user.id,
      });
    } finally {
      await connection.dispose();
    }
    await untilLogged("WsCutOff");
    expect(wsLines("WsCutOff")).toHaveLength(1);
    expect(wsLines("WsCutOff")[0]).toMatchObject({ operationType: "subscription", outcome: "success", end: "closed", viewerId: user.user.id });
    expect(wsLines("WsCutOff")[0]!.events).toBeGreaterThanOrEqual(2);
    expect(wsLines("WsCompleted")).toHaveLength(1);
  });

  it("logs a refused operation with its code, and a subscription the policy refuses with NOT_FOUND", async () => {
    const owner = await signUp(server);
    const stranger = await signUp(server);
    const owned = api(server, owner.token);
    const list = await owned.createList(await owned.createSpace(), "Not yours");
    const connection = connect(server, stranger.token);
    try {
      const invalid = connection.subscribe(`query WsInvalid { me { noSuchField } }`);
      expect((await invalid.failure()).code).toBe("GRAPHQL_VALIDATION_FAILED");
      const denied = connection.subscribe(`subscription WsDenied($listId: ID!) { todoChanged(listId: $listId) { todoId } }`, { listId: list.id });
      expect((await denied.failure()).code).toBe("NOT_FOUND");
    } finally {
      await connection.dispose();
    }
    await untilLogged("WsInvalid");
    await untilLogged("WsDenied");
    expect(wsLines("WsInvalid")).toEqual([
      expect.objectContaining({
        operationType: "query",
        outcome: "error",
        end: "refused",
        errorCodes: ["GRAPHQL_VALIDATION_FAILED"],
        events: 0,
        viewerId: stranger.user.id,
      }),
    ]);
    // A list the viewer cannot read does not exist for them (ACCESS.md). The
    // refusal is the subscription's one result, not an event.
    expect(wsLines("WsDenied")).toEqual([
      expect.objectContaining({
        operationType: "subscription",
        outcome: "error",
        errorCodes: ["NOT_FOUND"],
        events: 0,
        viewerId: stranger.user.id,
      }),
    ]);
  });

  it("logs a refused operation at once, even when the client completes it in the same breath", async () => {
    const socket = await RawSocket.open(server.wsUrl);
    try {
      await socket.init();
      for (let i = 0; i < 20; i++) {
        socket.send({ id: `r${i}`, type: "subscribe", payload: { query: `query WsRefusedAtOnce { noSuchField }` } });
        socket.send({ id: `r${i}`, type: "complete" });
      }
      await untilLogged("WsRefusedAtOnce", 20);
      expect(socket.isClosed).toBe(false);
      for (const line of wsLines("WsRefusedAtOnce")) {
        expect(line).toMatchObject({ outcome: "error", end: "refused", errorCodes: ["GRAPHQL_VALIDATION_FAILED"] });
      }
    } finally {
      await socket.close();
    }
  });

  it("masks and logs a failure of a subscription's event stream, and ends the operation as failed", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const spaceId = await owned.createSpace();
    const list = await owned.createList(spaceId, "Stream that breaks");
    const connection = connect(server, user.token);
    const prisma = server.database.prisma;
    try {
      const stream = connection.subscribe<{ todoChanged: { todoId: string } }>(
        `subscription WsStreamBreaks($listId: ID!) { todoChanged(listId: $listId) { todoId } }`,
        { listId: list.id },
      );
      await untilLive(stream, () => owned.createTodo(list.id, "probe"), () => true);
      // An event whose delivery check meets a fault no code path expects:
      // the Todo table is gone when the check reads it. The tailer's poll
      // finds the event (nothing announces it on the bus).
      await prisma.$executeRawUnsafe(`ALTER TABLE "Todo" RENAME TO "TodoGone"`);
      await prisma.$executeRawUnsafe(
        `INSERT INTO "Event" ("kind", "subject", "spaceId", "listId", "todoId", "listOwnerId", "listPrivate") VALUES ('CREATED', 'TODO', $1, $2, 'no-such-todo', $3, false)`,
        spaceId,
        list.id,
        user.user.id,
      );
      const failure = await stream.failure();
      expect(failure).toEqual({ code: "INTERNAL_SERVER_ERROR", message: "Something went wrong on our side." });
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE IF EXISTS "TodoGone" RENAME TO "Todo"`);
      await connection.dispose();
    }
    await untilLogged("WsStreamBreaks");
    const [line] = wsLines("WsStreamBreaks") as [Line];
    expect(line).toMatchObject({ operationType: "subscription", outcome: "error", end: "failed", errorCodes: ["INTERNAL_SERVER_ERROR"] });
    const unexpected = logs.lines().filter((entry) => entry.msg === "unexpected error" && entry.requestId === line.requestId);
    expect(unexpected).toHaveLength(1);
    expect((unexpected[0]!.err as { message: string }).message).toMatch(/TodoGone|does not exist/);
  });

  it("logs an unexpected error in full under the operation's request id; the client sees only INTERNAL_SERVER_ERROR", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const list = await owned.createList(await owned.createSpace(), "Doomed over WebSocket");
    const connection = connect(server, user.token);
    await server.database.prisma.$executeRawUnsafe(`ALTER TABLE "Todo" RENAME TO "TodoGone"`);
    let error: { code: string | undefined; message: string };
    try {
      const broken = connection.subscribe<{ createTodo: { id: string } }>(
        `mutation WsBroken($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
        { input: { listId: list.id, title: "ws-variable-canary-5T1" } },
      );
      error = await broken.failure();
    } finally {
      await server.database.prisma.$executeRawUnsafe(`ALTER TABLE "TodoGone" RENAME TO "Todo"`);
      await connection.dispose();
    }
    expect(error).toEqual({ code: "INTERNAL_SERVER_ERROR", message: "Something went wrong on our side." });
    await untilLogged("WsBroken");
    const [line] = wsLines("WsBroken") as [Line];
    expect(line).toMatchObject({ operationType: "mutation", outcome: "error", errorCodes: ["INTERNAL_SERVER_ERROR"] });
    const unexpected = logs.lines().filter((entry) => entry.msg === "unexpected error" && entry.requestId === line.requestId);
    expect(unexpected).toHaveLength(1);
    expect((unexpected[0]!.err as { message: string }).message).toMatch(/TodoGone|does not exist/);
    expect(logs.text()).not.toContain("ws-variable-canary-5T1");
  });
});

describe("secrets never reach the logs (LOG_LEVEL=trace)", () => {
  let server: TestServer;
  let logs: LogSink;
  beforeAll(async () => ({ server, logs } = await serverWithLogs("trace", { LOG_LEVEL: "trace" })));
  afterAll(() => server?.close());

  it("logs no password, token or variables, whatever the requests", async () => {
    const password = "Pa55word-canary-91x";
    const email = uniqueEmail("secret");
    const signedUp = await post<{ signUp: { token: string } }>(
      server.url,
      `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { token } }`,
      { input: { email, password, name: "name-canary-4k" } },
    );
    const signUpToken = signedUp.data!.signUp.token;
    const loggedIn = await post<{ logIn: { token: string } }>(
      server.url,
      `mutation LogIn($email: String!, $password: String!) { logIn(email: $email, password: $password) { token } }`,
      { email, password },
    );
    const token = loggedIn.data!.logIn.token;
    // A wrong password is logged as a failure, never with the attempt.
    await post(server.url, `mutation { logIn(email: "${email}", password: "inline-wrong-canary-3z") { token } }`);
    await post(server.url, `query Me { me { id email } }`, undefined, { authorization: `Bearer ${token}` });
    // An invalid token is refused with 401 and not echoed into a log.
    const forged = `${token.slice(0, -6)}AAAAAA`;
    const refused = await post(server.url, `{ me { id } }`, undefined, { authorization: `Bearer ${forged}` });
    expect(refused.status).toBe(401);
    // Over WebSocket too, where the token travels in connectionParams.
    const connection = connect(server, token);
    await new Promise<void>((resolve, reject) =>
      connection.client.subscribe({ query: "{ me { id } }" }, { next: () => undefined, error: reject, complete: resolve }),
    );
    await connection.dispose();
    await post(server.url, `mutation { updateMe(input: { name: "x" }) { id } }`, undefined, { authorization: `Bearer ${signUpToken}` });

    const text = logs.text();
    expect(logs.lines().length).toBeGreaterThan(5);
    for (const secret of [password, token, signUpToken, forged, "inline-wrong-canary-3z", "name-canary-4k"]) {
      expect(text).not.toContain(secret);
    }
    // Not even the signature part of a token, nor a JWT of any kind.
    expect(text).not.toContain(token.split(".")[2]!);
    expect(text).not.toMatch(/eyJ[\w-]{10,}/);
    expect(text).not.toMatch(/"variables"\s*:\s*\{/);
    expect(text).not.toMatch(/\$argon2/);
  });
});

describe("the logger's own redaction", () => {
  it("cuts secrets out of error text and redacts secret keys at any usual depth", () => {
    const logs = captureLogs("trace");
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWNhbmFyeQ";
    const error = new Error(
      `Invalid call: { data: { email: "a@b.cd", passwordHash: "$argon2id$v=19$canary", password: "hunter2-canary" } } ` +
        `Authorization: Bearer opaque-canary-token, token=${jwt}, refreshToken: "refresh-in-message-canary", url postgresql://app:db-pass-canary@db:5432/app`,
    );
    (error as Error & { meta?: unknown }).meta = { args: { password: "meta-canary" } };
    error.cause = new Error(`nested password: 'cause-canary'`);
    logs.logger.error({ err: error }, "unexpected error");
    logs.logger.info({ password: "p1-canary", input: { password: "p2-canary", token: "t-canary", refreshToken: "refresh-key-canary" }, a: { b: { authorization: "h-canary" } } }, "keys");
    logs.logger.info({ variables: { title: "v-canary" } }, "variables");
    const text = logs.text();
    for (const secret of ["hunter2-canary", "$argon2id", "opaque-canary-token", jwt, "db-pass-canary", "meta-canary", "cause-canary", "p1-canary", "p2-canary", "t-canary", "refresh-key-canary", "refresh-in-message-canary", "h-canary", "v-canary"]) {
      expect(text).not.toContain(secret);
    }
    // What is left still says what went wrong.
    expect(text).toContain("Invalid call");
    expect(text).toContain("a@b.cd");
    expect(text).toContain("[redacted]");
  });
});

describe("policy denials (LOG_LEVEL=debug)", () => {
  let server: TestServer;
  let logs: LogSink;
  beforeAll(async () => ({ server, logs } = await serverWithLogs("debug")));
  afterAll(() => server?.close());

  it("logs a denial at debug with model, operation and rule, under the request id", async () => {
    const admin = await signUp(server);
    const member = await signUp(server);
    const spaceId = await api(server, admin.token).createSpace();
    await api(server, admin.token).addMember(spaceId, member.email);
    const response = await post(server.url, `mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: spaceId }, {
      authorization: `Bearer ${member.token}`,
      "x-request-id": "denied-1",
    });
    expect(response.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const denials = logs.lines().filter((line) => line.msg === "policy denied" && line.requestId === "denied-1");
    expect(denials.length).toBeGreaterThanOrEqual(1);
    expect(denials[0]).toMatchObject({
      level: 20,
      denial: { model: expect.stringMatching(/^space$/i), operation: "delete", rule: expect.any(String), viewerId: member.user.id },
    });
    expect(String((denials[0]!.denial as { rule: string }).rule).length).toBeGreaterThan(3);
  });

  it("logs nothing below info at the default level", async () => {
    const quiet = captureLogs("info");
    const other = await startTestServer({ logger: quiet.logger });
    try {
      const admin = await signUp(other);
      const member = await signUp(other);
      const spaceId = await api(other, admin.token).createSpace();
      await api(other, admin.token).addMember(spaceId, member.email);
      await other.gql(`mutation ($id: ID!) { deleteSpace(id: $id) }`, { id: spaceId }, member.token);
      expect(quiet.lines().filter((line) => (line.level as number) < 30)).toEqual([]);
      expect(quiet.lines().some((line) => line.msg === "graphql operation")).toBe(true);
    } finally {
      await other.close();
    }
  });
});

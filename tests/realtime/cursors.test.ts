// Event cursors reveal nothing and cannot be forged. Event ids come from one
// sequence shared by every space, so a cursor that carried the id would let a
// member count, from the gap between two of their own cursors, the events of
// spaces they are not in (ACCESS.md, "What nobody learns"). What a client
// holds must be opaque; what it sends back must be a cursor this deployment
// made, unaltered.
//
// Only the API is used here (and the log, read directly, to know the ids the
// cursors stand for); the cipher itself is tested in tests/unit/eventCursor.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import {
  api,
  connect,
  describeEvent,
  realtimeEnv,
  realtimeServerPerFile,
  spaceWithMembers,
  untilLive,
  SPACE_ACTIVITY,
  type SpaceActivity,
  type SpaceEventData,
} from "./helpers.js";

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started));
// Event ids of ten digits from here on: a short one (say "7") turns up in the
// 16 random-looking bytes of a cursor by chance, which would prove nothing.
beforeAll(async () => {
  await server.database.prisma.$executeRawUnsafe(`SELECT setval(pg_get_serial_sequence('"Event"', 'id'), 4000000000)`);
});

const CURSOR_SHAPE = /^[A-Za-z0-9_-]{22}$/;
const OTHERS = 25;

const eventIdOf = async (target: TestServer, todoId: string) =>
  (await target.database.prisma.event.findFirstOrThrow({ where: { todoId, kind: "CREATED" } })).id;

const commonPrefix = (a: string, b: string) => {
  let length = 0;
  while (length < a.length && a[length] === b[length]) length++;
  return length;
};

/** A live spaceActivity subscription of a fresh space's admin, and the space's list. */
async function watchedSpace() {
  const { spaceId, admin, members } = await spaceWithMembers(server, 0);
  const list = await admin.api.createList(spaceId, "Mine");
  const stream = open(admin.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId });
  const probe = await admin.api.createTodo(list.id, "probe");
  await untilLive(stream, () => admin.api.updateTodo(probe.id, { title: "probe" }), (e) => e.spaceActivity.todoId === probe.id);
  return { spaceId, admin, members, list, stream };
}

describe("an event cursor", () => {
  it(`says nothing about how many events other spaces had in between (${OTHERS} here)`, async () => {
    const { spaceId, admin, list, stream } = await watchedSpace();
    // Someone else, in a space of their own that I am not in.
    const stranger = await spaceWithMembers(server, 0);
    const theirs = await stranger.admin.api.createList(stranger.spaceId, "Theirs");

    const first = await admin.api.createTodo(list.id, "First");
    const second = await admin.api.createTodo(list.id, "Second"); // the very next event of the log
    for (let index = 0; index < OTHERS - 1; index++) await stranger.admin.api.createTodo(theirs.id, `Elsewhere ${index}`);
    await stranger.admin.api.updateList(theirs.id, { title: "Theirs, busy" });
    const third = await admin.api.createTodo(list.id, "Third"); // OTHERS events of theirs before it

    const mine = (await stream.until((e) => e.spaceActivity.todoId === third.id))
      .map((e) => e.spaceActivity)
      .filter((e) => e.kind === "CREATED");
    expect(mine.map(describeEvent)).toEqual([first, second, third].map((todo) => `todo:CREATED:${todo.id}`));
    const ids = await Promise.all([first, second, third].map((todo) => eventIdOf(server, todo.id)));
    // The log does hold the gap the cursors must not show.
    expect([ids[1]! - ids[0]!, ids[2]! - ids[1]!]).toEqual([1n, BigInt(OTHERS + 1)]);

    const cursors = mine.map((event) => event.cursor);
    cursors.forEach((cursor, index) => {
      const id = ids[index]!.toString();
      // One shape for every cursor, whatever the id or the gap before it.
      expect(cursor, `cursor of event ${id}`).toMatch(CURSOR_SHAPE);
      const bytes = Buffer.from(cursor, "base64url").toString("latin1");
      expect(bytes.startsWith("ev:"), `cursor of event ${id} decodes to ${JSON.stringify(bytes)}`).toBe(false);
      expect(bytes, `cursor of event ${id}`).not.toContain(id);
      expect(cursor, `cursor of event ${id}`).not.toContain(id);
    });
    // Neighbours in the log share nothing visible: no common prefix beyond
    // chance (three or more characters: one in 262 144).
    expect(commonPrefix(cursors[0]!, cursors[1]!), `${cursors[0]} / ${cursors[1]}`).toBeLessThan(3);
    expect(commonPrefix(cursors[1]!, cursors[2]!), `${cursors[1]} / ${cursors[2]}`).toBeLessThan(3);
    expect(new Set(cursors.map((cursor) => cursor.length)).size).toBe(1);

    // Opaque, and still exact: resuming after the first gives the other two,
    // nothing of the other space, then live.
    const resumed = open(admin.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after: cursors[0] });
    const replayed = (await resumed.until((e) => e.spaceActivity.todoId === third.id)).map((e) => e.spaceActivity);
    expect(replayed.map(describeEvent)).toEqual([second, third].map((todo) => `todo:CREATED:${todo.id}`));
    const fourth = await admin.api.createTodo(list.id, "Fourth");
    const next = (await resumed.until((e) => e.spaceActivity.todoId === fourth.id)).map((e) => e.spaceActivity);
    expect(next.map(describeEvent)).toEqual([`todo:CREATED:${fourth.id}`]);
    expect(resumed.errors).toEqual([]);
  });

  it("is the same for every subscriber who receives the event", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const list = await admin.api.createList(spaceId, "Shared");
    const streams = [admin.token, members[0]!.token].map((token) => open(token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId }));
    const probe = await admin.api.createTodo(list.id, "probe");
    for (const stream of streams) {
      await untilLive(stream, () => admin.api.updateTodo(probe.id, { title: "probe" }), (e) => e.spaceActivity.todoId === probe.id);
    }
    const todo = await admin.api.createTodo(list.id, "News");
    const seen = await Promise.all(
      streams.map(async (stream) => (await stream.until((e) => e.spaceActivity.todoId === todo.id)).at(-1)!.spaceActivity),
    );
    expect(seen[0]!.cursor).toMatch(CURSOR_SHAPE);
    expect(seen[1]!.cursor).toBe(seen[0]!.cursor);
  });
});

describe("a cursor this deployment did not make", () => {
  let other: TestServer;
  beforeAll(async () => {
    other = await startTestServer({ env: { ...realtimeEnv(), JWT_SECRET: "another-deployment-with-a-secret-of-its-own-9876" } });
    // The same range of ids as this file's server, so that its ids name events here too.
    await other.database.prisma.$executeRawUnsafe(`SELECT setval(pg_get_serial_sequence('"Event"', 'id'), 4000000000)`);
  });
  afterAll(async () => {
    await other?.close();
  });

  // One connection per user for all the refused subscriptions: a connection
  // each would run into the per-user socket cap (WS_MAX_CONNECTIONS_PER_USER).
  const connections = new Map<string, ReturnType<typeof open>>();
  const refused = async (token: string, spaceId: string, after: string) => {
    let connection = connections.get(token);
    if (!connection) connections.set(token, (connection = open(token)));
    return connection.subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after }).failure();
  };
  const NOT_VALID = { code: "BAD_USER_INPUT", field: "after", message: "That cursor is not valid." };

  it("is refused when altered, in any character, or cut, or lengthened", async () => {
    const { spaceId, admin, list, stream } = await watchedSpace();
    const todo = await admin.api.createTodo(list.id, "Genuine");
    const genuine = (await stream.until((e) => e.spaceActivity.todoId === todo.id)).at(-1)!.spaceActivity.cursor;
    // The genuine one is accepted (and replays nothing: it is the newest).
    const accepted = open(admin.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after: genuine });
    const later = await admin.api.createTodo(list.id, "Later");
    expect((await accepted.until((e) => e.spaceActivity.todoId === later.id)).map((e) => describeEvent(e.spaceActivity))).toEqual([
      `todo:CREATED:${later.id}`,
    ]);

    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const altered = [...genuine].map((char, index) => {
      // 32 places on in the alphabet flips the top bit of the six a character
      // carries: a bit of the cursor's bytes, in the last character too.
      const replacement = alphabet[(alphabet.indexOf(char) + 32) % 64]!;
      return genuine.slice(0, index) + replacement + genuine.slice(index + 1);
    });
    const tampered = [...altered, genuine.slice(0, -1), `${genuine}A`, genuine.slice(1), genuine.split("").reverse().join("")];
    for (const after of tampered) {
      expect({ after, ...(await refused(admin.token, spaceId, after)) }).toEqual({ after, ...NOT_VALID });
    }
    // Nothing was replayed or opened by the refusals: the accepted stream still sees only what happens next.
    const last = await admin.api.createTodo(list.id, "Last");
    expect((await accepted.until((e) => e.spaceActivity.todoId === last.id)).map((e) => describeEvent(e.spaceActivity))).toEqual([
      `todo:CREATED:${last.id}`,
    ]);
  });

  it("is refused when made by a server with another secret, even for an event id this log has", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    // A real cursor of the other deployment, for a todo created there.
    const foreign = await spaceWithMembers(other, 0);
    const foreignList = await api(other, foreign.admin.token).createList(foreign.spaceId, "Elsewhere");
    const connection = connect(other, foreign.admin.token);
    try {
      const foreignStream = connection.subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId: foreign.spaceId });
      await untilLive(foreignStream, () => foreign.admin.api.createTodo(foreignList.id, "probe"), (e) => e.spaceActivity.kind === "CREATED");
      const foreignEvent: SpaceEventData = foreignStream.received.at(-1)!.spaceActivity;
      const foreignId = await eventIdOf(other, foreignEvent.todoId!);
      // Its event id names an event of this log too, so only the key can tell them apart.
      expect(await server.database.prisma.event.count({ where: { id: foreignId } })).toBe(1);
      expect(await refused(admin.token, spaceId, foreignEvent.cursor)).toEqual(NOT_VALID);
    } finally {
      await connection.dispose();
    }
  });

  it("in the earlier format (base64url of 'ev:<id>') is refused with its own message", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const newest = (await server.database.prisma.event.findFirstOrThrow({ orderBy: { id: "desc" } })).id;
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    for (const after of [b64(`ev:${newest}`), b64("ev:1"), b64("ev:1234567890123"), b64(`ev:${newest + 1_000_000n}`)]) {
      expect({ after, ...(await refused(admin.token, spaceId, after)) }).toEqual({
        after,
        code: "BAD_USER_INPUT",
        field: "after",
        message: "That cursor is in a format this server no longer accepts. Reload and subscribe without 'after'.",
      });
    }
  });
});

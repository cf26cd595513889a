// spaceActivity(spaceId, after): replay from the event log, then live, with no
// gap and no duplicate, including while other clients keep writing; what the
// replay leaves out; and the cursors it refuses (malformed, or older than the
// log's retention). Cursors this server did not make, and those of the
// earlier format: cursors.test.ts.
//
// A subscription with `after` needs no untilLive(): every event after the
// cursor reaches it, through the replay or live, however late the server
// registers it. That is the property under test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { createRealtime } from "../../src/realtime/index.js";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";
import {
  api,
  connect,
  describeEvent,
  eventually,
  realtimeEnv,
  spaceWithMembers,
  untilLive,
  SPACE_ACTIVITY,
  type Api,
  type SpaceActivity,
  type SpaceEventData,
  realtimeServerPerFile,
  testCursors,
  logBetween,
  newestEvent,
} from "./helpers.js";
import { afterPosition, positionOf } from "../../src/realtime/eventLog.js";

// The server replays the log in pages of this many rows (src/realtime/index.ts).
const REPLAY_PAGE = 200;

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started));

const resume = (token: string, spaceId: string, after: string) =>
  open(token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after });

const idOf = (event: SpaceEventData) => testCursors.decode(event.cursor);

/** The ids of the log's events in a space, after `after` through `through` in log order, that `viewerId` may read. */
async function readableLogIds(spaceId: string, after: bigint, through: bigint, viewerId: string): Promise<bigint[]> {
  const rows = await logBetween(server.database.prisma, { spaceId }, after, through);
  return rows.filter((row) => !row.listPrivate || row.listOwnerId === viewerId).map((row) => row.id);
}

/** The newest event of a list (or of one todo), as a cursor. */
async function cursorOf(where: { listId: string; todoId?: string }) {
  const row = await newestEvent(server.database.prisma, where);
  return { id: row.id, cursor: testCursors.encode(row.id) };
}

/** Runs `count` calls of `fn`, at most `width` at a time. */
async function inParallel(count: number, width: number, fn: (index: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

describe("spaceActivity with after", () => {
  it("replays a deleted todo by its list as the list is now: hidden once the list became private, shown once it became readable, by the old rule only when the list is gone", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const [bob, carol] = members as [(typeof members)[0], (typeof members)[0]];
    const notes = await carol.api.createList(spaceId, "Notes"); // public now, private later
    const note = await carol.api.createTodo(notes.id, "Note");
    const drafts = await carol.api.createList(spaceId, "Drafts", true); // private now, public later
    const draft = await carol.api.createTodo(drafts.id, "Draft");
    const trip = await carol.api.createList(spaceId, "Trip"); // public, then deleted
    const ticket = await carol.api.createTodo(trip.id, "Ticket");
    const start = await cursorOf({ listId: trip.id, todoId: ticket.id });

    await carol.api.deleteTodo(note.id);
    await carol.api.deleteTodo(draft.id);
    await carol.api.deleteTodo(ticket.id);
    await carol.api.updateList(notes.id, { private: true });
    await carol.api.updateList(drafts.id, { private: false });
    await carol.api.deleteList(trip.id);
    const marker = await admin.api.createList(spaceId, "Marker");

    const replayed = (await resume(bob.token, spaceId, start.cursor).until((e) => e.spaceActivity.listId === marker.id)).map(
      (e) => e.spaceActivity,
    );
    expect(replayed.map(describeEvent)).toEqual([
      `todo:DELETED:${draft.id}`, // its list is readable now, though it was private at the change
      `todo:DELETED:${ticket.id}`, // its list is gone: the list as it was (public) decides
      `list:UPDATED:${drafts.id}`,
      `list:DELETED:${trip.id}`,
      `list:CREATED:${marker.id}`,
    ]);
    // carol, who may read both of her lists, gets every deletion.
    const hers = (await resume(carol.token, spaceId, start.cursor).until((e) => e.spaceActivity.listId === marker.id)).map(
      (e) => e.spaceActivity,
    );
    expect(hers.map(describeEvent).slice(0, 3)).toEqual([`todo:DELETED:${note.id}`, `todo:DELETED:${draft.id}`, `todo:DELETED:${ticket.id}`]);
  });

  it("replays exactly the events missed while disconnected that the caller may read, in order, then continues live", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const [bob, carol] = members as [(typeof members)[0], (typeof members)[0]];
    const probeList = await admin.api.createList(spaceId, "Probe");
    const plans = await admin.api.createList(spaceId, "Plans");

    // Bob is connected for a while and keeps the cursor of the last event he saw.
    const first = open(bob.token);
    const live = first.subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId });
    await untilLive(live, () => admin.api.updateList(probeList.id, { title: "probe" }), (e) => e.spaceActivity.listId === probeList.id);
    const tickets = await admin.api.createTodo(plans.id, "Tickets");
    const hotel = await admin.api.createTodo(plans.id, "Hotel");
    // Late probe events (untilLive may have written more than one) are left out.
    const seen = (await live.until((e) => e.spaceActivity.todoId === hotel.id))
      .map((e) => e.spaceActivity)
      .filter((e) => e.listId !== probeList.id);
    expect(seen.map(describeEvent)).toEqual([`todo:CREATED:${tickets.id}`, `todo:CREATED:${hotel.id}`]);
    const lastSeen = seen.at(-1)!.cursor;
    await first.dispose();

    // Meanwhile, in the space:
    await admin.api.updateTodo(tickets.id, { completed: true, title: "Tickets, booked" });
    const diary = await carol.api.createList(spaceId, "Diary", true); // carol's private list: never for bob
    const entry = await carol.api.createTodo(diary.id, "Entry");
    await carol.api.updateTodo(entry.id, { completed: true });
    const visa = await admin.api.createTodo(plans.id, "Visa");
    await admin.api.deleteTodo(hotel.id);
    const shared = await carol.api.createList(spaceId, "Shared");
    const mine = await bob.api.createList(spaceId, "Mine", true); // bob's own private list: his to read
    const secret = await bob.api.createTodo(mine.id, "Secret");
    // Created and deleted while he was away: the row is gone, only the deletion is news.
    const fleeting = await admin.api.createTodo(plans.id, "Fleeting");
    await admin.api.deleteTodo(fleeting.id);
    await carol.api.deleteList(diary.id);

    const resumed = resume(bob.token, spaceId, lastSeen);
    const replayed = (await resumed.until((e) => e.spaceActivity.todoId === fleeting.id && e.spaceActivity.kind === "DELETED"))
      .map((e) => e.spaceActivity);
    expect(replayed.map(describeEvent)).toEqual([
      `todo:UPDATED:${tickets.id}`,
      `todo:CREATED:${visa.id}`,
      `todo:DELETED:${hotel.id}`,
      `list:CREATED:${shared.id}`,
      `list:CREATED:${mine.id}`,
      `todo:CREATED:${secret.id}`,
      `todo:DELETED:${fleeting.id}`,
    ]);
    // Rows as they are now, cursors strictly increasing from the one he resumed after.
    expect(replayed[0]).toMatchObject({ todo: { title: "Tickets, booked", completed: true } });
    const ids = [testCursors.decode(lastSeen), ...replayed.map(idOf)];
    expect(ids.every((id, index) => index === 0 || id > ids[index - 1]!)).toBe(true);
    // Against the log: every event after the cursor except carol's private
    // diary and the creation of a todo that no longer exists.
    const fleetingCreated = await server.database.prisma.event.findFirstOrThrow({ where: { todoId: fleeting.id, kind: "CREATED" } });
    const logIds = await readableLogIds(spaceId, testCursors.decode(lastSeen), idOf(replayed.at(-1)!), bob.id);
    expect(replayed.map(idOf)).toEqual(logIds.filter((id) => id !== fleetingCreated.id));

    // Then live, with nothing repeated in between.
    const after = await admin.api.createTodo(plans.id, "After resuming");
    const next = (await resumed.until((e) => e.spaceActivity.todoId === after.id)).map((e) => e.spaceActivity);
    expect(next.map(describeEvent)).toEqual([`todo:CREATED:${after.id}`]);
    expect(resumed.errors).toEqual([]);
  });

  it("resumed from the newest event, replays nothing and delivers the very next change", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const list = await admin.api.createList(spaceId, "Quiet");
    const { cursor } = await cursorOf({ listId: list.id });
    const stream = resume(bob.token, spaceId, cursor);
    const todo = await admin.api.createTodo(list.id, "First news");
    const events = (await stream.until((e) => e.spaceActivity.todoId === todo.id)).map((e) => e.spaceActivity);
    expect(events.map(describeEvent)).toEqual([`todo:CREATED:${todo.id}`]);
  });

  it(`joins replay and live with no gap and no duplicate while several clients write (more than one replay page of ${REPLAY_PAGE})`, async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 3);
    const [bob, carol, dave] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];
    const start = await admin.api.createList(spaceId, "Start");
    const { id: startId, cursor } = await cursorOf({ listId: start.id });

    // The backlog: well over two replay pages of readable events, plus carol's private ones.
    const writers: { api: Api; listId: string; todos: string[] }[] = [];
    for (const [writer, isPrivate] of [[admin, false], [bob, false], [carol, false], [carol, true], [dave, false]] as const) {
      const list = await writer.api.createList(spaceId, isPrivate ? "Private" : "Work", isPrivate);
      writers.push({ api: writer.api, listId: list.id, todos: [] });
    }
    const BACKLOG = 3 * REPLAY_PAGE - 50; // one in five goes to the private list
    await inParallel(BACKLOG, 4, async (index) => {
      const writer = writers[index % writers.length]!;
      writer.todos.push((await writer.api.createTodo(writer.listId, `Backlog ${index}`)).id);
    });
    const backlogThrough = (await newestEvent(server.database.prisma, { spaceId })).id;

    // Every writer keeps going in parallel while bob resumes from the start.
    // A write that completes after bob has received his first replayed event
    // and before he has received the whole backlog was committed during the
    // replay; each writer stops after a few of those (or at a bound).
    const backlogReadable = (await readableLogIds(spaceId, startId, backlogThrough, bob.id)).length;
    let stream: ReturnType<typeof resume> | undefined;
    let writesDuringReplay = 0;
    const MAX_WRITES_EACH = 150;
    await Promise.all(
      writers.map(async (writer, writerIndex) => {
        let mine = 0;
        for (let index = 0; index < MAX_WRITES_EACH && mine < 8; index++) {
          if (index % 2 === 0) writer.todos.push((await writer.api.createTodo(writer.listId, `Live ${writerIndex}.${index}`)).id);
          else await writer.api.updateTodo(writer.todos[index % writer.todos.length]!, { title: `Edit ${writerIndex}.${index}`, completed: index % 4 === 1 });
          if (index === 2 && !stream) stream = resume(bob.token, spaceId, cursor);
          const received = stream?.received.length ?? 0;
          if (received > 0 && received < backlogReadable) {
            mine++;
            writesDuringReplay++;
          }
          if (received >= backlogReadable) break;
        }
      }),
    );
    expect(backlogReadable).toBeGreaterThan(2 * REPLAY_PAGE);
    expect(writesDuringReplay).toBeGreaterThan(0);

    const sentinel = await admin.api.createList(spaceId, "Sentinel");
    const received = (await stream!.until((e) => e.spaceActivity.listId === sentinel.id, "the sentinel list", 60_000)).map(
      (e) => e.spaceActivity,
    );
    const receivedIds = received.map(idOf);
    const expected = await readableLogIds(spaceId, startId, receivedIds.at(-1)!, bob.id);
    expect(receivedIds.length).toBe(expected.length);
    expect(receivedIds).toEqual(expected);
    expect(received.some((event) => event.listId === writers[3]!.listId)).toBe(false);
    expect(stream!.errors).toEqual([]);

    // And live after that, still nothing repeated.
    const last = await dave.api.createTodo(writers[4]!.listId, "Last");
    const tail = (await stream!.until((e) => e.spaceActivity.todoId === last.id)).map((e) => e.spaceActivity);
    expect(tail.map(describeEvent)).toEqual([`todo:CREATED:${last.id}`]);
  }, 240_000); // hundreds of writes and a long replay; a busy machine gets time, not a timing assertion

  it("refuses malformed cursors with BAD_USER_INPUT", async () => {
    const { token } = await signUp(server);
    const spaceId = await api(server, token).createSpace();
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    const newest = (await server.database.prisma.event.findFirstOrThrow({ orderBy: { id: "desc" } })).id;
    const malformed = [
      "garbage",
      "",
      b64("ev:0"),
      b64("ev:-1"),
      b64("ev:01"),
      b64("ev:abc"),
      b64("ev:99999999999999999999"), // beyond bigint
      b64("todo:1"),
      testCursors.encode(newest + 1_000_000n), // made with the server's key, but for no event it issued
    ];
    for (const after of malformed) {
      const error = await open(token).subscribe(SPACE_ACTIVITY, { spaceId, after }).failure();
      expect({ after, ...error }).toEqual({ after, code: "BAD_USER_INPUT", field: "after", message: "That cursor is not valid." });
    }
  });
});

describe("a cursor older than the event log's retention", () => {
  let shortLived: TestServer;
  beforeAll(async () => {
    shortLived = await startTestServer({ env: { ...realtimeEnv(), EVENT_RETENTION: "2s" } });
  });
  afterAll(async () => {
    await shortLived?.close();
  });

  it("is refused with BAD_USER_INPUT naming the retention", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(shortLived, 1);
    const bob = members[0]!;
    const list = await admin.api.createList(spaceId, "Old news");
    const row = await shortLived.database.prisma.event.findFirstOrThrow({ where: { listId: list.id } });
    // The server prunes on its own, every 2 s here.
    await eventually(async () => (await shortLived.database.prisma.event.count({ where: { id: row.id } })) === 0, "the event to be pruned");

    const connection = connect(shortLived, bob.token);
    try {
      const error = await connection.subscribe(SPACE_ACTIVITY, { spaceId, after: testCursors.encode(row.id) }).failure();
      expect(error.code).toBe("BAD_USER_INPUT");
      expect(error.message).toBe("That cursor is older than the event log's retention (2 seconds). Reload and subscribe without 'after'.");
    } finally {
      await connection.dispose();
    }
  });
});

describe("pruning during a replay", () => {
  it("ends the replay with the retention error rather than skip what was pruned", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Long");
    const { id: startId } = await cursorOf({ listId: list.id });
    await inParallel(REPLAY_PAGE + 10, 4, (index) => admin.api.createTodo(list.id, `Item ${index}`));

    const realtime = await createRealtime(
      server.database.prisma,
      { ...server.config, eventRetentionMs: 7 * 86_400_000 },
      createLogger({ ...server.config, logLevel: "silent" }),
      testCursors,
    );
    try {
      const replay = realtime.replay({ spaceId }, await realtime.cursorPosition(startId));
      const firstPage: bigint[] = [];
      while (firstPage.length < REPLAY_PAGE) {
        const next = await replay.next();
        if (next.done) throw new Error("The replay ended early.");
        firstPage.push(next.value.id);
      }
      // A prune reaches past where the replay stands before it reads its next page.
      const reached = positionOf(await server.database.prisma.event.findUniqueOrThrow({ where: { id: firstPage.at(-1)! } }));
      await server.database.prisma.event.deleteMany({ where: { NOT: afterPosition(reached) } });
      await expect(replay.next()).rejects.toMatchObject({
        extensions: { code: "BAD_USER_INPUT" },
        message: expect.stringContaining("retention (7 days)"),
      });
    } finally {
      await realtime.close();
    }
  }, 120_000);
});

// Several server instances on one PostgreSQL database, with Redis as the
// wake-up bus between them: cross-instance delivery through Redis, and what
// happens while Redis is down and after it comes back.
//
// Instances A and B poll the event log only once an hour (EVENT_POLL_INTERVAL),
// so anything B delivers from a change made through A reached it through
// Redis. Instance C polls every second, as by default: the safety net that
// carries cross-instance delivery while Redis is away.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";
import {
  api,
  connect,
  describeEvent,
  PrivateRedis,
  untilLive,
  SPACE_ACTIVITY,
  TODO_CHANGED,
  type Api,
  type Connection,
  type SpaceActivity,
  type TodoChanged,
  testCursors,
  logBetween,
} from "./helpers.js";
import { captureLogs, type LogSink } from "../hardening/ops-support.js";

// PGlite is an in-process, single-connection database: two server instances
// cannot share one, so scale-out only exists (and is only tested) on PostgreSQL.
describe.skipIf(!usePostgres)("several instances sharing PostgreSQL, woken through Redis", () => {
  let redis: PrivateRedis;
  let shared: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  const connections: Connection[] = [];
  const open = (server: TestServer, token: string) => {
    const connection = connect(server, token);
    connections.push(connection);
    return connection;
  };

  // Fixture: alice writes, bob watches; one list, with a probe todo.
  let alice: { token: string; on: (server: TestServer) => Api };
  let bob: { token: string };
  let spaceId: string;
  let listId: string;
  let probeId: string;

  let logsOfA: LogSink;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    shared = await createTestDatabase();
    const slow = { REDIS_URL: redis.url, EVENT_POLL_INTERVAL: "1h" };
    logsOfA = captureLogs("debug");
    a = await startTestServer({ database: shared, env: slow, logger: logsOfA.logger });
    b = await startTestServer({ database: shared, env: slow });
    c = await startTestServer({ database: shared, env: { REDIS_URL: redis.url, EVENT_POLL_INTERVAL: "1s" } });

    const aliceUser = await signUp(a);
    const bobUser = await signUp(a);
    alice = { token: aliceUser.token, on: (server) => api(server, aliceUser.token) };
    bob = { token: bobUser.token };
    spaceId = await alice.on(a).createSpace("Scale-out");
    await alice.on(a).addMember(spaceId, bobUser.email);
    listId = (await alice.on(a).createList(spaceId, "Shared")).id;
    probeId = (await alice.on(a).createTodo(listId, "probe")).id;
  });

  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.dispose()));
    for (const server of [a, b, c]) await server?.close();
    await shared?.drop();
    await redis?.stop();
  });

  /**
   * todoChanged on `server` for bob, known to be registered once a probe
   * change made through that same server (the local path, no Redis) arrives.
   */
  async function watchOn(server: TestServer) {
    const stream = open(server, bob.token).subscribe<TodoChanged>(TODO_CHANGED, { listId });
    await untilLive(stream, () => alice.on(server).updateTodo(probeId, { title: "probe" }), (e) => e.todoChanged.todoId === probeId);
    return stream;
  }

  const isTodo = (id: string) => (e: TodoChanged) => e.todoChanged.todoId === id;
  const titles = (events: TodoChanged[]) =>
    events.filter((e) => e.todoChanged.todoId !== probeId).map((e) => `${e.todoChanged.kind}:${e.todoChanged.todo?.title ?? e.todoChanged.todoId}`);

  it("delivers a change made through A to a subscriber on B through Redis", async () => {
    const onB = await watchOn(b);
    const started = Date.now();
    const todo = await alice.on(a).createTodo(listId, "Made on A");
    const events = await onB.until(isTodo(todo.id));
    // For the record only (no timing assertion): B polls hourly, so this is the Redis path.
    console.info(`A -> B through Redis: ${Date.now() - started} ms from the mutation's start`);
    expect(titles(events)).toEqual(["CREATED:Made on A"]);
  });

  it("keeps delivering while Redis is down (locally at once, across instances by the poll), and through Redis again once it is back", async () => {
    const onA = await watchOn(a);
    const onB = await watchOn(b);
    const onC = await watchOn(c);

    // A subscriber on B, disconnected across the outage, keeps the cursor of
    // the last space event it saw.
    const away = open(b, bob.token);
    const awayStream = away.subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId });
    await untilLive(awayStream, () => alice.on(b).updateTodo(probeId, { title: "probe" }), (e) => e.spaceActivity.todoId === probeId);
    const beforeOutage = await alice.on(a).createTodo(listId, "Before the outage");
    const lastSeen = (await awayStream.until((e) => e.spaceActivity.todoId === beforeOutage.id)).at(-1)!.spaceActivity.cursor;
    await away.dispose();
    await onB.until(isTodo(beforeOutage.id));
    await onC.until(isTodo(beforeOutage.id));
    await onA.until(isTodo(beforeOutage.id));

    await redis.kill();

    // Same instance: the local bus never depended on Redis.
    const during = await alice.on(a).createTodo(listId, "During the outage");
    expect(titles(await onA.until(isTodo(during.id)))).toEqual(["CREATED:During the outage"]);
    // Another instance: C's one-second poll finds it in the log.
    expect(titles(await onC.until(isTodo(during.id)))).toEqual(["CREATED:During the outage"]);
    // B polls hourly and nothing was written through it: with Redis gone it
    // has had no way to hear of the change.
    expect(onB.unread().some(isTodo(during.id))).toBe(false);
    const renamed = await alice.on(c).updateTodo(during.id, { title: "During the outage, renamed on C" });
    expect(titles(await onC.until(isTodo(renamed.id)))).toEqual(["UPDATED:During the outage, renamed on C"]);
    // ...and neither A nor B can hear of a change made through C.
    expect(onA.unread().some(isTodo(renamed.id))).toBe(false);

    await redis.restart();

    // Once the instances have reconnected, a change through A wakes B through
    // Redis, and B's tailer reads everything it had not seen, in order. The
    // reconnection takes ioredis a moment: write until one such change arrives.
    let after: { id: string } | undefined;
    let caughtUp: TodoChanged[] = [];
    const attempts: { id: string; title: string }[] = [];
    for (let attempt = 1; attempt <= 20 && !after; attempt++) {
      const todo = await alice.on(a).createTodo(listId, `After the outage ${attempt}`);
      attempts.push(todo);
      try {
        caughtUp = await onB.until(isTodo(todo.id), "a change made through A", 250 * attempt);
        after = todo;
      } catch (error) {
        if (onB.errors.length > 0) throw error;
      }
    }
    expect(after, "B never heard from A through the restarted Redis").toBeDefined();
    // A's log: each Redis client's outage is one warning however many
    // reconnect attempts failed (the rest at debug), and one line when it is back.
    const redisLines = logsOfA.lines().filter((line) => String(line.msg).startsWith("redis connection"));
    for (const client of ["publisher", "subscriber", "rate limits"]) {
      const mine = redisLines.filter((line) => line.client === client);
      expect(mine.filter((line) => line.level === 40), client).toHaveLength(1);
      expect(mine.filter((line) => line.level === 30 && line.msg === "redis connection recovered"), client).toHaveLength(1);
    }
    // Rows as they are at delivery: the creation shows the later title.
    expect(titles(caughtUp)).toEqual([
      "CREATED:During the outage, renamed on C",
      "UPDATED:During the outage, renamed on C",
      ...attempts.map((todo) => `CREATED:${todo.title}`),
    ]);

    // The subscriber that was away resumes on B from its cursor and gets
    // everything it missed, in order: exactly the log's events after it.
    const last = await alice.on(a).createTodo(listId, "Last");
    const resumed = open(b, bob.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after: lastSeen });
    const replayed = (await resumed.until((e) => e.spaceActivity.todoId === last.id)).map((e) => e.spaceActivity);
    const log = await logBetween(b.database.prisma, { spaceId }, testCursors.decode(lastSeen), testCursors.decode(replayed.at(-1)!.cursor));
    expect(replayed.map((e) => testCursors.decode(e.cursor))).toEqual(log.map((row) => row.id));
    expect(replayed.map(describeEvent)).toEqual([
      `todo:CREATED:${during.id}`,
      `todo:UPDATED:${during.id}`,
      ...attempts.map((todo) => `todo:CREATED:${todo.id}`),
      `todo:CREATED:${last.id}`,
    ]);
    // And live after the replay, through Redis again.
    const live = await alice.on(a).createTodo(listId, "Live on B");
    expect((await resumed.until((e) => e.spaceActivity.todoId === live.id)).map((e) => describeEvent(e.spaceActivity))).toEqual([
      `todo:CREATED:${live.id}`,
    ]);
  });
});

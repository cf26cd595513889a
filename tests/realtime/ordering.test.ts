// The event log has no lock: events are ordered by (txid, id) and read only
// below the oldest transaction still running (src/realtime/eventLog.ts). So a
// transaction that appends an event and commits late, after later ones have
// committed, is neither skipped nor delivered out of the log's order, live or
// on resume. Only PostgreSQL runs transactions side by side: on the embedded
// database one connection serialises them.
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { readHorizon } from "../../src/realtime/eventLog.js";
import { adminUrl, usePostgres } from "../helpers/database.js";
import type { TestServer } from "../helpers/server.js";
import {
  logBetween,
  newestEvent,
  realtimeServerPerFile,
  SPACE_ACTIVITY,
  spaceWithMembers,
  testCursors,
  untilLive,
  type SpaceActivity,
} from "./helpers.js";

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started));

describe.skipIf(!usePostgres)("a transaction that commits late", () => {
  it("is delivered, in log order, live and on resume, while later ones commit first", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const list = await admin.api.createList(spaceId, "Ordering");
    const live = open(bob.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId });
    await untilLive(live, () => admin.api.createTodo(list.id, "probe"), (e) => e.spaceActivity.listId === list.id);
    const before = await newestEvent(server.database.prisma, { spaceId });

    // Open, append (as a mutation does: the row, then its event), sleep, commit.
    let lateTodoId: string | undefined;
    let appended: () => void = () => undefined;
    const appendedOnce = new Promise<void>((resolve) => (appended = resolve));
    const late = server.database.prisma.$transaction(
      async (tx) => {
        const todo = await tx.todo.create({ data: { listId: list.id, ownerId: admin.id, title: "Committed last" } });
        lateTodoId = todo.id;
        await tx.event.create({
          data: { kind: "CREATED", subject: "TODO", spaceId, listId: list.id, todoId: todo.id, listOwnerId: admin.id, listPrivate: false },
        });
        appended();
        await sleep(1500);
      },
      { timeout: 20_000 },
    );
    await appendedOnce;
    // Later writes: their events get higher ids and commit first.
    const early: { id: string }[] = [];
    for (const title of ["Committed first", "Committed second", "Committed third"]) early.push(await admin.api.createTodo(list.id, title));
    const lateRow = await server.database.prisma.event.findFirst({ where: { todoId: lateTodoId } });
    // Not committed yet: invisible to everyone else, and nothing after it may be delivered.
    expect(lateRow).toBeNull();
    await late;

    const wanted = new Set([lateTodoId, ...early.map((todo) => todo.id)]);
    // Delivery follows the log, whose last event is the third early one.
    const received = (await live.until((e) => e.spaceActivity.todoId === early.at(-1)!.id, "the last todo"))
      .map((e) => e.spaceActivity)
      .filter((event) => wanted.has(event.todoId));
    const through = await newestEvent(server.database.prisma, { spaceId });
    const log = await logBetween(server.database.prisma, { spaceId }, before.id, through.id);

    // The late event comes first in the log (its transaction is the oldest)
    // although it committed last: a reader that had moved past the others in
    // commit order would have skipped it for good.
    expect(log.map((row) => row.todoId)).toEqual([lateTodoId, ...early.map((todo) => todo.id)]);
    expect(received.map((event) => event.todoId)).toEqual(log.map((row) => row.todoId));
    expect(received.map((event) => testCursors.decode(event.cursor))).toEqual(log.map((row) => row.id));
    expect(live.errors).toEqual([]);

    // Resumed from before them: exactly the same events, in the same order.
    const resumed = open(bob.token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId, after: testCursors.encode(before.id) });
    const replayed = (await resumed.until((e) => e.spaceActivity.todoId === early.at(-1)!.id)).map((e) => e.spaceActivity);
    expect(replayed.map((event) => testCursors.decode(event.cursor))).toEqual(log.map((row) => row.id));
  });

  it("is waited for only when it runs on this database: a transaction on another one does not hold the horizon", async () => {
    /** Opens a transaction on `url` that holds a transaction id until the returned function commits it. */
    const holdTransaction = async (url: string) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query("BEGIN");
      const { rows } = await client.query<{ txid: string }>("SELECT pg_current_xact_id()::text AS txid");
      let ended: Promise<void> | undefined;
      return {
        txid: BigInt(rows[0]!.txid),
        end: () =>
          (ended ??= (async () => {
            await client.query("COMMIT");
            await client.end();
          })()),
      };
    };
    const elsewhere = await holdTransaction(adminUrl);
    const here = await holdTransaction((server.config.database as { url: string }).url);
    // A snapshot lists running transactions only below the newest one that
    // has ended (its xmax): a later transaction ends, as one does all the
    // time on a server in use, so that both open ones are below it.
    const later = await holdTransaction(adminUrl);
    await later.end();
    try {
      expect(elsewhere.txid).toBeLessThan(here.txid);
      // Never past this database's open transaction. And not held by the other
      // database's, which is older: a transaction of another database that
      // ends between the snapshot and the read of pg_stat_activity is kept in
      // for that one read (when in doubt, wait), so a few reads are taken.
      const horizons: bigint[] = [];
      for (let read = 0; read < 20 && !horizons.includes(here.txid); read++) {
        horizons.push(await readHorizon(server.database.prisma));
        await sleep(20);
      }
      expect(horizons.every((horizon) => horizon <= here.txid)).toBe(true);
      expect(horizons).toContain(here.txid);
      await here.end();
      let after = await readHorizon(server.database.prisma);
      for (let read = 0; read < 20 && after <= here.txid; read++) {
        await sleep(20);
        after = await readHorizon(server.database.prisma);
      }
      expect(after).toBeGreaterThan(here.txid);
    } finally {
      await here.end();
      await elsewhere.end();
    }
  });
});

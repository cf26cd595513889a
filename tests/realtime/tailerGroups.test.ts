// The tailer (src/realtime/tailer.ts) matches an event once per filter and
// hands it to recipient lists it keeps between events, remade when a
// subscription joins, leaves or turns direct. Against a real event log: on a
// random schedule of events in two spaces and their lists, subscriptions
// joining, completing and turning direct, every subscription must receive
// exactly the events that match its filter, were committed after it began
// and reached the tailer before it ended, in log order, through its queue
// until it turned direct and through the direct fan-out after; and each
// event's audience must name exactly the viewers of the subscriptions it was
// handed to.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { createMemoryBus, type EventBus } from "../../src/realtime/bus.js";
import { appendEvent, isAfter, type NewEvent } from "../../src/realtime/eventLog.js";
import type { ChangeEvent } from "../../src/realtime/events.js";
import type { DirectReceiver, DirectSubscription } from "../../src/realtime/multiplex.js";
import { EventTailer, matches, type EventFilter, type LiveSubscription, type TailedEvent } from "../../src/realtime/tailer.js";
import { mulberry32, pick } from "../domain/worlds.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let prisma: RawPrismaClient;
let bus: EventBus;
let tailer: EventTailer;
/** The test's record of each subscription, by the subscription the fan-out is handed. */
const watchedBy = new Map<DirectSubscription, Watched>();
/** What the direct fan-out was handed, in order. */
const handedDirect: { tailed: TailedEvent; subscriptions: readonly DirectSubscription[] }[] = [];

const tag = Math.random().toString(36).slice(2, 8);
const SPACES = [`sa${tag}`, `sb${tag}`];
const LISTS = SPACES.flatMap((space) => [`${space}-l1`, `${space}-l2`]);
const spaceOf = (listId: string) => listId.slice(0, listId.indexOf("-"));

beforeAll(async () => {
  server = await startTestServer();
  prisma = server.database.prisma;
  bus = createMemoryBus();
  tailer = new EventTailer(prisma, bus, server.logger, 50);
  await tailer.start();
  tailer.setDirectFanOut((tailed, subscriptions) => {
    handedDirect.push({ tailed, subscriptions });
    for (const subscription of subscriptions) watchedBy.get(subscription)!.direct.push(tailed.event.id);
  });
});
afterAll(async () => {
  await tailer?.stop();
  await bus?.close();
  await server?.close();
});

interface Watched {
  name: string;
  filter: EventFilter;
  viewer: string;
  live: LiveSubscription;
  /** Event ids received through the queue, and directly. */
  queued: bigint[];
  direct: bigint[];
  /** Set once the subscription turned direct: the event ids the tailer had passed by then are behind it. */
  turnedDirect: boolean;
  ended: boolean;
  /** How many events it had received through its queue when it turned direct: later ones all come directly. */
  queuedWhenDirect?: number;
  /** How many events had been committed when it was closed. */
  endedAfter?: number;
}

const receiver = (viewerId: string): DirectReceiver => ({
  viewerId,
  groupKey: "k",
  resultFor: () => Promise.reject(new Error("not executed in this test")),
  send: () => undefined,
});

async function commit(event: NewEvent): Promise<ChangeEvent> {
  const committed = await prisma.$transaction((tx) => appendEvent(tx, event));
  bus.publish();
  return committed;
}

/**
 * What `w` must receive of the events committed so far: those matching its
 * filter after the tailer's place when it subscribed (events committed
 * before but not yet read count: the tailer reads them after), up to its end.
 */
const expectedOf = (w: Watched, committed: readonly ChangeEvent[]) =>
  committed
    .slice(0, w.endedAfter ?? committed.length)
    .filter((event) => matches(w.filter, event) && isAfter(event, w.live.startPosition))
    .map((event) => event.id);

/** Waits (bounded) until every open subscription has received what it must of the events committed so far. */
async function drained(watched: readonly Watched[], committed: readonly ChangeEvent[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const done = watched.every((w) => w.queued.length + w.direct.length >= expectedOf(w, committed).length);
    if (done) return;
    if (Date.now() > deadline) throw new Error("the tailer did not hand out every event within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("the tailer's recipients by filter", () => {
  it("hands each event to exactly the subscriptions that match it, through queue or fan-out, as they join, leave and turn direct", async () => {
    const random = mulberry32(0x7a11e2);
    const watched: Watched[] = [];
    /** Every committed event, in commit order (one at a time: also log order). */
    const committed: ChangeEvent[] = [];

    /** Per event id, the audiences it was handed out with (one object, on either path). */
    const audiences = new Map<bigint, Set<ReadonlySet<string>>>();
    const noteAudience = (tailed: TailedEvent) => {
      const seen = audiences.get(tailed.event.id) ?? new Set();
      audiences.set(tailed.event.id, seen.add(tailed.audience));
    };
    const consume = (w: Watched) => {
      void (async () => {
        for await (const tailed of w.live.events) {
          noteAudience(tailed);
          w.queued.push(tailed.event.id);
        }
      })();
    };

    for (let step = 0; step < 120; step++) {
      const roll = random();
      const open = watched.filter((w) => !w.ended);
      if (roll < 0.25 || open.length === 0) {
        const kind = pick(random, ["space", "list", "subject"] as const);
        const listId = pick(random, LISTS);
        const filter: EventFilter =
          kind === "space" ? { spaceId: spaceOf(listId) } : kind === "list" ? { listId } : { spaceId: spaceOf(listId), subject: "TODO" };
        const w: Watched = {
          name: `w${watched.length}`,
          filter,
          viewer: `u${Math.floor(random() * 5)}`,
          live: undefined as unknown as LiveSubscription,
          queued: [],
          direct: [],
          turnedDirect: false,
          ended: false,
        };
        w.live = tailer.subscribe(filter, w.viewer);
        watchedBy.set(w.live as unknown as DirectSubscription, w);
        watched.push(w);
        consume(w);
      } else if (roll < 0.35) {
        const w = pick(random, open);
        await drained(watched, committed);
        w.live.close();
        w.ended = true;
        w.endedAfter = committed.length;
      } else if (roll < 0.45) {
        const w = pick(random, open);
        if (w.turnedDirect) continue;
        // Everything committed so far has been handed out: nothing is queued once the consumer has read it.
        await drained(watched, committed);
        await new Promise((resolve) => setTimeout(resolve, 0));
        // Caught up to the start of the log: the tailer has passed that, so only a non-empty queue could refuse.
        expect(w.live.goDirect(receiver(w.viewer), { txid: 0n, id: -1n })).toBe(true);
        w.turnedDirect = true;
        w.queuedWhenDirect = w.queued.length;
      } else {
        const listId = pick(random, LISTS);
        const event: NewEvent = {
          kind: pick(random, ["CREATED", "UPDATED", "DELETED"] as const),
          subject: pick(random, ["TODO", "LIST"] as const),
          spaceId: spaceOf(listId),
          listId,
          todoId: null,
          listOwnerId: "owner",
          listPrivate: false,
        };
        committed.push(await commit(event));
        // Some events are handed out before the next change, some pile up behind it.
        if (random() < 0.5) await drained(watched, committed);
      }
    }
    await drained(watched, committed);
    // Nothing more arrives late.
    await new Promise((resolve) => setTimeout(resolve, 100));

    for (const w of watched) {
      expect({ name: w.name, got: [...w.queued, ...w.direct] }).toEqual({ name: w.name, got: expectedOf(w, committed) });
      if (!w.turnedDirect) expect(w.direct).toEqual([]);
      else expect({ name: w.name, queued: w.queued.length }).toEqual({ name: w.name, queued: w.queuedWhenDirect });
    }
    expect(watched.some((w) => w.turnedDirect && w.direct.length > 0)).toBe(true);
    expect(watched.some((w) => w.ended)).toBe(true);

    // Each event's audience: one set, on both paths, naming exactly the viewers of the subscriptions that received it.
    for (const { tailed } of handedDirect) noteAudience(tailed);
    for (const { id } of committed) {
      const receivers = watched.filter((w) => w.queued.includes(id) || w.direct.includes(id));
      const seen = [...(audiences.get(id) ?? [])];
      expect(seen.length).toBe(receivers.length > 0 ? 1 : 0);
      if (receivers.length > 0) expect([...seen[0]!].sort()).toEqual([...new Set(receivers.map((w) => w.viewer))].sort());
    }
    // The direct fan-out is handed events in log order.
    const ids = handedDirect.map((handed) => handed.tailed);
    for (let index = 1; index < ids.length; index++) expect(isAfter(ids[index]!.event, ids[index - 1]!.event)).toBe(true);
  });
});

// The direct fan-out's loop (src/realtime/multiplex.ts) on its own: who is
// sent what, what a failure ends, the order of events, and how it shares the
// event loop. Its inputs are made here (an Audience, receivers that record
// what they are sent); the end-to-end path, with the database, the tailer and
// real sockets, is in the other realtime tests and bench:subscriptions.
import { describe, expect, it } from "vitest";
import { Audience } from "../../src/realtime/audience.js";
import type { DeliveredEvent } from "../../src/realtime/events.js";
import { createDirectFanOut, type DirectSubscription, type FanOutReport, type ForegroundWork, type SharedResult } from "../../src/realtime/multiplex.js";
import type { TailedEvent } from "../../src/realtime/tailer.js";
import { createLogger } from "../../src/logger.js";

const logger = createLogger({ logLevel: "silent" });

let nextEventId = 1n;
function tailedEvent(): TailedEvent {
  const id = nextEventId++;
  const event = { id, txid: id, kind: "UPDATED", subject: "TODO", spaceId: "s1", listId: "l1", todoId: "t1", listOwnerId: "u0", listPrivate: false } as const;
  return { event, audience: new Set() };
}
const deliveredOf = (tailed: TailedEvent): DeliveredEvent => ({ ...tailed.event, todo: null, list: null });

interface Recorded {
  subscription: DirectSubscription;
  sent: { event: bigint; result: SharedResult }[];
  failed: unknown[];
  closed: boolean;
}

/** A subscription of `viewerId` whose result key is `groupKey`; `resultCalls` counts the results made, by key. */
function subscriptionOf(viewerId: string, groupKey: string, resultCalls: Map<string, number>, options: { failResult?: boolean; onSend?: () => void } = {}): Recorded {
  const recorded: Recorded = { sent: [], failed: [], closed: false, subscription: undefined as unknown as DirectSubscription };
  recorded.subscription = {
    direct: {
      viewerId,
      groupKey,
      resultFor: async (delivered) => {
        resultCalls.set(groupKey, (resultCalls.get(groupKey) ?? 0) + 1);
        if (options.failResult) throw new Error(`cannot execute ${groupKey}`);
        return { result: { data: { event: String(delivered.id), key: groupKey } }, serialized: undefined };
      },
      send: (result) => {
        options.onSend?.();
        recorded.sent.push({ event: BigInt(String((result.result.data as { event: string }).event)), result });
      },
    },
    isClosed: () => recorded.closed,
    fail: (error) => {
      recorded.failed.push(error);
      recorded.closed = true;
    },
  };
  return recorded;
}

/** A fan-out whose decision allows `allowed` (or fails), and its reports as they come. */
function fanOutOf(allowed: (tailed: TailedEvent) => Promise<ReadonlySet<string>>, foreground?: ForegroundWork) {
  const reports: FanOutReport[] = [];
  let reported: (() => void) | undefined;
  const fanOut = createDirectFanOut(
    async (tailed) => new Audience(await allowed(tailed), deliveredOf(tailed)),
    logger,
    foreground,
    {
      onFanOut: (report) => {
        reports.push(report);
        reported?.();
      },
    },
  );
  const reportsReached = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (reports.length >= count ? resolve() : (reported = check));
      check();
    });
  return { fanOut, reports, reportsReached };
}

describe("the direct fan-out", () => {
  it("sends each allowed, open subscription the event once, with one result made per key", async () => {
    const calls = new Map<string, number>();
    const alice = [subscriptionOf("alice", "doc-a", calls), subscriptionOf("alice", "doc-b", calls), subscriptionOf("alice", "doc-a", calls)];
    const bob = [subscriptionOf("bob", "doc-a", calls), subscriptionOf("bob", "doc-b", calls)];
    const carol = [subscriptionOf("carol", "doc-a", calls)];
    const closedBob = subscriptionOf("bob", "doc-a", calls);
    closedBob.closed = true;
    const all = [...alice, ...bob, ...carol, closedBob];
    const { fanOut, reports, reportsReached } = fanOutOf(async () => new Set(["alice", "bob"]));

    const tailed = tailedEvent();
    fanOut(tailed, all.map((recorded) => recorded.subscription));
    await reportsReached(1);

    for (const recorded of [...alice, ...bob]) expect(recorded.sent.map((sent) => sent.event)).toEqual([tailed.event.id]);
    expect(carol[0]!.sent).toEqual([]);
    expect(closedBob.sent).toEqual([]);
    // One result per key for the event, shared by everyone with that key.
    expect(Object.fromEntries(calls)).toEqual({ "doc-a": 1, "doc-b": 1 });
    expect(alice[0]!.sent[0]!.result).toBe(bob[0]!.sent[0]!.result);
    expect(reports[0]).toMatchObject({ receivers: all.length, sent: 5 });
  });

  it("fails the subscriptions whose result cannot be made, and still sends the others", async () => {
    const calls = new Map<string, number>();
    const broken = [subscriptionOf("alice", "broken", calls, { failResult: true }), subscriptionOf("bob", "broken", calls, { failResult: true })];
    const fine = [subscriptionOf("alice", "fine", calls), subscriptionOf("bob", "fine", calls)];
    const { fanOut, reportsReached } = fanOutOf(async () => new Set(["alice", "bob"]));

    fanOut(tailedEvent(), [broken[0]!, fine[0]!, broken[1]!, fine[1]!].map((recorded) => recorded.subscription));
    await reportsReached(1);

    for (const recorded of broken) {
      expect(recorded.sent).toEqual([]);
      expect(recorded.failed).toHaveLength(1);
      expect(String(recorded.failed[0])).toContain("cannot execute broken");
    }
    for (const recorded of fine) expect(recorded.sent).toHaveLength(1);
    expect(calls.get("broken")).toBe(1);
  });

  it("fails every subscription handed over with an event that cannot be decided, and goes on with the next event", async () => {
    const calls = new Map<string, number>();
    const subscriptions = [subscriptionOf("alice", "k", calls), subscriptionOf("bob", "k", calls)];
    let decisions = 0;
    const { fanOut, reportsReached } = fanOutOf(async () => {
      decisions += 1;
      if (decisions === 1) throw new Error("the database is gone");
      return new Set(["alice", "bob"]);
    });
    const later = [subscriptionOf("alice", "k", calls)];

    fanOut(tailedEvent(), subscriptions.map((recorded) => recorded.subscription));
    const second = tailedEvent();
    fanOut(second, later.map((recorded) => recorded.subscription));
    await reportsReached(1);

    for (const recorded of subscriptions) {
      expect(recorded.sent).toEqual([]);
      expect(String(recorded.failed[0])).toContain("the database is gone");
    }
    expect(later[0]!.sent.map((sent) => sent.event)).toEqual([second.event.id]);
  });

  it("sends events in the order handed over, each one's writes after the previous one's, whichever is decided first", async () => {
    const calls = new Map<string, number>();
    const order: string[] = [];
    const subscriptions = ["a", "b", "c"].map((viewer) => subscriptionOf(viewer, "k", calls, { onSend: () => order.push(viewer) }));
    // The first event's decision is the slowest.
    const delays = [30, 0, 10];
    let call = 0;
    const { fanOut, reportsReached } = fanOutOf(async () => {
      await new Promise((resolve) => setTimeout(resolve, delays[call++]));
      return new Set(["a", "b", "c"]);
    });
    const events = [tailedEvent(), tailedEvent(), tailedEvent()];
    for (const tailed of events) fanOut(tailed, subscriptions.map((recorded) => recorded.subscription));
    await reportsReached(3);

    for (const recorded of subscriptions) expect(recorded.sent.map((sent) => sent.event)).toEqual(events.map((tailed) => tailed.event.id));
    expect(order).toEqual(["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
  });

  it("lets I/O in while it goes through a large audience, also where nobody is allowed", async () => {
    const calls = new Map<string, number>();
    const busy = (microseconds: number) => {
      const until = performance.now() + microseconds / 1000;
      while (performance.now() < until);
    };
    // 4,000 subscriptions of viewers not allowed, each costing 5 µs to look at (20 ms in all), then one allowed.
    const subscriptions = Array.from({ length: 4_000 }, (_, index) => subscriptionOf(`outsider-${index}`, "k", calls));
    const insider = subscriptionOf("insider", "k", calls);
    const { fanOut, reports, reportsReached } = fanOutOf(async () => {
      const allowed = new Set(["insider"]);
      return { has: (viewer: string) => (busy(5), allowed.has(viewer)) } as unknown as ReadonlySet<string>;
    });
    let ioRanAt: number | undefined;
    fanOut(tailedEvent(), [...subscriptions, insider].map((recorded) => recorded.subscription));
    // A timer due right away: it runs only when the loop lets I/O in.
    setTimeout(() => (ioRanAt = reports.length), 1);
    await reportsReached(1);

    expect(ioRanAt).toBe(0);
    expect(reports[0]!.slices).toBeGreaterThan(0);
    expect(insider.sent).toHaveLength(1);
    expect(subscriptions.every((recorded) => recorded.sent.length === 0)).toBe(true);
  });

  it("waits for HTTP requests between slices, within its budget, so a steady stream of requests cannot stop it", async () => {
    const calls = new Map<string, number>();
    const busy = (microseconds: number) => {
      const until = performance.now() + microseconds / 1000;
      while (performance.now() < until);
    };
    // Each send costs 20 µs: 2,000 of them hold the loop for 40 ms in all.
    const subscriptions = Array.from({ length: 2_000 }, (_, index) => subscriptionOf(`viewer-${index}`, "k", calls, { onSend: () => busy(20) }));
    // A request that never finishes: the fan-out waits for it only as long as its budget allows.
    let waits = 0;
    const neverSettled: ForegroundWork = {
      settled: (maxWaitMs) => {
        waits += 1;
        return new Promise((resolve) => setTimeout(resolve, maxWaitMs));
      },
    };
    const { fanOut, reports, reportsReached } = fanOutOf(async () => new Set(subscriptions.map((_, index) => `viewer-${index}`)), neverSettled);
    const started = performance.now();
    fanOut(tailedEvent(), subscriptions.map((recorded) => recorded.subscription));
    await reportsReached(1);
    const elapsed = performance.now() - started;

    expect(subscriptions.every((recorded) => recorded.sent.length === 1)).toBe(true);
    const report = reports[0]!;
    expect(waits).toBeGreaterThan(0);
    expect(report.gaveWayMs).toBeGreaterThan(0);
    // The budget: 25 ms of credit plus as long as it was itself sending
    // (each wait may overrun its timer by a few ms on a busy machine).
    const sendingMs = report.sendMs - report.gaveWayMs;
    expect(report.gaveWayMs).toBeLessThanOrEqual(25 + sendingMs + waits * 5);
    expect(elapsed).toBeGreaterThanOrEqual(report.sendMs);
  });

  it("does not wait when no request is executing", async () => {
    const calls = new Map<string, number>();
    const subscriptions = Array.from({ length: 500 }, (_, index) => subscriptionOf(`viewer-${index}`, "k", calls, { onSend: () => undefined }));
    const idle: ForegroundWork = { settled: () => Promise.resolve() };
    const { fanOut, reports, reportsReached } = fanOutOf(async () => new Set(subscriptions.map((_, index) => `viewer-${index}`)), idle);
    fanOut(tailedEvent(), subscriptions.map((recorded) => recorded.subscription));
    await reportsReached(1);
    expect(reports[0]!.sent).toBe(500);
    expect(reports[0]!.gaveWayMs).toBeLessThan(5);
  });
});

// Sending one live event to thousands of subscriptions without a chain of
// promises per subscription: subscriptions whose result is the same for every
// viewer allowed the event (execution.ts) are "direct" once they are caught
// up. The tailer hands each event's direct receivers here together; the event
// is decided once for all of them (audience.ts), executed and serialized once
// per document and variables, and written to each allowed receiver's socket
// in one loop (Hasura multiplexes live queries the same way). The loop lets
// I/O in every half millisecond, and gives way to HTTP requests executing on
// this instance until they finish (within a budget: below), so a request
// arriving during a large fan-out is not held up behind it; a subscription
// that ends meanwhile is sent nothing more.
//
// Order: events are sent in log order, one event's loop after the previous
// one's (decisions of later events may start meanwhile). A subscription turns
// direct only when everything before has been handed to its socket
// (stream.ts), so the two paths never reorder an event.
import { setImmediate as yieldToIo } from "node:timers/promises";
import type { ExecutionResult } from "graphql";
import type { Logger } from "../logger.js";
import type { Audience } from "./audience.js";
import type { DeliveredEvent } from "./events.js";
import type { TailedEvent } from "./tailer.js";

export interface DirectReceiver {
  readonly viewerId: string;
  /** Receivers with the same key compute the same result for an event. */
  readonly groupKey: string;
  /** The result for the event, executed once per key and event (execution.ts). */
  resultFor(delivered: DeliveredEvent): Promise<SharedResult>;
  /** Writes the result to the receiver's socket (websocket.ts). */
  send(result: SharedResult): void;
}

/** A subscription the tailer hands to the fan-out (tailer.ts): its receiver, and its state. */
export interface DirectSubscription {
  readonly direct: DirectReceiver | undefined;
  /** Ended: the fan-out lets I/O in between its writes, and a subscription completed or failed meanwhile is sent nothing more. */
  isClosed(): boolean;
  /** Ends the subscription with an error (its event could not be decided or executed). */
  fail(error: unknown): void;
}

export interface SharedResult {
  result: ExecutionResult;
  /** `result` as JSON, made once for every receiver (absent when it has errors: those are formatted per receiver). */
  serialized: string | undefined;
}

export type DirectFanOut = (tailed: TailedEvent, subscriptions: readonly DirectSubscription[]) => void;

/** Work the fan-out gives way to: the HTTP requests executing on this instance (http/operationQueue.ts). */
export interface ForegroundWork {
  /** Resolves at once when nothing is executing, else when the last request finishes or after `maxWaitMs`. */
  settled(maxWaitMs: number): Promise<void>;
}

/** What one event's direct fan-out did: for the debug log line and the metrics. */
export interface FanOutReport {
  /** Subscriptions handed over with the event. */
  receivers: number;
  /** Frames written (the receivers allowed the event whose subscription was still open). */
  sent: number;
  /** From the event handed over to its receivers decided. */
  decideMs: number;
  /** From then to the last frame written: decideMs + sendMs is what the last receiver waited here. */
  sendMs: number;
  /** How often the send loop let I/O in. */
  slices: number;
  /** How long it waited for HTTP requests meanwhile. */
  gaveWayMs: number;
}

export interface FanOutObserver {
  onFanOut(report: FanOutReport): void;
}

/**
 * How long the send loop holds the event loop before it lets I/O in.
 * Writing 10,000 sockets takes over 100 ms, and every request arriving
 * meanwhile (each statement of a mutation, a ping) would wait that long: a
 * mutation sent during a 10,000-socket fan-out took 13× its idle time
 * without slices, 3× with slices of 0.25 to 1 ms (bench:subscriptions), the
 * rest being the two processes' competition for this machine's two cores.
 * Each turn costs microseconds.
 */
const SEND_SLICE_MS = 0.5;

/**
 * After a slice, while HTTP requests are executing, the loop waits for them
 * to finish. The wait is what makes a mutation's latency during a fan-out
 * close to its idle one: its statements are answered while the loop is not
 * holding the event loop, and on a machine with few cores the database gets
 * the CPU the loop would have taken. Waiting until the requests finish
 * (instead of a millisecond at a time, which let the loop back in between
 * each of a mutation's statements), with the one sliced pass below, took a
 * mutation during a 10,000-socket fan-out from 1.9–2.9× its idle time to
 * 1.1–1.9× (bench:subscriptions, three interleaved runs each); the
 * fan-out's own p99 did not suffer, as it waits only while requests execute.
 *
 * Bounded by a budget, so that under a steady stream of requests a fan-out
 * still gets half of the event loop: one event's loop waits at most
 * GIVE_WAY_CREDIT_MS in all plus as long as it has itself been sending, and
 * at most MAX_GIVE_WAY_MS at a time (a request stuck on a slow statement does
 * not hold it for longer).
 */
const GIVE_WAY_CREDIT_MS = 25;
const MAX_GIVE_WAY_MS = 10;

export function createDirectFanOut(
  decide: (tailed: TailedEvent) => Promise<Audience>,
  logger: Logger,
  foreground?: ForegroundWork,
  observer?: FanOutObserver,
): DirectFanOut {
  let previous: Promise<void> = Promise.resolve();
  return (tailed, subscriptions) => {
    const handedAt = performance.now();
    const decision = decide(tailed);
    // Handled in turn below; this only keeps an early failure from being reported as unhandled.
    decision.catch(() => undefined);
    previous = previous.then(async () => {
      let audience: Audience;
      try {
        audience = await decision;
      } catch (error) {
        for (const subscription of subscriptions) subscription.fail(error);
        return;
      }
      const decidedAt = performance.now();
      // For the debug line: how often the loop let I/O in, and how long it waited for requests.
      let slices = 0;
      let gaveWayMs = 0;
      const betweenSlices = async () => {
        slices += 1;
        await yieldToIo();
        if (!foreground) return;
        const sendingMs = performance.now() - decidedAt - gaveWayMs;
        const budgetMs = Math.min(MAX_GIVE_WAY_MS, GIVE_WAY_CREDIT_MS + sendingMs - gaveWayMs);
        if (budgetMs <= 0) return;
        const waitedFrom = performance.now();
        await foreground.settled(budgetMs);
        gaveWayMs += performance.now() - waitedFrom;
      };
      // One pass over the subscriptions, sliced like the writes: sorting
      // 10,000 of them into groups first held the event loop for 8–11 ms in
      // one piece (a mutation arriving meanwhile waited that long). Each
      // result is made by the first receiver of its row and key.
      const results = new Map<DeliveredEvent, Map<string, ResultOrFailure>>();
      let sent = 0;
      let visited = 0;
      let sliceStarted = decidedAt;
      for (const subscription of subscriptions) {
        const receiver = subscription.direct;
        const delivered = receiver && audience.get(receiver.viewerId);
        if (delivered) {
          let byKey = results.get(delivered);
          if (!byKey) results.set(delivered, (byKey = new Map()));
          let made = byKey.get(receiver.groupKey);
          if (!made) {
            made = await receiver.resultFor(delivered).then(
              (shared): ResultOrFailure => ({ shared }),
              (error: unknown): ResultOrFailure => ({ error }),
            );
            byKey.set(receiver.groupKey, made);
          }
          if ("error" in made) subscription.fail(made.error);
          else if (!subscription.isClosed()) {
            receiver.send(made.shared);
            sent += 1;
          }
        }
        // performance.now() costs tens of nanoseconds: looked at every 32 subscriptions.
        if ((++visited & 31) === 0 && performance.now() - sliceStarted > SEND_SLICE_MS) {
          await betweenSlices();
          sliceStarted = performance.now();
        }
      }
      const report: FanOutReport = {
        receivers: subscriptions.length,
        sent,
        decideMs: round(decidedAt - handedAt),
        sendMs: round(performance.now() - decidedAt),
        slices,
        gaveWayMs: round(gaveWayMs),
      };
      observer?.onFanOut(report);
      logger.debug(report, "realtime fan-out");
    }).catch((error: unknown) => logger.error({ err: error }, "realtime fan-out failed"));
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;

type ResultOrFailure = { shared: SharedResult } | { error: unknown };

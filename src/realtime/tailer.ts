// One reader of the event log per instance. It remembers where in the log it
// stands, and whenever the bus says the log has grown (or the poll interval
// passes, as a safety net for lost bus messages) it reads the new rows, in log
// order, and hands each to every local subscriber whose filter matches.
//
// It only ever passes rows below the horizon (eventLog.ts), the part of the
// log that can no longer change, so "every row after where I stand" is always
// a gap-free continuation. A committed row above the horizon waits for the
// older transactions to end; the tailer then looks again soon, backing off up
// to the poll interval, rather than waiting for the next bus message (the
// older transaction may write no event, so nobody would announce its end).
// This module reads the Event table directly: it holds ids only, and each
// event is checked against every subscriber's rights before anything is
// delivered (audience.ts).
//
// An event goes to all its local subscribers as one shared TailedEvent that
// names their audience (the viewers behind them): the event is then decided
// once for all of them, by whichever subscriber reaches it first.
import type { RawPrismaClient } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { EventBus } from "./bus.js";
import type { ChangeEvent } from "./events.js";
import {
  afterPosition,
  belowHorizon,
  isAfter,
  laterOf,
  LOG_ORDER,
  positionOf,
  readHorizon,
  toChangeEvent,
  type LogPosition,
} from "./eventLog.js";
import { recurringFailure, type RecurringFailure } from "../recurringFailure.js";
import { timerDelay } from "../timers.js";
import { HeldRetry } from "./heldRetry.js";
import type { DirectFanOut, DirectReceiver } from "./multiplex.js";

export interface EventFilter {
  spaceId?: string;
  listId?: string;
  subject?: ChangeEvent["subject"];
}

export function matches(filter: EventFilter, event: ChangeEvent): boolean {
  return (
    (filter.spaceId === undefined || filter.spaceId === event.spaceId) &&
    (filter.listId === undefined || filter.listId === event.listId) &&
    (filter.subject === undefined || filter.subject === event.subject)
  );
}

/** One event, as handed to every local subscription it matched. */
export interface TailedEvent {
  readonly event: ChangeEvent;
  /** The audience keys (viewer ids) of the subscriptions it was handed to. */
  readonly audience: ReadonlySet<string>;
}

export interface LiveSubscription {
  /** Where in the log the tailer stood when this subscription began. */
  readonly startPosition: LogPosition;
  /** Live events after startPosition, in log order. Ends as soon as close() is called. */
  readonly events: AsyncIterableIterator<TailedEvent>;
  /** Stops delivery at once: queued events are dropped, a pending next() ends. */
  close(): void;
  /**
   * Hands the subscription's later events to the direct fan-out (multiplex.ts)
   * instead of its queue, if nothing is queued and the tailer has passed
   * `caughtUpTo` (a replay may have read past it); false otherwise.
   */
  goDirect(receiver: DirectReceiver, caughtUpTo: LogPosition): boolean;
  /** Settles when the subscription ends: resolves on close(), rejects with what fail() was given. */
  readonly ended: Promise<void>;
  /** Ends the subscription with an error. */
  fail(error: unknown): void;
  /** Whether it has ended: a fan-out already under way must not send it more. */
  isClosed(): boolean;
}

interface Subscriber {
  filter: EventFilter;
  audienceKey: string;
  /** Set once the subscription is direct: its events go to the direct fan-out. */
  direct: DirectReceiver | undefined;
  push(event: TailedEvent): void;
  close(): void;
}

const BATCH = 500;

export class EventTailer {
  private position: LogPosition = belowHorizon(0n);
  private readonly heldRetry: HeldRetry;
  private readonly subscribers = new Set<Subscriber>();
  private readonly advanceListeners = new Set<() => void>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribeBus: (() => void) | undefined;
  private readonly readFailures: RecurringFailure;
  private directFanOut: DirectFanOut | undefined;

  constructor(
    private readonly prisma: RawPrismaClient,
    private readonly bus: EventBus,
    logger: Logger,
    private readonly pollIntervalMs: number,
  ) {
    this.readFailures = recurringFailure(logger, "event log read");
    this.heldRetry = new HeldRetry(pollIntervalMs, () => this.wake());
  }

  async start(): Promise<void> {
    this.position = belowHorizon(await readHorizon(this.prisma));
    // Every message means "the log has grown": which rows are readable yet
    // depends on the horizon, so the id it names is no guide.
    this.unsubscribeBus = this.bus.onPublished(() => this.wake());
    // Always on, not only while someone listens: a tailer that fell behind
    // while it had no subscribers (a bus message lost during a Redis outage)
    // would otherwise hand its next subscriber events from before it subscribed.
    this.pollTimer = setInterval(() => this.wake(), timerDelay(this.pollIntervalMs));
    this.pollTimer.unref();
  }

  /** Where direct subscriptions' events go (LiveSubscription.goDirect); without it none turns direct. */
  setDirectFanOut(fanOut: DirectFanOut): void {
    this.directFanOut = fanOut;
  }

  /**
   * `audienceKey`: who the subscription delivers to (the viewer's id).
   * `bound`: at most `maxPending` events wait for the consumer; one more ends
   * the subscription and calls `overflow` (a consumer that stopped reading).
   */
  subscribe(filter: EventFilter, audienceKey: string, bound?: { maxPending: number; overflow(): void }): LiveSubscription {
    let queue: TailedEvent[] = [];
    let waiting: ((result: IteratorResult<TailedEvent>) => void) | undefined;
    let closed = false;
    let settle: { resolve: () => void; reject: (error: unknown) => void } | undefined;
    const ended = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // Nobody may be waiting on it; a failure is also seen through next().
    ended.catch(() => undefined);
    let failure: { error: unknown } | undefined;
    const subscriber: Subscriber = {
      filter,
      audienceKey,
      direct: undefined,
      push: (event) => {
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: event, done: false });
        } else if (bound && queue.length >= bound.maxPending) {
          subscriber.close();
          bound.overflow();
        } else queue.push(event);
      },
      close: () => {
        if (closed) return;
        closed = true;
        queue = [];
        this.subscribers.delete(subscriber);
        waiting?.({ value: undefined, done: true });
        waiting = undefined;
        if (failure) settle?.reject(failure.error);
        else settle?.resolve();
      },
    };
    if (this.stopped) subscriber.close();
    else this.subscribers.add(subscriber);

    const events: AsyncIterableIterator<TailedEvent> = {
      next: () => {
        if (closed) return Promise.resolve({ value: undefined, done: true });
        const next = queue.shift();
        if (next) return Promise.resolve({ value: next, done: false });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        subscriber.close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return {
      startPosition: this.position,
      events,
      close: subscriber.close,
      ended,
      fail: (error) => {
        failure ??= { error };
        subscriber.close();
      },
      isClosed: () => closed,
      goDirect: (receiver, caughtUpTo) => {
        if (closed || queue.length > 0 || !this.directFanOut) return false;
        if (isAfter(caughtUpTo, this.position)) return false;
        subscriber.direct = receiver;
        return true;
      },
    };
  }

  /**
   * Calls `listener` whenever the tailer's place in the log moves on: more of
   * the log has become final. Cheaper than a subscription for a reader that
   * reads the log itself (the webhook dispatcher): it does not make the
   * tailer read rows nobody else wants.
   */
  onAdvance(listener: () => void): () => void {
    this.advanceListeners.add(listener);
    return () => this.advanceListeners.delete(listener);
  }

  private moveTo(position: LogPosition): void {
    const moved = position.txid !== this.position.txid || position.id !== this.position.id;
    this.position = position;
    if (moved) for (const listener of this.advanceListeners) listener();
  }

  /** Reads new rows now; coalesces overlapping calls into one more read. */
  wake(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readNew()
      .then(
        () => this.readFailures.recovered(),
        (error: unknown) => this.readFailures.failed(error),
      )
      .finally(() => {
        this.reading = undefined;
        if (this.readAgain) {
          this.readAgain = false;
          this.wake();
        }
      });
  }

  private async readNew(): Promise<void> {
    // First the horizon, then the rows: every row below a horizon read
    // earlier is committed by the time the rows are read.
    const horizon = await readHorizon(this.prisma);
    if (this.subscribers.size === 0) {
      // Nobody to hand rows to: just keep up with the final part of the log.
      // A subscriber may have arrived while that query was in flight, with
      // startPosition at the old place. Skipping ahead would then drop the
      // events between the two for it, including ones committed after it
      // subscribed (and after a replay it started had already read to the
      // horizon): so skip only while there is still nobody to hand rows to,
      // and otherwise read the rows as usual.
      if (this.subscribers.size === 0) {
        this.moveTo(laterOf(this.position, belowHorizon(horizon)));
        return;
      }
    }
    let held = false;
    for (;;) {
      const rows = await this.prisma.event.findMany({ where: afterPosition(this.position), orderBy: LOG_ORDER, take: BATCH });
      for (const row of rows) {
        if (row.txid >= horizon) {
          held = true;
          break;
        }
        const event = toChangeEvent(row);
        this.position = positionOf(event);
        const queued: Subscriber[] = [];
        const direct: DirectReceiver[] = [];
        const audience = new Set<string>();
        for (const subscriber of this.subscribers) {
          if (!matches(subscriber.filter, event)) continue;
          if (subscriber.direct) direct.push(subscriber.direct);
          else queued.push(subscriber);
          audience.add(subscriber.audienceKey);
        }
        if (audience.size === 0) continue;
        const tailed: TailedEvent = { event, audience };
        for (const subscriber of queued) subscriber.push(tailed);
        if (direct.length > 0) this.directFanOut?.(tailed, direct);
      }
      if (held || rows.length < BATCH || this.stopped) break;
    }
    if (held) {
      for (const listener of this.advanceListeners) listener();
      return this.heldRetry.schedule();
    }
    // Everything below the horizon has been passed on, whatever it held.
    this.moveTo(laterOf(this.position, belowHorizon(horizon)));
    this.heldRetry.reset();
  }

  /** Ends every subscription and waits for a read in progress, for an orderly shutdown. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.heldRetry.stop();
    this.unsubscribeBus?.();
    for (const subscriber of this.subscribers) subscriber.close();
    await this.reading;
  }
}

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
// once for all of them, by whichever subscriber reaches it first. Subscribers
// are kept by filter (FilterGroup), so an event is matched once per filter,
// and 10,000 subscribers of one space cost an event no loop over them here.
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
import type { DirectFanOut, DirectReceiver, DirectSubscription } from "./multiplex.js";

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
}

interface Subscriber extends DirectSubscription {
  filter: EventFilter;
  audienceKey: string;
  /** Set once the subscription is direct: its events go to the direct fan-out. */
  direct: DirectReceiver | undefined;
  push(event: TailedEvent): void;
  close(): void;
}

interface SubscriptionHost {
  remove(subscriber: Subscriber): void;
  /** The subscriber's events go to the direct fan-out from now on. */
  turnedDirect(subscriber: Subscriber): void;
  /** Whether a subscription caught up to `caughtUpTo` may turn direct: there is a fan-out, and the tailer has passed it. */
  mayGoDirect(caughtUpTo: LogPosition): boolean;
}

/**
 * One subscription: its own queue and its state, in one object whose
 * methods are on the prototype. (As closures over the subscribe call, each
 * subscription carried a dozen functions and their scope: with thousands
 * open, a sizeable part of what each one kept.)
 */
class QueuedSubscription implements Subscriber, LiveSubscription, AsyncIterableIterator<TailedEvent> {
  direct: DirectReceiver | undefined = undefined;
  private queue: TailedEvent[] = [];
  private waiting: ((result: IteratorResult<TailedEvent>) => void) | undefined = undefined;
  private closed = false;
  private failure: { error: unknown } | undefined = undefined;
  /** The failure it was closed with, if any. */
  private closedWith: { error: unknown } | undefined = undefined;
  /** Made when first asked for (only a direct subscription waits on it), settled on close. */
  private endedPromise: Promise<void> | undefined = undefined;
  private settle: { resolve: () => void; reject: (error: unknown) => void } | undefined = undefined;

  constructor(
    private readonly host: SubscriptionHost,
    readonly startPosition: LogPosition,
    readonly filter: EventFilter,
    readonly audienceKey: string,
    private readonly bound: { maxPending: number; overflow(): void } | undefined,
  ) {}

  get events(): AsyncIterableIterator<TailedEvent> {
    return this;
  }

  get ended(): Promise<void> {
    if (!this.endedPromise) {
      if (this.closed) {
        // As it would have settled at close(): a fail() after that does not count.
        this.endedPromise = this.closedWith ? Promise.reject(this.closedWith.error) : Promise.resolve();
      } else {
        this.endedPromise = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
      }
      // Nobody may be waiting on it; a failure is also seen through next().
      this.endedPromise.catch(() => undefined);
    }
    return this.endedPromise;
  }

  push(event: TailedEvent): void {
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting({ value: event, done: false });
    } else if (this.bound && this.queue.length >= this.bound.maxPending) {
      this.close();
      this.bound.overflow();
    } else this.queue.push(event);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = this.failure;
    this.queue = [];
    this.host.remove(this);
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
    if (this.failure) this.settle?.reject(this.failure.error);
    else this.settle?.resolve();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.close();
  }

  isClosed(): boolean {
    return this.closed;
  }

  goDirect(receiver: DirectReceiver, caughtUpTo: LogPosition): boolean {
    if (this.closed || this.queue.length > 0 || !this.host.mayGoDirect(caughtUpTo)) return false;
    this.direct = receiver;
    this.host.turnedDirect(this);
    return true;
  }

  next(): Promise<IteratorResult<TailedEvent>> {
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    const next = this.queue.shift();
    if (next) return Promise.resolve({ value: next, done: false });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<TailedEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TailedEvent> {
    return this;
  }
}

const BATCH = 500;

/** Who an event is handed to: the subscriptions it goes to through their queues and directly, and the viewers behind them all. */
interface Recipients {
  readonly queued: readonly Subscriber[];
  readonly direct: readonly Subscriber[];
  readonly audience: ReadonlySet<string>;
}

const filterKey = (filter: EventFilter) => JSON.stringify([filter.spaceId ?? null, filter.listId ?? null, filter.subject ?? null]);

/**
 * The subscriptions with one filter (10,000 subscribers of one space are one
 * group), and their Recipients, made once and kept until one of them joins,
 * leaves or turns direct. An event is then matched once per filter, not once
 * per subscription, and handed to lists and a set made before it arrived.
 * What was handed out is never changed: a change makes new ones.
 */
class FilterGroup {
  readonly members = new Set<Subscriber>();
  private made: Recipients | undefined;
  constructor(readonly filter: EventFilter) {}

  changed(): void {
    this.made = undefined;
  }

  recipients(): Recipients {
    if (this.made) return this.made;
    const queued: Subscriber[] = [];
    const direct: Subscriber[] = [];
    const audience = new Set<string>();
    for (const member of this.members) {
      (member.direct ? direct : queued).push(member);
      audience.add(member.audienceKey);
    }
    return (this.made = { queued, direct, audience });
  }
}

/** The recipients of several groups an event matched (a space's and one of its lists'), as one. */
function joined(groups: readonly FilterGroup[]): Recipients {
  if (groups.length === 1) return groups[0]!.recipients();
  const parts = groups.map((group) => group.recipients());
  return {
    queued: parts.flatMap((part) => part.queued),
    direct: parts.flatMap((part) => part.direct),
    audience: new Set(parts.flatMap((part) => [...part.audience])),
  };
}

export class EventTailer {
  private position: LogPosition = belowHorizon(0n);
  private readonly heldRetry: HeldRetry;
  /** The subscribers, by filter (filterKey); a group goes when its last member does. */
  private readonly groups = new Map<string, FilterGroup>();
  private readonly advanceListeners = new Set<() => void>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribeBus: (() => void) | undefined;
  private readonly readFailures: RecurringFailure;
  private directFanOut: DirectFanOut | undefined;
  /** What its subscriptions see of the tailer: one object for all of them. */
  private readonly host: SubscriptionHost = {
    remove: (subscriber) => {
      const key = filterKey(subscriber.filter);
      const group = this.groups.get(key);
      if (!group?.members.delete(subscriber)) return;
      group.changed();
      if (group.members.size === 0) this.groups.delete(key);
    },
    turnedDirect: (subscriber) => this.groups.get(filterKey(subscriber.filter))?.changed(),
    mayGoDirect: (caughtUpTo) => this.directFanOut !== undefined && !isAfter(caughtUpTo, this.position),
  };

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
    const subscription = new QueuedSubscription(this.host, this.position, filter, audienceKey, bound);
    if (this.stopped) {
      subscription.close();
      return subscription;
    }
    const key = filterKey(filter);
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = new FilterGroup(filter)));
    group.members.add(subscription);
    group.changed();
    return subscription;
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
    if (this.groups.size === 0) {
      // Nobody to hand rows to: just keep up with the final part of the log.
      // A subscriber may have arrived while that query was in flight, with
      // startPosition at the old place. Skipping ahead would then drop the
      // events between the two for it, including ones committed after it
      // subscribed (and after a replay it started had already read to the
      // horizon): so skip only while there is still nobody to hand rows to,
      // and otherwise read the rows as usual.
      if (this.groups.size === 0) {
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
        const matched: FilterGroup[] = [];
        for (const group of this.groups.values()) if (matches(group.filter, event)) matched.push(group);
        if (matched.length === 0) continue;
        const { queued, direct, audience } = joined(matched);
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
    // close() takes each out of its group (and an emptied group out of the map): both iterations allow that.
    for (const group of this.groups.values()) for (const subscriber of group.members) subscriber.close();
    await this.reading;
  }
}

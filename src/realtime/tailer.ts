// One reader of the event log per instance. It remembers the last id it has
// seen, and whenever the bus says the log has grown (or the poll interval
// passes, as a safety net for lost bus messages) it reads the new rows, in id
// order, and hands each to every local subscriber whose filter matches.
//
// Because ids are committed in order (eventLog.ts), "every row with id > last
// seen" is always a gap-free continuation. This module reads the Event table
// directly: it holds ids only, and every subscriber re-checks each event
// against its own policy-bound client before anything is delivered.
import type { RawPrismaClient } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { EventBus } from "./bus.js";
import type { ChangeEvent } from "./events.js";
import { toChangeEvent } from "./eventLog.js";
import { recurringFailure, type RecurringFailure } from "../recurringFailure.js";
import { timerDelay } from "../timers.js";

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

export interface LiveSubscription {
  /** The last log id the tailer had passed on when this subscription began. */
  readonly startId: bigint;
  /** Live events after startId, in order. Ends as soon as close() is called. */
  readonly events: AsyncIterableIterator<ChangeEvent>;
  /** Stops delivery at once: queued events are dropped, a pending next() ends. */
  close(): void;
}

interface Subscriber {
  filter: EventFilter;
  push(event: ChangeEvent): void;
  close(): void;
}

const BATCH = 500;

export class EventTailer {
  private lastSeenId = 0n;
  private readonly subscribers = new Set<Subscriber>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribeBus: (() => void) | undefined;
  private readonly readFailures: RecurringFailure;

  constructor(
    private readonly prisma: RawPrismaClient,
    private readonly bus: EventBus,
    logger: Logger,
    private readonly pollIntervalMs: number,
  ) {
    this.readFailures = recurringFailure(logger, "event log read");
  }

  async start(): Promise<void> {
    this.lastSeenId = await this.newestId();
    this.unsubscribeBus = this.bus.onPublished((lastId) => {
      if (lastId > this.lastSeenId) this.wake();
    });
    // Always on, not only while someone listens: a tailer that fell behind
    // while it had no subscribers (a bus message lost during a Redis outage)
    // would otherwise hand its next subscriber events from before it subscribed.
    this.pollTimer = setInterval(() => this.wake(), timerDelay(this.pollIntervalMs));
    this.pollTimer.unref();
  }

  subscribe(filter: EventFilter): LiveSubscription {
    let queue: ChangeEvent[] = [];
    let waiting: ((result: IteratorResult<ChangeEvent>) => void) | undefined;
    let closed = false;
    const subscriber: Subscriber = {
      filter,
      push: (event) => {
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: event, done: false });
        } else queue.push(event);
      },
      close: () => {
        if (closed) return;
        closed = true;
        queue = [];
        this.subscribers.delete(subscriber);
        waiting?.({ value: undefined, done: true });
        waiting = undefined;
      },
    };
    if (this.stopped) subscriber.close();
    else this.subscribers.add(subscriber);

    const events: AsyncIterableIterator<ChangeEvent> = {
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
    return { startId: this.lastSeenId, events, close: subscriber.close };
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
    if (this.subscribers.size === 0) {
      // Nobody to hand rows to: just keep up with the end of the log.
      const newest = await this.newestId();
      // A subscriber may have arrived while that query was in flight, with
      // startId at the old position. Skipping to `newest` would then drop the
      // events between the two for it, including ones committed after it
      // subscribed (and after a replay it started had already read to the end
      // of the log): so skip only while there is still nobody to hand rows
      // to, and otherwise read the rows as usual.
      if (this.subscribers.size === 0) {
        if (newest > this.lastSeenId) this.lastSeenId = newest;
        return;
      }
    }
    for (;;) {
      const rows = await this.prisma.event.findMany({
        where: { id: { gt: this.lastSeenId } },
        orderBy: { id: "asc" },
        take: BATCH,
      });
      for (const row of rows) {
        const event = toChangeEvent(row);
        this.lastSeenId = event.id;
        for (const subscriber of this.subscribers) {
          if (matches(subscriber.filter, event)) subscriber.push(event);
        }
      }
      if (rows.length < BATCH || this.stopped) return;
    }
  }

  private async newestId(): Promise<bigint> {
    const newest = await this.prisma.event.findFirst({ orderBy: { id: "desc" }, select: { id: true } });
    return newest?.id ?? 0n;
  }

  /** Ends every subscription and waits for a read in progress, for an orderly shutdown. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.unsubscribeBus?.();
    for (const subscriber of this.subscribers) subscriber.close();
    await this.reading;
  }
}

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

export interface Subscription {
  /** The last log id the tailer had passed on when this subscription began. */
  readonly startId: bigint;
  /** Live events after startId, in order. Ends when close() is called. */
  readonly events: AsyncIterableIterator<ChangeEvent>;
  close(): void;
}

const BATCH = 500;

export class EventTailer {
  private lastSeenId = 0n;
  private readonly subscribers = new Set<{
    filter: EventFilter;
    push: (event: ChangeEvent) => void;
    close: () => void;
  }>();
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribeBus: (() => void) | undefined;

  constructor(
    private readonly prisma: RawPrismaClient,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly pollIntervalMs: number,
  ) {}

  async start(): Promise<void> {
    const newest = await this.prisma.event.findFirst({ orderBy: { id: "desc" }, select: { id: true } });
    this.lastSeenId = newest?.id ?? 0n;
    this.unsubscribeBus = this.bus.onPublished((lastId) => {
      if (lastId > this.lastSeenId) this.wake();
    });
    this.pollTimer = setInterval(() => {
      if (this.subscribers.size > 0) this.wake();
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  subscribe(filter: EventFilter): Subscription {
    const queue: ChangeEvent[] = [];
    let waiting: ((result: IteratorResult<ChangeEvent>) => void) | undefined;
    let closed = false;
    const subscriber = {
      filter,
      close: () => close(),
      push: (event: ChangeEvent) => {
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: event, done: false });
        } else queue.push(event);
      },
    };
    this.subscribers.add(subscriber);
    const close = () => {
      if (closed) return;
      closed = true;
      this.subscribers.delete(subscriber);
      waiting?.({ value: undefined, done: true });
      waiting = undefined;
    };
    const events: AsyncIterableIterator<ChangeEvent> = {
      next: () => {
        const next = queue.shift();
        if (next) return Promise.resolve({ value: next, done: false });
        if (closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return { startId: this.lastSeenId, events, close };
  }

  /** Reads new rows now; coalesces overlapping calls into one more read. */
  wake(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readNew()
      .catch((error: unknown) => this.logger.warn({ err: error }, "event log read failed; retrying on next wake"))
      .finally(() => {
        this.reading = undefined;
        if (this.readAgain) {
          this.readAgain = false;
          this.wake();
        }
      });
  }

  private async readNew(): Promise<void> {
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
      if (rows.length < BATCH) return;
    }
  }

  /** Waits for a read in progress, for an orderly shutdown. */
  async stop(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const subscriber of this.subscribers) subscriber.close();
    this.unsubscribeBus?.();
    await this.reading;
  }
}

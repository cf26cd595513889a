// The wake-up channel between instances. A bus carries only "the event log has
// grown"; subscribers never trust it for content or completeness: the tailer
// (tailer.ts) reads the log itself, and which rows it may pass depends on the
// horizon it reads there (eventLog.ts), not on anything a message could say. So a lost or duplicated message can
// delay delivery but never lose or repeat an event.
//
// In-process by default; with REDIS_URL, Redis pub/sub so a commit on one
// instance wakes the tailers of all of them. Local notifications never depend
// on Redis: while it is down, same-instance delivery keeps working.
import { EventEmitter } from "node:events";
import { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import { logRedisOutages } from "../recurringFailure.js";

export interface EventBus {
  /** Announce that events have been committed. */
  publish(): void;
  onPublished(listener: () => void): () => void;
  close(): Promise<void>;
}

const LOCAL = "published";
const CHANNEL = "todo-graphql:events";
// Any message on the channel is a wake-up; this is what this version sends.
const WAKE_UP = "grown";

function localBus(): { emitter: EventEmitter; bus: Omit<EventBus, "close"> } {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    emitter,
    bus: {
      publish: () => emitter.emit(LOCAL),
      onPublished: (listener) => {
        emitter.on(LOCAL, listener);
        return () => emitter.off(LOCAL, listener);
      },
    },
  };
}

export function createMemoryBus(): EventBus {
  const { emitter, bus } = localBus();
  return { ...bus, close: async () => void emitter.removeAllListeners() };
}

export function createRedisBus(url: string, logger: Logger): EventBus {
  const { emitter, bus } = localBus();
  // Commands fail fast while Redis is away instead of queueing without bound;
  // ioredis keeps reconnecting in the background.
  const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false } as const;
  const publisher = new Redis(url, options);
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
  logRedisOutages(publisher, logger, "publisher");
  logRedisOutages(subscriber, logger, "subscriber");
  subscriber.subscribe(CHANNEL).catch((error: Error) => logger.warn({ err: error.message }, "redis subscribe failed"));
  subscriber.on("message", () => emitter.emit(LOCAL));
  return {
    publish() {
      bus.publish();
      publisher.publish(CHANNEL, WAKE_UP).catch(() => {
        // Other instances catch up on their next poll (tailer.ts).
      });
    },
    onPublished: bus.onPublished,
    async close() {
      emitter.removeAllListeners();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

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

/**
 * A named broadcast between instances: a message reaches this instance's
 * listeners at once, and every other instance's through Redis when there is
 * one. Best effort across instances: a message can be lost while Redis is
 * away, so what it says must also be learnt some other way in time (the event
 * tailer polls the log; sessionCheck.ts re-reads sessions).
 */
export interface Channel {
  publish(message: string): void;
  onMessage(listener: (message: string) => void): () => void;
  close(): Promise<void>;
}

const LOCAL = "message";
const CHANNEL = "todo-graphql:events";
// Any message on the channel is a wake-up; this is what this version sends.
const WAKE_UP = "grown";

export function createMemoryChannel(): Channel {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish: (message) => void emitter.emit(LOCAL, message),
    onMessage: (listener) => {
      emitter.on(LOCAL, listener);
      return () => emitter.off(LOCAL, listener);
    },
    close: async () => void emitter.removeAllListeners(),
  };
}

/** `label` names the channel's two Redis clients in the logs ("<label>publisher", "<label>subscriber"). */
export function createRedisChannel(url: string, channel: string, logger: Logger, label = ""): Channel {
  const local = createMemoryChannel();
  // Commands fail fast while Redis is away instead of queueing without bound;
  // ioredis keeps reconnecting in the background.
  const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false } as const;
  const publisher = new Redis(url, options);
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
  logRedisOutages(publisher, logger, `${label}publisher`);
  logRedisOutages(subscriber, logger, `${label}subscriber`);
  subscriber.subscribe(channel).catch((error: Error) => logger.warn({ err: error.message }, "redis subscribe failed"));
  subscriber.on("message", (_channel: string, message: string) => local.publish(message));
  return {
    publish(message) {
      local.publish(message);
      publisher.publish(channel, message).catch(() => {
        // Best effort: see Channel.
      });
    },
    onMessage: local.onMessage,
    async close() {
      await local.close();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

function busOver(channel: Channel): EventBus {
  return {
    publish: () => channel.publish(WAKE_UP),
    onPublished: (listener) => channel.onMessage(() => listener()),
    close: () => channel.close(),
  };
}

export const createMemoryBus = (): EventBus => busOver(createMemoryChannel());

// Other instances that miss a wake-up catch up on their next poll (tailer.ts).
export const createRedisBus = (url: string, logger: Logger): EventBus => busOver(createRedisChannel(url, CHANNEL, logger));

// The event stream behind one subscription: optional replay from the log,
// then live events from the tailer, each checked against the subscriber's
// rights (Realtime.deliver: decided for every subscriber of a live event at
// once, audience.ts) before it is yielded.
//
// Joining replay and live without gap or duplicate: the live subscription is
// opened first, so everything the tailer passes on from then on is queued.
// The replay then reads the log up to the horizon, which is at least where the
// tailer stood when the live subscription opened. Both come in the log's
// (txid, id) order, so skipping every event at or before the last one handled
// joins the two exactly, whichever of them an event arrives through.
//
// Cancellation: graphql-ws ends a subscription by calling return() on its
// iterator and waits for that before it finishes closing the socket. An async
// generator cannot be returned while it awaits the next live event, which on a
// quiet list may never come; so return() here first closes the live
// subscription, which ends that await, and the generator then finishes.
import type { GraphQLContext } from "../context.js";
import type { DirectReceiver } from "./multiplex.js";
import { requireViewer } from "../context.js";
import type { DeliveredEvent } from "./events.js";
import { isAfter, positionOf, type LogPosition } from "./eventLog.js";
import type { EventFilter, LiveSubscription, TailedEvent } from "./tailer.js";

export function eventStream(
  context: GraphQLContext,
  filter: EventFilter,
  after: LogPosition | undefined,
): AsyncIterableIterator<DeliveredEvent> {
  const viewer = requireViewer(context);
  const transport = context.transport;
  const live = context.realtime.tailer.subscribe(
    filter,
    viewer.id,
    transport && { maxPending: transport.maxPendingEvents, overflow: () => transport.slowConsumer() },
  );

  // Set by the executor when this subscription's result is the same for
  // every viewer allowed an event (execution.ts): once caught up, its events
  // are sent by the direct fan-out (multiplex.ts), not through this generator.
  const direct = context.directReceiver;

  return new EventStream(live, (stream) => streamEvents(stream, context, filter, after, live, direct, viewer.id));
}

/**
 * The events of one subscription. A generator function of the module, not
 * one made per subscription: each generator function made comes with a
 * prototype object of its own (and its maps), kept by its generator for as
 * long as the subscription is open.
 */
async function* streamEvents(
  stream: EventStream,
  context: GraphQLContext,
  filter: EventFilter,
  after: LogPosition | undefined,
  live: LiveSubscription,
  direct: DirectReceiver | undefined,
  viewerId: string,
): AsyncGenerator<DeliveredEvent> {
  let last = after ?? live.startPosition;
  // What the subscriber receives of an event: nothing for one at or before
  // the last handled (replay and live overlap) or one it may not read.
  const handle = async (tailed: TailedEvent): Promise<DeliveredEvent | undefined> => {
    const position = positionOf(tailed.event);
    if (!isAfter(position, last)) return undefined;
    last = position;
    const delivered = await context.realtime.deliver(tailed, context);
    return stream.cancelled ? undefined : delivered;
  };
  try {
    if (after !== undefined) {
      for await (const tailed of replayed(context.realtime.replay(filter, after), viewerId)) {
        if (stream.cancelled) return;
        const delivered = await handle(tailed);
        if (delivered) yield delivered;
      }
    }
    for (;;) {
      // Everything before has been handed to the socket (graphql-ws asks
      // for the next event only once the last one is written).
      if (direct && live.goDirect(direct, last)) {
        await live.ended;
        return;
      }
      const next = await live.events.next();
      if (next.done || stream.cancelled) return;
      const delivered = await handle(next.value);
      if (delivered) yield delivered;
    }
  } finally {
    live.close();
  }
}

/**
 * What graphql-ws iterates: the generator, with return() and throw() that
 * first cancel (see the top of this file). A class rather than an object
 * literal of closures: one is kept for every open subscription.
 */
class EventStream implements AsyncIterableIterator<DeliveredEvent> {
  /** Set by return() and throw(): the generator yields nothing more. */
  cancelled = false;

  private readonly generator: AsyncGenerator<DeliveredEvent>;

  constructor(
    private readonly live: LiveSubscription,
    events: (stream: EventStream) => AsyncGenerator<DeliveredEvent>,
  ) {
    this.generator = events(this);
  }

  next(): Promise<IteratorResult<DeliveredEvent>> {
    return this.generator.next();
  }

  async return(): Promise<IteratorResult<DeliveredEvent>> {
    this.cancel();
    await this.generator.return(undefined);
    return { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<DeliveredEvent>> {
    this.cancel();
    return this.generator.throw(error);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<DeliveredEvent> {
    return this;
  }

  private cancel(): void {
    this.cancelled = true;
    this.live.close();
  }
}

/** Replayed events go through the same evaluator as live ones, each for this subscriber alone. */
async function* replayed(events: AsyncIterable<TailedEvent["event"]>, viewerId: string): AsyncGenerator<TailedEvent> {
  for await (const event of events) yield { event, audience: new Set([viewerId]) };
}

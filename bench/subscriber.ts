// One subscriber of bench:subscriptions: a WebSocket speaking the
// graphql-transport-ws protocol (the one graphql-ws implements) with one
// subscription, and nothing else.
//
// The benchmark's clients share this machine's two cores with the server and
// PostgreSQL, and a delivery is timed when a client has read it: whatever a
// client spends per message is taken from the server's share, and shows in
// the latency as if it were the server's. graphql-ws's own client spent
// about 57% of the clients' time per message (its message validation and
// listener dispatch, measured with --cpu-prof on the client process); a real
// deployment's clients run on machines of their own. This client does what
// the protocol asks of a subscriber (connection_init with the token, the
// subscribe message after connection_ack, pong for ping) and reads every
// frame as JSON, so what it measures is still the whole frame delivered.
import { randomUUID } from "node:crypto";
import WebSocket from "ws";

export interface SubscriberEvents {
  /** The server acknowledged the connection; the subscription is sent right after. */
  connected(): void;
  /** A `next` of the subscription. */
  next(payload: { data?: Record<string, unknown> | null; errors?: unknown }): void;
  /** An `error` of the subscription, or a message the protocol does not have. */
  error(message: string): void;
  /** The socket closed, from either side (after `connected` or without it). */
  closed(code: number): void;
}

export interface SubscriberOptions {
  url: string;
  token: string;
  query: string;
  variables: Record<string, unknown>;
  on: SubscriberEvents;
}

export class Subscriber {
  private readonly socket: WebSocket;
  /** A UUID, as graphql-ws's client makes: the server's frames carry it, so they are the size a real client gets. */
  private readonly id = randomUUID();

  constructor(options: SubscriberOptions) {
    const { on } = options;
    const socket = (this.socket = new WebSocket(options.url, "graphql-transport-ws"));
    socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${options.token}` } })));
    socket.on("message", (data) => {
      let message: { type?: unknown; id?: unknown; payload?: unknown };
      try {
        message = JSON.parse(String(data)) as typeof message;
      } catch {
        on.error(`not JSON: ${String(data).slice(0, 200)}`);
        return;
      }
      switch (message.type) {
        case "connection_ack":
          socket.send(JSON.stringify({ id: this.id, type: "subscribe", payload: { query: options.query, variables: options.variables } }));
          on.connected();
          return;
        case "next":
          if (message.id === this.id) on.next(message.payload as Parameters<SubscriberEvents["next"]>[0]);
          else on.error(`next for an unknown id ${JSON.stringify(message.id)}`);
          return;
        case "error":
          on.error(JSON.stringify(message.payload));
          return;
        case "complete":
          return;
        case "ping":
          socket.send('{"type":"pong"}');
          return;
        case "pong":
          return;
        default:
          on.error(`unexpected message ${JSON.stringify(message).slice(0, 200)}`);
      }
    });
    // A failed upgrade or a reset: "close" follows and reports it.
    socket.on("error", () => undefined);
    socket.on("close", (code) => on.closed(code));
  }

  /** Closes the socket (1000) and resolves once it is closed. */
  dispose(): Promise<void> {
    const socket = this.socket;
    if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once("close", () => resolve());
      socket.close(1000, "Normal Closure");
    });
  }
}

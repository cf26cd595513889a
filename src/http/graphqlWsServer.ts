// graphql-ws on a `ws` server: what graphql-ws's own glue (graphql-ws/use/ws,
// useServer, as of graphql-ws 6.4) does, the same keep-alive pings, close
// codes and console output, with differences in what a socket keeps for as
// long as it is open and in the garbage its keep-alive makes (below):
// - its context holds what the server reads of the upgrade request (the
//   client address and User-Agent), not the request: useServer keeps the
//   IncomingMessage (its headers twice over, its stream state) in
//   `extra.request`, about 1.4 kB per connection;
// - its message listener is not an async function awaiting graphql-ws's
//   handler: that one keeps each message's Buffer while the handler runs,
//   which for a subscribe is as long as the subscription.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { CloseCode, DEPRECATED_GRAPHQL_WS_PROTOCOL, handleProtocols, makeServer, type ServerOptions } from "graphql-ws";
import type { WebSocket as GraphQLWsSocket } from "graphql-ws";
import type { RawData, WebSocket, WebSocketServer } from "ws";

/** What graphql-ws's hooks get in `ctx.extra` for every socket, besides the server's own state. */
export interface SocketExtra {
  readonly socket: WebSocket;
  /** The connection under `socket` (the upgrade request's): the direct fan-out writes its frames to it (websocketFrame.ts). */
  readonly connection: Duplex;
  /** As `describe` read it from the upgrade request. */
  readonly clientAddress: string;
  readonly userAgent: string | undefined;
}

/** A close reason of at most 123 bytes, or the fallback (graphql-ws's limitCloseReason). */
const limitCloseReason = (reason: string, whenTooLong: string) => (reason.length < 124 ? reason : whenTooLong);

export function serveGraphQLWebSocket<E extends Record<PropertyKey, unknown>>(
  options: ServerOptions<Record<string, unknown> | undefined, SocketExtra & Partial<E>> & { isProd: boolean },
  ws: WebSocketServer,
  keepAlive: number,
  describe: (request: IncomingMessage) => { clientAddress: string; userAgent: string | undefined },
): { dispose(): Promise<void> } {
  const { isProd } = options;
  const server = makeServer(options);
  const internalError = (error: unknown) =>
    isProd ? "Internal server error" : limitCloseReason(error instanceof Error ? error.message : String(error), "Internal server error");
  ws.options.handleProtocols = handleProtocols;
  ws.once("error", (error) => {
    console.error("Internal error emitted on the WebSocket server. Please check your implementation.", error);
    let firstError: unknown = null;
    for (const client of ws.clients) {
      try {
        client.close(CloseCode.InternalServerError, internalError(error));
      } catch (closeError) {
        firstError = firstError ?? closeError;
      }
    }
    if (firstError) throw firstError;
  });
  ws.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    socket.once("error", (error) => {
      console.error("Internal error emitted on a WebSocket socket. Please check your implementation.", error);
      socket.close(CloseCode.InternalServerError, internalError(error));
    });
    // A ping every keepAlive ms; a peer that has not answered the previous
    // one by the next tick (keepAlive ms after it was sent) is terminated,
    // when useServer's pong timer would have fired. Without a timer and a
    // once("pong") listener made for every ping: with 10,000 sockets that was
    // a steady stream of garbage, enough for V8's memory reducer to count the
    // server as busy and never give back the heap a burst of connections
    // left behind.
    let awaitingPong = false;
    const keepingAlive = keepAlive > 0 && isFinite(keepAlive);
    if (keepingAlive) socket.on("pong", () => (awaitingPong = false));
    const pingInterval = keepingAlive
      ? setInterval(() => {
          if (awaitingPong) {
            socket.terminate();
            return;
          }
          if (socket.readyState === socket.OPEN) {
            awaitingPong = true;
            socket.ping();
          }
        }, keepAlive)
      : null;
    const { clientAddress, userAgent } = describe(request);
    const connection: Duplex = request.socket;
    const closed = server.opened(
      new SocketForGraphQLWs(socket, internalError),
      { socket, connection, clientAddress, userAgent } as SocketExtra & Partial<E>,
    );
    socket.once("close", (code, reason) => {
      if (pingInterval) clearInterval(pingInterval);
      if (!isProd && code === CloseCode.SubprotocolNotAcceptable && socket.protocol === DEPRECATED_GRAPHQL_WS_PROTOCOL) {
        console.warn(
          `Client provided the unsupported and deprecated subprotocol "${socket.protocol}" used by subscriptions-transport-ws.Please see https://www.apollographql.com/docs/apollo-server/data/subscriptions/#switching-from-subscriptions-transport-ws.`,
        );
      }
      void closed(code, String(reason));
    });
  });
  return {
    dispose: async () => {
      for (const client of ws.clients) client.close(1001, "Going away");
      ws.removeAllListeners();
      await new Promise<void>((resolve, reject) => ws.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/**
 * The socket as graphql-ws's server sees it. A class, so that every open
 * socket shares its methods rather than holding closures of its own.
 */
class SocketForGraphQLWs implements GraphQLWsSocket {
  readonly protocol: string;

  constructor(
    private readonly socket: WebSocket,
    private readonly internalError: (error: unknown) => string,
  ) {
    this.protocol = socket.protocol;
  }

  send(data: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.socket.readyState !== this.socket.OPEN) return resolve();
      this.socket.send(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handle: (data: string) => Promise<void>): void {
    this.socket.on("message", (data: RawData) => {
      handle(String(data)).catch((error: unknown) => {
        console.error("Internal error occurred during message handling. Please check your implementation.", error);
        this.socket.close(CloseCode.InternalServerError, this.internalError(error));
      });
    });
  }
}

// Graceful stop of the HTTP server, as an Apollo Server plugin (drainServer
// runs inside apollo.stop()). It replaces Apollo's ApolloServerPluginDrainHttpServer,
// which loses requests under load: it ends every connection that has no
// request *parsed yet* the moment the stop begins, and node's own
// server.close() does the same (closeIdleConnections). A connection the
// server has accepted, whose request bytes are already on their way or
// waiting to be read while the event loop is busy, was then reset: the client
// saw ECONNRESET, and the server might still run the request (a mutation
// applied, its answer lost).
//
// Here, once the stop begins:
//   - the listener stays open until no connection has arrived for
//     LINGER_QUIET_MS (at most LINGER_MAX_MS), so connections already waiting
//     in the listen backlog are accepted; then it closes and new connections
//     are refused;
//   - a request in flight finishes, answered with `Connection: close`;
//   - a connection with no request yet gets IDLE_GRACE_MS to send one (it is
//     then served like any other), after which it is ended; an idle
//     keep-alive connection gets KEEPALIVE_GRACE_MS;
//   - at the deadline whatever is left is destroyed.
// Upgraded (WebSocket) connections are left to the WebSocket server's own
// drain, which closes them with 1001; only the deadline touches them.
import type { Server } from "node:http";
import net from "node:net";
import type { ApolloServerPlugin } from "@apollo/server";

const IDLE_GRACE_MS = 1000;
const KEEPALIVE_GRACE_MS = 100;
const LINGER_QUIET_MS = 500;
const LINGER_MAX_MS = 2000;
const IDLE_SERVER_MS = 1000;
const LINGER_QUIET_IDLE_MS = 50;

export function drainHttpServer(httpServer: Server, options: { deadlineMs: number }): ApolloServerPlugin {
  const requestsInFlight = new Map<net.Socket, number>();
  const upgraded = new Set<net.Socket>();
  const graceTimers = new Map<net.Socket, NodeJS.Timeout>();
  let draining = false;

  const served = new WeakSet<net.Socket>();

  const endWhenIdle = (socket: net.Socket) => {
    if ((requestsInFlight.get(socket) ?? 0) > 0 || graceTimers.has(socket)) return;
    // A new connection's first request is surely on its way; an idle
    // keep-alive connection may or may not send another (its client must be
    // ready to retry on a closed connection anyway).
    const graceMs = served.has(socket) ? KEEPALIVE_GRACE_MS : IDLE_GRACE_MS;
    const timer = setTimeout(() => {
      graceTimers.delete(socket);
      // After this turn's poll phase: bytes that arrived while the loop was
      // busy are read (and their request counted) before the check.
      setImmediate(() => {
        if ((requestsInFlight.get(socket) ?? 0) === 0 && requestsInFlight.has(socket)) socket.end();
      });
    }, graceMs);
    timer.unref();
    graceTimers.set(socket, timer);
  };

  // Connections the kernel completed before the signal may still wait in the
  // listen backlog: under load (a busy event loop; PGlite runs queries on it)
  // they were seen waiting there for a few hundred milliseconds. Closing the
  // listener would reset them. So the listener stays open, and connections are
  // still accepted (and served, with Connection: close), until none has come
  // for LINGER_QUIET_MS, or for LINGER_MAX_MS at most.
  let lastAcceptedAt = 0;
  const lingerWhileAccepting = async () => {
    const started = Date.now();
    // A server that had no new connection for a while is not under load:
    // nothing is likely to wait in its backlog, and a short look suffices.
    const quietMs = started - lastAcceptedAt > IDLE_SERVER_MS ? LINGER_QUIET_IDLE_MS : LINGER_QUIET_MS;
    lastAcceptedAt = started;
    const limit = Math.min(LINGER_MAX_MS, options.deadlineMs / 2);
    while (Date.now() - lastAcceptedAt < quietMs && Date.now() - started < limit) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  httpServer.on("connection", (socket: net.Socket) => {
    lastAcceptedAt = Date.now();
    requestsInFlight.set(socket, 0);
    socket.once("close", () => {
      requestsInFlight.delete(socket);
      upgraded.delete(socket);
      clearTimeout(graceTimers.get(socket));
      graceTimers.delete(socket);
    });
    if (draining) endWhenIdle(socket);
  });
  httpServer.on("upgrade", (_request, socket: net.Socket) => {
    requestsInFlight.delete(socket);
    clearTimeout(graceTimers.get(socket));
    graceTimers.delete(socket);
    upgraded.add(socket);
  });
  // Before the app's own listener: a route that answers synchronously (health,
  // a 404) has sent its headers by the time a later listener runs, too late
  // for Connection: close, and its request would go uncounted.
  httpServer.prependListener("request", (request, response) => {
    const socket = request.socket;
    served.add(socket);
    requestsInFlight.set(socket, (requestsInFlight.get(socket) ?? 0) + 1);
    clearTimeout(graceTimers.get(socket));
    graceTimers.delete(socket);
    if (draining) response.setHeader("connection", "close");
    response.once("close", () => {
      if (!requestsInFlight.has(socket)) return;
      const left = Math.max(0, (requestsInFlight.get(socket) ?? 1) - 1);
      requestsInFlight.set(socket, left);
      if (draining && left === 0) socket.end();
    });
  });

  return {
    async serverWillStart() {
      return {
        async drainServer() {
          draining = true;
          const deadline = setTimeout(() => {
            for (const socket of [...requestsInFlight.keys(), ...upgraded]) socket.destroy();
          }, options.deadlineMs);
          try {
            await lingerWhileAccepting();
            await new Promise<void>((resolve) => {
              // net.Server's close, not http.Server's: that one would also
              // reset every connection without a parsed request (see above).
              net.Server.prototype.close.call(httpServer, () => {
                // Now that no connection is left, http's own close only stops
                // its timers (the listener is already closed: the error is expected).
                httpServer.close(() => undefined);
                resolve();
              });
              for (const socket of requestsInFlight.keys()) endWhenIdle(socket);
            });
          } finally {
            clearTimeout(deadline);
          }
        },
      };
    },
  };
}

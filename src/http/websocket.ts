// GraphQL over WebSocket (the graphql-ws protocol) on the same port and path as
// HTTP. The viewer is taken once, from connectionParams.authorization at
// connection_init: a bad token, or one whose session has ended, closes the
// socket with 4403, no token means an anonymous connection. The socket is
// closed (4403) when its token expires or its session ends (on any instance:
// sessionCheck.ts), so no subscription outlives the credentials it was opened
// with. Clients reconnect with a fresh token (README, "Close codes").
//
// Every operation on a socket gets what an HTTP request gets: a request id
// (in its context and its log line), one "graphql operation" log line when it
// ends (completed by either side, failed, or cut off by the socket closing),
// and a count in the metrics.
//
// Sockets are capped per instance, per client address while unacknowledged,
// and per signed-in user (websocketAdmission.ts): the first two are refused
// with HTTP 503 at the upgrade, the third closes with 4430 at connection_init.
import type { IncomingMessage, Server } from "node:http";
import { randomUUID } from "node:crypto";
import { GraphQLError, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema, type OperationTypeNode } from "graphql";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Config } from "../config.js";
import type { ContextFactory } from "../context.js";
import type { Logger } from "../logger.js";
import type { AuthService } from "../modules/auth/service.js";
import { bearerToken } from "../modules/auth/tokens.js";
import type { Viewer } from "../policy/viewer.js";
import { timerDelay } from "../timers.js";
import { clientAddress } from "./clientAddress.js";
import { webSocketOriginAllowed } from "./cors.js";
import { clientCodes, isUnexpectedError } from "./formatError.js";
import { originPolicy } from "./origins.js";
import type { OperationLimits } from "./limits.js";
import { CLOSE_TOO_MANY_CONNECTIONS, createWebSocketAdmission, type Admission, type RefusalReason } from "./websocketAdmission.js";
import { checkOperation, ValidatedDocuments } from "./websocketOperationCheck.js";
import { createSubscriptionExecutor } from "../realtime/execution.js";
import { serveGraphQLWebSocket } from "./graphqlWsServer.js";
import { textFrame, writesFramesAsIs } from "./websocketFrame.js";

/** graphql-ws's Forbidden: the client retries it, with fresh connectionParams. */
const CLOSE_FORBIDDEN = 4403;

const CLOSING_BRACE = Buffer.from("}");
/** Each shared result's JSON as UTF-8, made by the first of its receivers (the direct fan-out shares one result among thousands). */
const encodedPayloads = new WeakMap<object, Buffer>();
function encodedPayload(shared: object, serialized: string): Buffer {
  let bytes = encodedPayloads.get(shared);
  if (!bytes) encodedPayloads.set(shared, (bytes = Buffer.from(serialized)));
  return bytes;
}
/**
 * A slow consumer: a subscription of the socket has more than
 * WS_MAX_PENDING_EVENTS events waiting to be sent. graphql-ws clients retry
 * it; the client resumes with `after` from the last event it read.
 */
export const CLOSE_SLOW_CONSUMER = 4413;

/**
 * One operation on a socket, from subscribe to its end. Keyed by the subscribe
 * message's payload object, which graphql-ws hands to every hook of that
 * operation: a client may reuse an id as soon as it completes it, before the
 * first operation's onComplete has run, so the id alone could mix the two up.
 */
type OperationRecord = {
  /** The client's id for it. */
  id: string;
  requestId: string;
  started: number;
  operationName: string;
  operationType: OperationTypeNode | "unknown";
  /** Distinct codes sent for it (a subscription may send the same one many times). */
  errorCodes: Set<string>;
  events: number;
  /** Counted in the active-operations gauge (it passed onSubscribe). */
  active: boolean;
  /** A subscription whose source stream started; false while it may still be refused. */
  streaming: boolean;
};

type ConnectionState = {
  viewer?: Viewer | null;
  expiryTimer?: NodeJS.Timeout;
  /** Stops watching the socket's session. */
  unwatchSession?: () => void;
  operations?: Map<object, OperationRecord>;
};

/** How a WebSocket operation ended. */
export type OperationEnd =
  /** Refused before it ran (limits, validation, variables, too many operations). */
  | "refused"
  /** Completed by the server (its result or stream is done) or by the client. */
  | "completed"
  /** Its stream failed. */
  | "failed"
  /** Cut off by the socket closing. */
  | "closed";

/** What the log line and the metrics get when a WebSocket operation ends. */
export interface WebSocketOperationReport {
  operationName: string;
  operationType: OperationTypeNode | "unknown";
  outcome: "success" | "error";
  end: OperationEnd;
  errorCodes: string[];
  /** From subscribe to the end: a subscription's whole lifetime. */
  durationMs: number;
  /** Results sent: one for a query or mutation, one per event for a subscription. */
  events: number;
}

export interface WebSocketObserver {
  onConnectionChange?(delta: 1 | -1): void;
  /** A socket was refused by one of the connection caps. */
  onConnectionRefused?(reason: RefusalReason): void;
  onSubscriptionChange?(delta: 1 | -1): void;
  /** A subscription event was sent to a client. */
  onEventDelivered?(): void;
  /** Errors were sent to a client (one code per error). */
  onErrorsSent?(codes: readonly string[]): void;
  /** An operation ended (see OperationEnd). */
  onOperation?(report: WebSocketOperationReport): void;
}

export function attachWebSocketServer(options: {
  httpServer: Server;
  path: string;
  schema: GraphQLSchema;
  config: Pick<Config, "websocket" | "isProduction" | "limits" | "trustProxy" | "cors">;
  auth: Pick<AuthService, "authenticate" | "sessionCheck">;
  createContext: ContextFactory;
  logger: Logger;
  limits: OperationLimits;
  /** What the client sees of an error (formatError, and whatever the server adds). */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  observer?: WebSocketObserver;
}) {
  const { config, auth, logger, observer } = options;
  const admission = createWebSocketAdmission(config.websocket);
  const origins = originPolicy(config.cors.origins);
  const admissions = new WeakMap<WebSocket, Admission>();
  const documents = new ValidatedDocuments();
  const addressOf = (request: IncomingMessage) => clientAddress(request, config.trustProxy);
  const refused = (reason: RefusalReason, address: string, userId?: string) => {
    observer?.onConnectionRefused?.(reason);
    // debug: a flood of refusals must not become a flood of log lines.
    logger.debug({ reason, clientAddress: address, userId: userId ?? null }, "websocket connection refused");
  };
  // The body size limit bounds a WebSocket message as it bounds an HTTP body
  // (ws would otherwise buffer and JSON-parse messages of up to 100 MiB): a
  // larger message closes the socket with 1009 (message too big).
  const wsServer = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: config.limits.bodySizeBytes,
    // The instance and per-address caps, before the upgrade. The callback is
    // called at once, and ws then completes the upgrade and emits
    // "connection" (where the socket is counted) in the same turn: no other
    // upgrade can slip in between the check and the count.
    verifyClient: ({ req }, callback) => {
      const address = addressOf(req);
      // A browser page on an origin CORS_ORIGINS does not allow (cross-site
      // WebSocket hijacking): refused before any GraphQL message (cors.ts).
      if (!webSocketOriginAllowed(origins, req)) {
        logger.debug({ origin: String(req.headers.origin).slice(0, 200), clientAddress: address }, "websocket origin refused");
        const body = JSON.stringify({ errors: [{ message: "This origin is not allowed to open a WebSocket to this API (CORS_ORIGINS).", extensions: { code: "FORBIDDEN" } }] });
        return callback(false, 403, body, { "Content-Type": "application/json; charset=utf-8" });
      }
      const reason = admission.refusal(address);
      if (!reason) return callback(true);
      refused(reason, address);
      const body = JSON.stringify({ errors: [{ message: refusalMessage(reason, config.websocket), extensions: { code: "SERVICE_UNAVAILABLE" } }] });
      // ws writes its own Content-Type under this spelling; this one replaces it.
      callback(false, 503, body, { "Content-Type": "application/json; charset=utf-8" });
    },
  });
  /**
   * The errors as the client gets them (translated and masked, as over HTTP).
   * An unexpected error is logged in full first, under the operation's request
   * id: the client only sees INTERNAL_SERVER_ERROR.
   */
  const format = (errors: readonly GraphQLError[], record: OperationRecord | undefined): GraphQLFormattedError[] =>
    errors.map((error) => {
      const formatted = error.toJSON();
      if (isUnexpectedError(formatted, error)) {
        logger.error({ requestId: record?.requestId ?? null, err: error.originalError ?? error, path: error.path }, "unexpected error");
      }
      return options.formatError(formatted, error);
    });

  /** Ends an operation once: its gauge slot, its metrics, its log line. */
  const finish = (state: ConnectionState, payload: object, record: OperationRecord, end: OperationEnd) => {
    state.operations?.delete(payload);
    if (record.active) observer?.onSubscriptionChange?.(-1);
    const report: WebSocketOperationReport = {
      operationName: record.operationName,
      operationType: record.operationType,
      outcome: record.errorCodes.size ? "error" : "success",
      end,
      errorCodes: [...record.errorCodes],
      durationMs: Math.round((performance.now() - record.started) * 100) / 100,
      events: record.events,
    };
    observer?.onOperation?.(report);
    logger.info(
      { requestId: record.requestId, transport: "websocket", ...report, viewerId: state.viewer?.id ?? null },
      "graphql operation",
    );
  };

  /** The errors as sent, counted in the metrics and noted on the operation. */
  const sendErrors = (errors: readonly GraphQLError[], record: OperationRecord | undefined): GraphQLFormattedError[] => {
    const formatted = format(errors, record);
    const codes = clientCodes(formatted);
    observer?.onErrorsSent?.(codes);
    for (const code of codes) record?.errorCodes.add(code);
    return formatted;
  };

  /**
   * A `next` about to be sent, from graphql-ws's hook or the direct fan-out:
   * counted as an event, with its errors formatted (the result to send
   * instead), or undefined to send it as it is.
   */
  const nextResult = (record: OperationRecord | undefined, result: ExecutionResult) => {
    const formatted = result.errors ? sendErrors(result.errors, record) : undefined;
    if (record && (record.operationType !== "subscription" || record.streaming)) {
      record.events += 1;
      if (record.operationType === "subscription") observer?.onEventDelivered?.();
    }
    return formatted ? { ...result, errors: formatted } : undefined;
  };

  wsServer.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    const admitted = admission.admit(addressOf(request));
    admissions.set(socket, admitted);
    observer?.onConnectionChange?.(1);
    socket.once("close", () => {
      admitted.release();
      observer?.onConnectionChange?.(-1);
    });
  });

  // graphql-ws as its useServer runs it, but without keeping the upgrade request (graphqlWsServer.ts).
  const cleanup = serveGraphQLWebSocket<ConnectionState>(
    {
      schema: options.schema,
      isProd: config.isProduction,
      // Each event executed once for every subscription with the same result (execution.ts).
      subscribe: createSubscriptionExecutor(),
      connectionInitWaitTimeout: config.websocket.connectionInitTimeoutMs,
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        const admitted = admissions.get(socket);
        try {
          const token = bearerToken(ctx.connectionParams?.authorization);
          if (!token) {
            ctx.extra.viewer = null;
            admitted?.acknowledged();
            return true;
          }
          const { viewer, expiresAt } = await auth.authenticate(token);
          // Closed while the token was checked: nothing to acknowledge.
          if (socket.readyState !== socket.OPEN) return false;
          if (admitted && !admitted.claimUser(viewer.id)) {
            refused("per_user", ctx.extra.clientAddress, viewer.id);
            // graphql-ws's own close (4403) after `false` finds it closing and does nothing.
            socket.close(
              CLOSE_TOO_MANY_CONNECTIONS,
              `Too many connections for this user (limit: ${config.websocket.maxConnectionsPerUser})`,
            );
            return false;
          }
          admitted?.acknowledged();
          ctx.extra.viewer = viewer;
          ctx.extra.expiryTimer = setTimeout(
            () => ctx.extra.socket.close(CLOSE_FORBIDDEN, "Forbidden: token expired"),
            timerDelay(expiresAt.getTime() - Date.now()),
          );
          ctx.extra.unwatchSession = auth.sessionCheck.watch(viewer.sessionId, () =>
            ctx.extra.socket.close(CLOSE_FORBIDDEN, "Forbidden: session ended"),
          );
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      onClose: (ctx) => {
        clearTimeout(ctx.extra.expiryTimer);
        ctx.extra.unwatchSession?.();
        for (const [payload, record] of ctx.extra.operations ?? []) finish(ctx.extra, payload, record, "closed");
      },
      onSubscribe: (ctx, id, payload) => {
        const operations = (ctx.extra.operations ??= new Map());
        // graphql-ws frees an id the moment the client completes it, before
        // that operation has wound down, and the winding-down operation then
        // removes the id from whichever operation holds it by then: a new one
        // under the same id could no longer be completed by the client. So the
        // id counts as taken until its operation has ended, and reusing it
        // sooner is the protocol's 4409, as for a running one.
        for (const other of operations.values()) {
          if (other.id === id) {
            ctx.extra.socket.close(4409, `Subscriber for ${id} already exists`);
            return [new GraphQLError(`Subscriber for ${id} already exists.`, { extensions: { code: "BAD_REQUEST" } })];
          }
        }
        const record: OperationRecord = {
          id,
          requestId: `ws-${randomUUID()}`,
          started: performance.now(),
          // Named from the document once it parses, never from the client's
          // operationName alone (that may be anything, of any length).
          operationName: "unknown",
          operationType: "unknown",
          errorCodes: new Set(),
          events: 0,
          active: false,
          streaming: false,
        };
        // A refused operation ends here: graphql-ws sends its errors only if
        // the client has not completed the id meanwhile, and runs no other
        // hook for it otherwise.
        const refuse = (errors: GraphQLError[]) => {
          for (const code of clientCodes(format(errors, record))) record.errorCodes.add(code);
          finish(ctx.extra, payload, record, "refused");
          return errors; // formatted again in onError, and counted there if sent
        };
        operations.set(payload, record);
        // graphql-ws has already reserved this id in ctx.subscriptions, and
        // drops an id the moment the client completes it: a slot freed by a
        // client's complete is free for its next subscribe (under a new id).
        const active = Object.keys(ctx.subscriptions).length - 1;
        if (active >= config.websocket.maxSubscriptions) {
          return refuse([
            new GraphQLError(
              `Too many active operations on this connection (limit: ${config.websocket.maxSubscriptions}).`,
              { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } },
            ),
          ]);
        }
        const { operation, result } = checkOperation(options.schema, options.limits, payload, documents);
        if (operation) {
          record.operationName = operation.name?.value ?? "anonymous";
          record.operationType = operation.operation;
        }
        if (Array.isArray(result)) return refuse(result);
        record.active = true;
        observer?.onSubscriptionChange?.(1);
        return result;
      },
      onOperation: (ctx, _id, payload, _args, result) => {
        // A subscription its resolver refuses (NOT_FOUND, UNAUTHENTICATED)
        // gets one error result instead of a stream: not an event.
        const record = ctx.extra.operations?.get(payload);
        if (record) record.streaming = isAsyncIterable(result);
        return undefined;
      },
      onComplete: (ctx, _id, payload) => {
        const record = ctx.extra.operations?.get(payload);
        // A closing socket ends its streams through here before onClose runs.
        const socket = ctx.extra.socket;
        if (record) finish(ctx.extra, payload, record, socket.readyState === socket.OPEN ? "completed" : "closed");
      },
      onError: (ctx, _id, payload, errors) => {
        const record = ctx.extra.operations?.get(payload);
        // graphql-ws calls this only to send the errors: they count now.
        const formatted = sendErrors(errors, record);
        // No record: refused in onSubscribe, and logged there.
        if (record) finish(ctx.extra, payload, record, "failed");
        return formatted;
      },
      onNext: (ctx, _id, payload, _args, result) => nextResult(ctx.extra.operations?.get(payload), result),
      context: (ctx, id, payload) => {
        const requestId = ctx.extra.operations?.get(payload)?.requestId ?? `ws-${randomUUID()}`;
        const slowConsumer = () => {
          const socket = ctx.extra.socket;
          if (socket.readyState !== socket.OPEN) return;
          logger.info({ requestId, viewerId: ctx.extra.viewer?.id ?? null }, "websocket closed: slow consumer");
          socket.close(CLOSE_SLOW_CONSUMER, `Slow consumer: more than ${config.websocket.maxPendingEvents} events waiting`);
        };
        // The frame graphql-ws would send for a `next`, with the id written once.
        const framePrefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
        let framePrefixBytes: Buffer | undefined;
        return options.createContext({
          requestId,
          viewer: ctx.extra.viewer ?? null,
          clientAddress: ctx.extra.clientAddress,
          userAgent: ctx.extra.userAgent,
          // Made when first used: most subscriptions never log between events.
          logger: () => logger.child({ requestId }),
          // graphql-ws sends a subscription's next event only once the
          // previous one is written to the socket: a client that stops
          // reading leaves its events waiting in the server. Past the bound
          // it is closed instead, and resumes with `after` when it can keep up.
          transport: {
            maxPendingEvents: config.websocket.maxPendingEvents,
            slowConsumer,
            // The direct fan-out (src/realtime/multiplex.ts) sends without
            // waiting for each write: the bound is then on what the socket
            // holds unsent, as many events' worth as the bound on waiting ones.
            sendNext: (shared) => {
              const socket = ctx.extra.socket;
              if (socket.readyState !== socket.OPEN) return;
              const replaced = nextResult(ctx.extra.operations?.get(payload), shared.result);
              let frameLength: number;
              if (replaced || shared.serialized === undefined) {
                const frame = framePrefix + JSON.stringify(replaced ?? shared.result) + "}";
                frameLength = frame.length;
                socket.send(frame);
              } else {
                // Bytes, not a string: the result is encoded once for all its
                // receivers, and each frame is one copy of it behind the id
                // (about a tenth less CPU per send than a string ws encodes),
                // framed here and written in one write (websocketFrame.ts).
                framePrefixBytes ??= Buffer.from(framePrefix);
                const parts = [framePrefixBytes, encodedPayload(shared, shared.serialized), CLOSING_BRACE];
                if (writesFramesAsIs(socket)) {
                  const frame = textFrame(parts);
                  frameLength = frame.length;
                  ctx.extra.connection.write(frame);
                } else {
                  const message = Buffer.concat(parts);
                  frameLength = message.length;
                  socket.send(message, { binary: false });
                }
              }
              if (socket.bufferedAmount > config.websocket.maxPendingEvents * frameLength) slowConsumer();
            },
          },
        });
      },
    },
    wsServer,
    config.websocket.keepAliveMs,
    (request) => ({ clientAddress: addressOf(request), userAgent: request.headers["user-agent"] }),
  );

  // A client that breaks the WebSocket framing (a message over the size
  // limit, invalid UTF-8, a bad opcode) makes ws close the socket with the
  // matching code (1009, 1007, 1002) and emit "error". graphql-ws answers that
  // with console.error("... check your implementation") for every such
  // message, which any client could use to flood the output: this listener,
  // added after graphql-ws's own, logs it as what it is instead.
  wsServer.on("connection", (socket: WebSocket) => {
    // ws throws on a close reason over 123 bytes, and graphql-ws writes the
    // client's subscription id into one (4409 "Subscriber for <id> already
    // exists"): a long id would turn a protocol close into an internal error.
    const close = socket.close.bind(socket);
    socket.close = (code?: number, reason?: string | Buffer) => close(code, typeof reason === "string" ? fitCloseReason(reason) : reason);
    socket.removeAllListeners("error");
    socket.on("error", (error: Error & { code?: unknown }) =>
      logger.info({ err: { message: error.message, code: error.code } }, "websocket client broke the protocol"),
    );
    // A client that sends a server's message (connection_ack, next, error)
    // gets past graphql-ws's message validation and then makes it throw
    // ("Unexpected message of type next received"): a 4500 internal error and
    // a console.error. The protocol's answer to a message it does not allow
    // is 4400, given here before graphql-ws sees the message.
    const handlers = socket.listeners("message") as ((this: WebSocket, data: RawData, isBinary: boolean) => void)[];
    socket.removeAllListeners("message");
    socket.on("message", function (this: WebSocket, data: RawData, isBinary: boolean) {
      if (isServerMessage(data)) {
        socket.close(4400, "Invalid message received");
        return;
      }
      for (const handler of handlers) handler.call(this, data, isBinary);
    });
  });

  return {
    wsServer,
    /** Closes every socket with 1001 (going away) and stops accepting new ones. */
    async close(): Promise<void> {
      for (const client of wsServer.clients) client.close(1001, "Server shutting down");
      await cleanup.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}

function refusalMessage(reason: RefusalReason, caps: Config["websocket"]): string {
  return reason === "instance"
    ? `This server holds as many WebSocket connections as it may (limit: ${caps.maxConnections}). Try again later.`
    : `Too many WebSocket connections from this address are waiting for connection_ack (limit: ${caps.maxPendingPerAddress}). Try again later.`;
}

const isAsyncIterable = (value: unknown): boolean =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

const SERVER_MESSAGE_TYPES = new Set(["connection_ack", "next", "error"]);

function isServerMessage(data: RawData): boolean {
  try {
    const message: unknown = JSON.parse(String(data));
    return message !== null && typeof message === "object" && SERVER_MESSAGE_TYPES.has(String((message as { type?: unknown }).type));
  } catch {
    return false; // graphql-ws closes with 4400 itself
  }
}

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
function fitCloseReason(reason: string): string {
  let fitted = reason;
  while (Buffer.byteLength(fitted) > 123) fitted = fitted.slice(0, -1);
  return fitted;
}

// GraphQL over WebSocket (the graphql-ws protocol) on the same port and path as
// HTTP. The viewer is taken once, from connectionParams.authorization at
// connection_init: a bad token closes the socket with 4403, no token means an
// anonymous connection. The socket is closed (4403) when its token expires, so
// no subscription outlives the credentials it was opened with.
import type { Server } from "node:http";
import { randomUUID } from "node:crypto";
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Config } from "../config.js";
import type { ContextFactory } from "../context.js";
import type { Logger } from "../logger.js";
import type { TokenService } from "../modules/auth/tokens.js";
import { bearerToken } from "../modules/auth/tokens.js";
import type { Viewer } from "../policy/viewer.js";
import { formatError } from "./formatError.js";
import { unstorableTextError, type OperationLimits } from "./limits.js";

type ConnectionState = {
  viewer?: Viewer | null;
  expiryTimer?: NodeJS.Timeout;
  operations?: Set<string>;
};

export interface WebSocketObserver {
  onConnectionChange?(delta: 1 | -1): void;
  onSubscriptionChange?(delta: 1 | -1): void;
  /** A subscription event was sent to a client. */
  onEventDelivered?(): void;
}

// setTimeout cannot wait longer than ~24.8 days.
const MAX_TIMER_MS = 2_147_483_647;

export function attachWebSocketServer(options: {
  httpServer: Server;
  path: string;
  schema: GraphQLSchema;
  config: Pick<Config, "websocket" | "isProduction" | "limits">;
  tokens: TokenService;
  createContext: ContextFactory;
  logger: Logger;
  limits: OperationLimits;
  observer?: WebSocketObserver;
}) {
  const { config, tokens, logger, observer } = options;
  // The body size limit bounds a WebSocket message as it bounds an HTTP body
  // (ws would otherwise buffer and JSON-parse messages of up to 100 MiB): a
  // larger message closes the socket with 1009 (message too big).
  const wsServer = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: config.limits.bodySizeBytes,
  });
  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((error) => formatError(error.toJSON(), error));

  wsServer.on("connection", (socket: WebSocket) => {
    observer?.onConnectionChange?.(1);
    socket.once("close", () => observer?.onConnectionChange?.(-1));
  });

  const cleanup = useServer<Record<string, unknown> | undefined, ConnectionState>(
    {
      schema: options.schema,
      isProd: config.isProduction,
      connectionInitWaitTimeout: config.websocket.connectionInitTimeoutMs,
      onConnect: async (ctx) => {
        try {
          const token = bearerToken(ctx.connectionParams?.authorization);
          if (!token) {
            ctx.extra.viewer = null;
            return true;
          }
          const { viewer, expiresAt } = await tokens.verify(token);
          ctx.extra.viewer = viewer;
          ctx.extra.expiryTimer = setTimeout(
            () => ctx.extra.socket.close(4403, "Forbidden: token expired"),
            Math.min(Math.max(0, expiresAt.getTime() - Date.now()), MAX_TIMER_MS),
          );
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      onClose: (ctx) => {
        clearTimeout(ctx.extra.expiryTimer);
        for (const _id of ctx.extra.operations ?? []) observer?.onSubscriptionChange?.(-1);
        ctx.extra.operations?.clear();
      },
      onSubscribe: (ctx, id, payload) => {
        const operations = (ctx.extra.operations ??= new Set());
        // graphql-ws has already reserved this id in ctx.subscriptions, and drops
        // an id the moment the client completes it, before onComplete runs: so
        // a slot freed by a client's complete is free for its very next subscribe.
        const active = Object.keys(ctx.subscriptions).length - 1;
        if (active >= config.websocket.maxSubscriptions) {
          return [
            new GraphQLError(
              `Too many active operations on this connection (limit: ${config.websocket.maxSubscriptions}).`,
              { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } },
            ),
          ];
        }
        const checked = checkOperation(options.schema, options.limits, payload);
        if (Array.isArray(checked)) return checked;
        operations.add(id);
        observer?.onSubscriptionChange?.(1);
        return checked;
      },
      onComplete: (ctx, id) => {
        if (ctx.extra.operations?.delete(id)) observer?.onSubscriptionChange?.(-1);
      },
      onError: (ctx, id, _payload, errors) => {
        if (ctx.extra.operations?.delete(id)) observer?.onSubscriptionChange?.(-1);
        return format(errors);
      },
      onNext: (_ctx, _id, _payload, args, result) => {
        if (getOperationAST(args.document, args.operationName)?.operation === "subscription") {
          observer?.onEventDelivered?.();
        }
        return result.errors ? { ...result, errors: format(result.errors) } : undefined;
      },
      context: (ctx) =>
        options.createContext({
          requestId: `ws-${randomUUID()}`,
          viewer: ctx.extra.viewer ?? null,
          clientAddress: ctx.extra.request.socket.remoteAddress ?? "unknown",
          logger,
        }),
    },
    wsServer,
    config.websocket.keepAliveMs,
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

/**
 * Parses and validates an operation with the same limits as HTTP (graphql-ws
 * would otherwise parse and validate it with none), and returns what to
 * execute, or the errors to send back.
 */
function checkOperation(
  schema: GraphQLSchema,
  limits: OperationLimits,
  payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
): ExecutionArgs | GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(payload.query, limits.parseOptions);
  } catch (error) {
    const message = error instanceof GraphQLError ? error.message : "The operation could not be parsed.";
    return [new GraphQLError(message, { extensions: { code: "GRAPHQL_PARSE_FAILED" } })];
  }
  const errors = validate(schema, document, [...specifiedRules, ...limits.validationRules]);
  if (errors.length) {
    return errors.map((error) =>
      error.extensions.code ? error : new GraphQLError(error.message, { nodes: error.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }),
    );
  }
  // What Apollo reports over HTTP for these two, with the same codes.
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) {
    const message = payload.operationName
      ? `Unknown operation named "${payload.operationName}".`
      : "Must provide operation name if query contains multiple operations.";
    return [new GraphQLError(message, { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } })];
  }
  const unstorable = unstorableTextError(document, operation, payload.variables);
  if (unstorable) return [unstorable];
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
  if (coerced.errors) {
    return coerced.errors.map((error) => new GraphQLError(error.message, { nodes: error.nodes, extensions: { code: "BAD_USER_INPUT" } }));
  }
  const costError = limits.costError(schema, document, payload.operationName, payload.variables);
  if (costError) return [costError];
  return { schema, document, operationName: payload.operationName, variableValues: payload.variables };
}

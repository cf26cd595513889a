// The per-request (HTTP) and per-operation (WebSocket) context. Everything a
// resolver may touch is here, and the only database handle is `db`: the
// policy-bound client for this viewer.
import type { Logger } from "./logger.js";
import { unauthenticated } from "./errors.js";
import { createLoaders, type Loaders } from "./loaders/index.js";
import type { AuthService, ClientInfo } from "./modules/auth/service.js";
import type { WebhookSettings } from "./modules/webhook/service.js";
import { createPolicyClient, type PolicyClient, type PolicyOptions } from "./policy/client.js";
import type { Viewer } from "./policy/viewer.js";
import type { RawPrismaClient } from "./db/database.js";
import type { Realtime } from "./realtime/index.js";
import type { DirectReceiver, SharedResult } from "./realtime/multiplex.js";

export interface GraphQLContext {
  requestId: string;
  viewer: Viewer | null;
  db: PolicyClient;
  loaders: Loaders;
  /**
   * A context for the same viewer and operation with fresh db and loaders: a
   * subscription executes each event in one, so no row cached for an earlier
   * event is served again.
   */
  fresh(): GraphQLContext;
  auth: AuthService;
  realtime: Realtime;
  webhooks: WebhookSettings;
  logger: Logger;
  clientAddress: string;
  /** The address and User-Agent of the caller, for the sessions it starts. */
  client: ClientInfo;
  /** The connection a subscription delivers over (WebSocket operations only). */
  transport?: SubscriptionTransport;
  /** Set for a subscription whose events may be sent by the direct fan-out (src/realtime/multiplex.ts). */
  directReceiver?: Omit<DirectReceiver, "fail">;
}

export interface SubscriptionTransport {
  /** Events a subscription may have waiting to be sent. */
  maxPendingEvents: number;
  /** Called when a subscription has more waiting: ends the connection. */
  slowConsumer(): void;
  /**
   * Sends a result of the subscription as graphql-ws's `next` would (its
   * errors formatted, counted in the metrics), from the direct fan-out.
   */
  sendNext(shared: SharedResult): void;
}

/** What the server keeps for the whole process, to build contexts from. */
export interface ContextFactory {
  (input: {
    requestId: string;
    viewer: Viewer | null;
    clientAddress: string;
    userAgent?: string | undefined;
    /** The operation's logger, or how to make it when first needed. */
    logger: Logger | (() => Logger);
    transport?: SubscriptionTransport;
  }): GraphQLContext;
}

export function createContextFactory(deps: {
  prisma: RawPrismaClient;
  auth: AuthService;
  realtime: Realtime;
  webhooks: WebhookSettings;
  policyOptions: (logger: Logger) => PolicyOptions;
}): ContextFactory {
  // db and loaders are made on first use, not with the context: a WebSocket
  // subscription's context lives as long as the subscription, and with
  // thousands of them open, most never touch either between events (their
  // events are decided and executed for many at once, src/realtime).
  const build = (
    base: Omit<GraphQLContext, "db" | "loaders" | "fresh" | "logger">,
    makeLogger: () => Logger,
    policyOptions: () => PolicyOptions,
  ): GraphQLContext => {
    let db: PolicyClient | undefined;
    let loaders: Loaders | undefined;
    let logger: Logger | undefined;
    const context: GraphQLContext = {
      ...base,
      get db() {
        return (db ??= createPolicyClient(deps.prisma, base.viewer, policyOptions()));
      },
      get loaders() {
        return (loaders ??= createLoaders(context.db));
      },
      get logger() {
        return (logger ??= makeLogger());
      },
      fresh: () => build(base, () => context.logger, policyOptions),
    };
    return context;
  };
  return ({ requestId, viewer, clientAddress, userAgent, logger, transport }) => {
    let policyOptions: PolicyOptions | undefined;
    const makeLogger = typeof logger === "function" ? logger : () => logger;
    return build(
      {
        requestId,
        viewer,
        auth: deps.auth,
        realtime: deps.realtime,
        webhooks: deps.webhooks,
        clientAddress,
        client: { address: clientAddress, userAgent: userAgent ?? null },
        ...(transport ? { transport } : {}),
      },
      makeLogger,
      () => (policyOptions ??= deps.policyOptions(makeLogger())),
    );
  };
}

/** The signed-in viewer, or UNAUTHENTICATED. */
export function requireViewer(context: Pick<GraphQLContext, "viewer">): Viewer {
  if (!context.viewer) throw unauthenticated();
  return context.viewer;
}

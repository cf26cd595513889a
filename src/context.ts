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
  directReceiver?: DirectReceiver;
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
  /** `logger` gives the operation's logger, made when first asked for (a denial logs; most operations have none). */
  policyOptions: (logger: () => Logger) => PolicyOptions;
}): ContextFactory {
  return ({ requestId, viewer, clientAddress, userAgent, logger, transport }) => {
    const operation: OperationParts = {
      deps,
      makeLogger: typeof logger === "function" ? logger : () => logger,
      logger: undefined,
      policyOptions: undefined,
    };
    const context = new LazyContext(
      {
        requestId,
        viewer,
        auth: deps.auth,
        realtime: deps.realtime,
        webhooks: deps.webhooks,
        clientAddress,
        client: { address: clientAddress, userAgent: userAgent ?? null },
      },
      operation,
      { db: undefined, loaders: undefined },
    );
    if (transport) context.transport = transport;
    return context;
  };
}

type ContextBase = Pick<GraphQLContext, "requestId" | "viewer" | "auth" | "realtime" | "webhooks" | "clientAddress" | "client">;

/** What every context of one operation shares: its logger (made on first use) and its policy options. */
interface OperationParts {
  deps: Parameters<typeof createContextFactory>[0];
  makeLogger: () => Logger;
  logger: Logger | undefined;
  /** Made when a db is first made in any of its contexts. */
  policyOptions: PolicyOptions | undefined;
}

/** The operation's logger, made when first asked for: a pino child with its redaction costs kilobytes to make. */
const operationLogger = (operation: OperationParts): Logger => (operation.logger ??= operation.makeLogger());

/** What a context makes on first use. */
interface MadeOnFirstUse {
  db: PolicyClient | undefined;
  loaders: Loaders | undefined;
}

/**
 * db, loaders and logger are made on first use, not with the context: a
 * WebSocket subscription's context lives as long as the subscription, and
 * with thousands of them open, most never touch either between events (their
 * events are decided and executed for many at once, src/realtime). A class,
 * with the getters on its prototype, rather than an object literal with
 * getters of its own: each literal carried four closures and their scopes,
 * and became a dictionary-mode object, about 1.4 kB per subscription.
 *
 * What is made lives in `made`, one object referred to, not in fields of the
 * context: Apollo copies an HTTP context for each operation (own enumerable
 * properties onto an object of the same prototype), and the copies then
 * share what the first of them makes, as they shared the values the getters
 * of the literal had made.
 */
class LazyContext implements GraphQLContext {
  readonly requestId: string;
  readonly viewer: Viewer | null;
  readonly auth: AuthService;
  readonly realtime: Realtime;
  readonly webhooks: WebhookSettings;
  readonly clientAddress: string;
  readonly client: ClientInfo;
  // Declared, not initialised: set only where there is one, as before.
  declare transport?: SubscriptionTransport;
  declare directReceiver?: DirectReceiver;

  constructor(
    base: ContextBase,
    private readonly operation: OperationParts,
    private readonly made: MadeOnFirstUse,
  ) {
    this.requestId = base.requestId;
    this.viewer = base.viewer;
    this.auth = base.auth;
    this.realtime = base.realtime;
    this.webhooks = base.webhooks;
    this.clientAddress = base.clientAddress;
    this.client = base.client;
  }

  get db(): PolicyClient {
    const operation = this.operation;
    operation.policyOptions ??= operation.deps.policyOptions(() => operationLogger(operation));
    return (this.made.db ??= createPolicyClient(operation.deps.prisma, this.viewer, operation.policyOptions));
  }

  get loaders(): Loaders {
    return (this.made.loaders ??= createLoaders(this.db));
  }

  get logger(): Logger {
    return operationLogger(this.operation);
  }

  fresh(): GraphQLContext {
    // The same viewer, operation, logger and transport; its own db and loaders.
    const context = new LazyContext(this, this.operation, { db: undefined, loaders: undefined });
    if (this.transport) context.transport = this.transport;
    return context;
  }
}

/** The signed-in viewer, or UNAUTHENTICATED. */
export function requireViewer(context: Pick<GraphQLContext, "viewer">): Viewer {
  if (!context.viewer) throw unauthenticated();
  return context.viewer;
}

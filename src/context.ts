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

export interface GraphQLContext {
  requestId: string;
  viewer: Viewer | null;
  db: PolicyClient;
  loaders: Loaders;
  /**
   * Replaces db and loaders with fresh ones for the same viewer. A
   * subscription calls it before each event, so no row cached for an earlier
   * event is served again (events execute one at a time per subscription).
   */
  refresh(): { db: PolicyClient; loaders: Loaders };
  auth: AuthService;
  realtime: Realtime;
  webhooks: WebhookSettings;
  logger: Logger;
  clientAddress: string;
  /** The address and User-Agent of the caller, for the sessions it starts. */
  client: ClientInfo;
}

/** What the server keeps for the whole process, to build contexts from. */
export interface ContextFactory {
  (input: { requestId: string; viewer: Viewer | null; clientAddress: string; userAgent?: string | undefined; logger: Logger }): GraphQLContext;
}

export function createContextFactory(deps: {
  prisma: RawPrismaClient;
  auth: AuthService;
  realtime: Realtime;
  webhooks: WebhookSettings;
  policyOptions: (logger: Logger) => PolicyOptions;
}): ContextFactory {
  return ({ requestId, viewer, clientAddress, userAgent, logger }) => {
    const policyOptions = deps.policyOptions(logger);
    const db = createPolicyClient(deps.prisma, viewer, policyOptions);
    const context: GraphQLContext = {
      requestId,
      viewer,
      db,
      loaders: createLoaders(db),
      refresh() {
        context.db = createPolicyClient(deps.prisma, viewer, policyOptions);
        context.loaders = createLoaders(context.db);
        return { db: context.db, loaders: context.loaders };
      },
      auth: deps.auth,
      realtime: deps.realtime,
      webhooks: deps.webhooks,
      logger,
      clientAddress,
      client: { address: clientAddress, userAgent: userAgent ?? null },
    };
    return context;
  };
}

/** The signed-in viewer, or UNAUTHENTICATED. */
export function requireViewer(context: Pick<GraphQLContext, "viewer">): Viewer {
  if (!context.viewer) throw unauthenticated();
  return context.viewer;
}

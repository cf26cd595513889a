// Wires one server instance: database, realtime, Apollo Server on Express
// (HTTP POST/GET /graphql), graphql-ws on the same path, health routes, and an
// orderly close(). main.ts calls this; so do the tests, on a free port.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { expressMiddleware } from "@as-integrations/express5";
import {
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";
import { makeExecutableSchema } from "@graphql-tools/schema";
import type { GraphQLFormattedError } from "graphql";
import express from "express";
import { Redis } from "ioredis";
import type { Config } from "./config.js";
import { createContextFactory, type GraphQLContext } from "./context.js";
import { openDatabase, type Database } from "./db/database.js";
import { withQueryStats } from "./db/queryStats.js";
import { AppError } from "./errors.js";
import { formatError } from "./http/formatError.js";
import { withoutSuggestions } from "./http/schemaVisibility.js";
import { batchSizeLimit } from "./http/batchLimit.js";
import { healthRoutes } from "./http/health.js";
import { graphqlResponseStatusPlugin } from "./http/httpConformance.js";
import { createOperationLimits } from "./http/limits.js";
import { clientAddress } from "./http/clientAddress.js";
import { corsMiddleware } from "./http/cors.js";
import { explorerRoutes } from "./http/explorer.js";
import { createMetrics, metricsRoute } from "./http/metrics.js";
import { originPolicy } from "./http/origins.js";
import { listenForMetrics } from "./http/metricsListener.js";
import { noStorePlugins } from "./http/noStore.js";
import { createOperationQueue } from "./http/operationQueue.js";
import { operationPlugin } from "./http/operationPlugin.js";
import { notFoundHandler, requestErrorHandler } from "./http/requestErrors.js";
import { requestIdMiddleware } from "./http/requestId.js";
import { attachWebSocketServer } from "./http/websocket.js";
import { DocumentCache } from "./http/documentCache.js";
import { drainHttpServer } from "./http/drain.js";
import { createLogger, type Logger } from "./logger.js";
import { createAuthRateLimiter } from "./modules/auth/rateLimits.js";
import { createAuthService, type AuthService } from "./modules/auth/service.js";
import { createSessionCheck, type SessionCheck } from "./modules/auth/sessionCheck.js";
import { startSessionPruning } from "./modules/auth/sessionPruning.js";
import { bearerToken, createTokenService, resolveJwtSecret } from "./modules/auth/tokens.js";
import { createEventCursors } from "./realtime/eventCursor.js";
import { createRealtime } from "./realtime/index.js";
import { loadTypeDefs, resolvers } from "./schema.js";
import { logRedisOutages } from "./recurringFailure.js";
import { timerDelay } from "./timers.js";
import { startJobs } from "./jobs/index.js";
import type { WebhookOptions } from "./webhooks/index.js";

export const GRAPHQL_PATH = "/graphql";

export interface RunningServer {
  url: string;
  port: number;
  /** The metrics listener's /metrics URL, when METRICS_PORT gives /metrics a listener of its own. */
  metricsUrl: string | undefined;
  database: Database;
  logger: Logger;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Replaces the check that a token's session is still active (bench:sessions measures the server without one). */
  sessionCheck?: SessionCheck;
  webhooks?: WebhookOptions;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config);
  const database = await openDatabase(config.database);
  const resources: { close(): Promise<void> }[] = [database];
  try {
    if (config.migrateOnStart) {
      const { applied } = await database.migrate();
      if (applied.length) logger.info({ applied }, "applied migrations");
    }
    const redis = config.redisUrl
      ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
      : undefined;
    if (redis) logRedisOutages(redis, logger, "rate limits");
    if (redis) resources.unshift({ close: async () => void redis.disconnect() });

    const metrics = createMetrics();
    // One secret signs tokens and (through a key derived from it) event cursors.
    const secret = await resolveJwtSecret(config);
    // Made before realtime: the fan-out gives way to the requests it is executing.
    const operationQueue = createOperationQueue(config.operationQueue);
    const realtime = await createRealtime(database.prisma, config, logger, createEventCursors(secret), {
      foreground: operationQueue,
      fanOutObserver: metrics.fanOut,
    });
    resources.unshift(realtime);
    // Background jobs (src/jobs): run here unless JOBS=off; stopped at the start of close(), beside the drain.
    const jobs = await startJobs({
      database,
      realtime,
      config,
      logger,
      observers: { jobs: metrics.jobs, webhooks: metrics.webhooks },
      ...(options.webhooks ? { webhookOptions: options.webhooks } : {}),
    });
    metrics.watchQueueDepth(() => jobs.queue.depth());
    metrics.watchFanOut(() => realtime.fanOutStats);
    metrics.watchStatements(() => database.statements.sqlStatements);
    const stopJobs = () => jobs.stop(Math.max(1000, config.shutdownTimeoutMs - config.shutdownDelayMs - 1000));
    resources.unshift({ close: stopJobs });
    const tokens = createTokenService(secret, config.jwt.ttlMs);
    const sessionCheck =
      options.sessionCheck ??
      createSessionCheck(database.prisma, { cacheTtlMs: config.sessions.cacheTtlMs, redisUrl: config.redisUrl }, logger);
    resources.unshift(sessionCheck, startSessionPruning(database.prisma, config.sessions.refreshTtlMs, logger));
    const auth = createAuthService({
      prisma: database.prisma,
      tokens,
      limiter: createAuthRateLimiter(config.rateLimits, redis),
      sessionCheck,
      refreshTtlMs: config.sessions.refreshTtlMs,
    });
    const createContext = createContextFactory({
      prisma: database.prisma,
      auth,
      realtime,
      webhooks: {
        urlPolicy: { allowPrivateNetworks: config.webhooks.allowPrivateNetworks, isProduction: config.isProduction },
        queue: jobs.webhooks,
      },
      policyOptions: (requestLogger) => ({
        onDenied: (denial) => requestLogger().debug({ denial }, "policy denied"),
        explain: config.policyExplain,
        onEventsCommitted: (events) => {
          metrics.eventsPublished(events.length);
          realtime.published(events);
        },
      }),
    });

    // Set when close() begins; /ready answers 503 from then on.
    let closing: Promise<void> | undefined;

    const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
    const limits = createOperationLimits(config.limits, { introspection: config.introspection });
    // What clients see of an error, on both transports: formatError's
    // translation and masking, and no schema hints when introspection is off.
    const clientError = (formatted: GraphQLFormattedError, error: unknown) =>
      config.introspection ? formatError(formatted, error) : withoutSuggestions(formatError(formatted, error));
    const app = express();
    app.disable("x-powered-by");
    // One trusted hop: req.ip is the address our proxy saw (the last
    // X-Forwarded-For entry), not whatever the client put in front of it.
    app.set("trust proxy", config.trustProxy ? 1 : false);
    const httpServer = http.createServer(app);
    const ws = attachWebSocketServer({
      httpServer,
      path: GRAPHQL_PATH,
      schema,
      config,
      auth,
      createContext,
      logger,
      limits,
      formatError: clientError,
      observer: metrics.webSockets,
    });

    const apollo = new ApolloServer<GraphQLContext>({
      schema,
      // main.ts owns SIGTERM/SIGINT. Apollo's own handlers (installed unless
      // NODE_ENV=test) would start a second stop(), and an apollo.stop() that
      // joins one already running never returns in Apollo Server 5: close()
      // would hang, the database never close, and the process end by timeout.
      stopOnTerminationSignals: false,
      // Introspection is refused by a validation rule of ours (limits.ts), the
      // same over HTTP and WebSocket; Apollo's flag would add a second one.
      introspection: true,
      allowBatchedHttpRequests: config.limits.allowBatchedRequests,
      includeStacktraceInErrorResponses: false,
      formatError: clientError,
      parseOptions: limits.parseOptions,
      validationRules: limits.validationRules,
      documentStore: new DocumentCache(),
      plugins: [
        ...limits.apolloPlugins(),
        graphqlResponseStatusPlugin(),
        ...noStorePlugins(),
        // Whatever is still open a second before SHUTDOWN_TIMEOUT is cut, so the close completes.
        drainHttpServer(httpServer, { deadlineMs: Math.max(500, config.shutdownTimeoutMs - config.shutdownDelayMs - 1000) }),
        // EXPLORER=graphiql is served by explorerRoutes, before Apollo sees the request.
        // Sandbox comes from Apollo's CDN; its telemetry stays off.
        config.explorer === "sandbox"
          ? ApolloServerPluginLandingPageLocalDefault({ embed: { runTelemetry: false }, includeCookies: false })
          : ApolloServerPluginLandingPageDisabled(),
        operationPlugin({ logger, queryStats: config.queryStats, observer: metrics.operations }),
        { async serverWillStart() { return { drainServer: () => ws.close() }; } },
      ],
    });
    await apollo.start();

    app.use(requestIdMiddleware);
    app.use(healthRoutes(database, () => closing !== undefined));
    // With a listener of its own, the public port does not serve /metrics at
    // all: it answers 404 like any other unknown path.
    if (!config.metrics.listener) app.use(metricsRoute(metrics, config.metrics.token));
    if (config.explorer === "graphiql") app.use(explorerRoutes({ graphqlPath: GRAPHQL_PATH, logger }));
    app.use(
      GRAPHQL_PATH,
      // Before anything reads the body: a preflight is answered here.
      corsMiddleware(originPolicy(config.cors.origins)),
      // Under overload requests wait here, before anything is parsed or allocated for them.
      operationQueue.middleware,
      express.json({ limit: config.limits.bodySizeBytes }),
      // With batching off, Apollo refuses any array (see limits.ts).
      ...(config.limits.allowBatchedRequests ? [batchSizeLimit(config.limits.maxBatchSize)] : []),
      // Every statement this request sends is counted in its own scope.
      (_req, _res, next) => withQueryStats({ sqlStatements: 0 }, () => next()),
      expressMiddleware(apollo, {
        context: async ({ req, res }) => {
          const requestId = String(res.locals.requestId);
          const requestLogger = logger.child({ requestId });
          const viewer = await viewerFromHeader(auth, req.headers.authorization);
          return createContext({
            requestId,
            viewer,
            clientAddress: clientAddress(req, config.trustProxy),
            userAgent: req.headers["user-agent"],
            logger: requestLogger,
          });
        },
      }),
    );
    app.use(notFoundHandler(GRAPHQL_PATH));
    app.use(requestErrorHandler(logger, config.limits.bodySize));

    // Before the public port, so a start that cannot have its metrics
    // listener never serves; closed last (after the drain and the database),
    // so a scraper can watch the whole shutdown.
    const metricsListener = config.metrics.listener
      ? await listenForMetrics(metrics, { ...config.metrics.listener, token: config.metrics.token })
      : undefined;
    if (metricsListener) resources.push(metricsListener);
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
    const url = `http://${host}:${port}${GRAPHQL_PATH}`;

    const close = () =>
      (closing ??= (async () => {
        // /ready answers 503 from now on (closing is set). With a delay, the
        // server goes on serving as usual meanwhile, so a load balancer that
        // polls /ready takes it out of rotation before it stops accepting.
        if (config.shutdownDelayMs > 0) {
          logger.info({ delayMs: config.shutdownDelayMs }, "not ready; serving on until the shutdown delay ends");
          await new Promise((resolve) => setTimeout(resolve, timerDelay(config.shutdownDelayMs)));
        }
        // apollo.stop() stops accepting, waits for in-flight requests (drain
        // plugin) and closes the WebSockets (drainServer above). Running jobs
        // get the same time to finish, meanwhile (jobs.stop runs once).
        const jobsStopped = stopJobs();
        await apollo.stop();
        await jobsStopped;
        for (const resource of resources) await resource.close();
      })());
    return { url, port, metricsUrl: metricsListener?.url, database, logger, close };
  } catch (error) {
    for (const resource of resources) await resource.close().catch(() => undefined);
    throw error;
  }
}

/** A bad token, or one whose session has ended, fails the whole request with 401 before any resolver runs. */
async function viewerFromHeader(auth: AuthService, authorization: string | undefined) {
  try {
    const token = bearerToken(authorization);
    return token ? (await auth.authenticate(token)).viewer : null;
  } catch (error) {
    if (error instanceof AppError) {
      throw new AppError(error.code, error.message, {
        http: { status: 401, headers: new HeaderMap([["www-authenticate", 'Bearer error="invalid_token"']]) },
      });
    }
    throw error;
  }
}

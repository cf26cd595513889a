// The baseline server of the read benchmarks (bench:policy, bench:read): the
// same HTTP and GraphQL stack as src/server.ts (Express, Apollo Server, the
// same schema, resolvers and DataLoaders, operation limits, the operation
// plugin, JWT verification), but `db` is the raw, unbound Prisma client with
// only the conditions a hand-written server needs to give the same answer
// (spaces: I am a member; lists: not private, or mine), and no per-row filter
// anywhere else. What a read costs beyond it is what the access policy costs.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { expressMiddleware } from "@as-integrations/express5";
import { makeExecutableSchema } from "@graphql-tools/schema";
import express from "express";
import type { Config } from "../src/config.js";
import type { GraphQLContext } from "../src/context.js";
import type { RawPrismaClient } from "../src/db/database.js";
import { withQueryStats } from "../src/db/queryStats.js";
import { formatError } from "../src/http/formatError.js";
import { graphqlResponseStatusPlugin } from "../src/http/httpConformance.js";
import { createOperationLimits } from "../src/http/limits.js";
import { noStorePlugins } from "../src/http/noStore.js";
import { operationPlugin } from "../src/http/operationPlugin.js";
import { requestIdMiddleware } from "../src/http/requestId.js";
import { createLoaders } from "../src/loaders/index.js";
import { createLogger } from "../src/logger.js";
import { bearerToken, createTokenService } from "../src/modules/auth/tokens.js";
import type { PolicyClient, PolicyDelegate } from "../src/policy/client.js";
import type { ModelName } from "../src/policy/rules.js";
import type { Viewer } from "../src/policy/viewer.js";
import { loadTypeDefs, resolvers } from "../src/schema.js";

/**
 * The raw client in the shape of the policy client, with only the scoping a
 * hand-written server needs for the same answer, at the top of a read and in
 * a relation it selects (a page of lists read with its spaces). Reads only:
 * the benchmarks never write through it.
 */
export function handWrittenClient(raw: RawPrismaClient, viewer: Viewer): PolicyClient {
  type Args = { where?: unknown; select?: Record<string, unknown> } & Record<string, unknown>;
  const spaceScope = { members: { some: { userId: viewer.id } } };
  const listScope = { OR: [{ private: false }, { ownerId: viewer.id }] };
  const relationScopes: Record<string, object> = { lists: listScope };
  const scopedWhere = (where: unknown, scope: object) => ({ ...(where as object), AND: [scope] });
  const scoped = <M extends ModelName>(model: M, scope: object | undefined): PolicyDelegate<M> => {
    // Prisma's delegates are generic per call; here every call is a plain
    // object in, a promise out.
    const delegate = raw[model] as unknown as Record<string, (args: Args) => Promise<unknown>>;
    // The caller's own where stays at the top level (findUnique needs it there).
    const narrow = (args: Args = {}): Args => {
      const select = args.select
        ? Object.fromEntries(
            Object.entries(args.select).map(([field, value]) => {
              const relationScope = relationScopes[field];
              if (!relationScope || typeof value !== "object" || value === null) return [field, value];
              return [field, { ...value, where: scopedWhere((value as Args).where, relationScope) }];
            }),
          )
        : undefined;
      return { ...args, ...(scope ? { where: scopedWhere(args.where, scope) } : {}), ...(select ? { select } : {}) };
    };
    const read = (operation: string) => (args?: Args) => delegate[operation]!(narrow(args));
    const refuse = () => Promise.reject(new Error("the baseline client is read-only"));
    return {
      findUnique: read("findUnique"),
      findFirst: read("findFirst"),
      findMany: read("findMany"),
      count: read("count"),
      groupBy: read("groupBy"),
      create: refuse,
      update: refuse,
      delete: refuse,
    } as unknown as PolicyDelegate<M>;
  };
  const client: PolicyClient = {
    viewer,
    user: scoped("user", undefined),
    space: scoped("space", spaceScope),
    spaceMember: scoped("spaceMember", undefined),
    list: scoped("list", listScope),
    todo: scoped("todo", undefined),
    session: scoped("session", { userId: viewer.id }),
    webhook: scoped("webhook", undefined),
    webhookDelivery: scoped("webhookDelivery", undefined),
    $transaction: (fn) => fn(client),
    $appendEvent: () => Promise.reject(new Error("the baseline client is read-only")),
    $authorizeCreate: () => Promise.reject(new Error("the baseline client is read-only")),
  };
  return client;
}

/** The same HTTP and GraphQL stack as src/server.ts, with the hand-written client as `db`. */
export async function startBaselineServer(config: Config, raw: RawPrismaClient, jwtSecret: string, port = 0) {
  const logger = createLogger(config);
  const tokens = createTokenService(new TextEncoder().encode(jwtSecret), config.jwt.ttlMs);
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
  const limits = createOperationLimits(config.limits, { introspection: config.introspection });
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: false,
    includeStacktraceInErrorResponses: false,
    formatError,
    parseOptions: limits.parseOptions,
    validationRules: limits.validationRules,
    plugins: [
      ...limits.apolloPlugins(),
      graphqlResponseStatusPlugin(),
      ...noStorePlugins(),
      operationPlugin({ logger, queryStats: true }),
    ],
  });
  await apollo.start();
  const app = express();
  app.use(requestIdMiddleware);
  app.use(
    "/graphql",
    express.json({ limit: config.limits.bodySizeBytes }),
    (_req, _res, next) => withQueryStats({ sqlStatements: 0 }, () => next()),
    expressMiddleware(apollo, {
      context: async ({ req, res }): Promise<GraphQLContext> => {
        const token = bearerToken(req.headers.authorization);
        if (!token) throw new Error("the baseline needs a bearer token");
        const { viewer } = await tokens.verify(token);
        const db = handWrittenClient(raw, viewer);
        const context: GraphQLContext = {
          requestId: String(res.locals.requestId),
          viewer,
          db,
          loaders: createLoaders(db),
          // Subscriptions are the only callers, and the benchmarks open none.
          fresh: () => context,
          // Queries never reach auth or realtime; the benchmarks send none of
          // the operations that would.
          auth: undefined as unknown as GraphQLContext["auth"],
          realtime: undefined as unknown as GraphQLContext["realtime"],
          webhooks: undefined as unknown as GraphQLContext["webhooks"],
          logger,
          clientAddress: req.ip ?? "unknown",
          client: { address: req.ip ?? "unknown", userAgent: null },
        };
        return context;
      },
    }),
  );
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/graphql`,
    close: async () => {
      await apollo.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Starts the real server on a free port with a fresh database, and gives tests
// a small GraphQL-over-HTTP client for it.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig, type Config } from "../../src/config.js";
import type { Logger } from "../../src/logger.js";
import { startServer, type RunningServer } from "../../src/server.js";
import type { WebhookOptions } from "../../src/webhooks/index.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

export const TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";

export interface TestServer extends RunningServer {
  wsUrl: string;
  baseUrl: string;
  config: Config;
  gql<Data = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResult<Data>>;
}

export interface GraphQLResult<Data> {
  status: number;
  headers: Headers;
  data?: Data | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> & { code?: string } }[];
  extensions?: Record<string, unknown> & { queryStats?: { sqlStatements: number; durationMs: number } };
}

export interface TestServerOptions {
  env?: Record<string, string>;
  /** Share a database with another test server (multi-instance tests). */
  database?: TestDatabase;
  /** The server's logger (default: one at TEST_LOG_LEVEL, silent unless set). */
  logger?: Logger;
  /** Webhook hooks, such as a DNS lookup of the test's own. */
  webhooks?: WebhookOptions;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer & { testDatabase: TestDatabase }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "todo-test-"));
  const testDatabase = options.database ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dataDir,
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    GRAPHQL_QUERY_STATS: "true",
    ...(testDatabase.url ? { DATABASE_URL: testDatabase.url } : {}),
    ...options.env,
  });
  config.database = testDatabase.config;
  const server = await startServer(config, {
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.webhooks ? { webhooks: options.webhooks } : {}),
  });
  const baseUrl = server.url.replace(/\/graphql$/, "");
  return {
    ...server,
    config,
    baseUrl,
    testDatabase,
    wsUrl: server.url.replace(/^http/, "ws"),
    gql: (query, variables, token) => postGraphQL(server.url, query, variables, token),
    async close() {
      await server.close();
      if (!options.database) await testDatabase.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function postGraphQL<Data>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string,
): Promise<GraphQLResult<Data>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GraphQLResult<Data>, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

let counter = 0;
/** A unique, valid email for this test process. */
export const uniqueEmail = (prefix = "user") => `${prefix}-${process.pid}-${++counter}-${Date.now()}@example.com`;

export async function signUp(server: Pick<TestServer, "gql">, email = uniqueEmail(), password = "correct-horse-1") {
  const result = await server.gql<{ signUp: { token: string; user: { id: string; email: string } } }>(
    `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id email } } }`,
    { input: { email, password } },
  );
  if (!result.data?.signUp) throw new Error(`signUp failed: ${JSON.stringify(result.errors)}`);
  return { ...result.data.signUp, email, password };
}

/** The `extensions.code` of the first error, for terse assertions. */
export const errorCode = (result: GraphQLResult<unknown>) => result.errors?.[0]?.extensions?.code;

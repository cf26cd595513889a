import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  BYTES_PER_SOCKET,
  ConfigError,
  defaultMaxConnections,
  ENVIRONMENT_VARIABLES,
  loadConfig,
  parseDuration,
} from "../../src/config.js";

describe("loadConfig", () => {
  it("defaults to the embedded database in ./data on port 4000", () => {
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.database).toMatchObject({ kind: "pglite" });
    expect(config.migrateOnStart).toBe(true);
    expect(config.jwt.ttlMs).toBe(15 * 60 * 1000);
    expect(config.introspection).toBe(true);
    expect(config.explorer).toBe("graphiql");
    expect(config.cors.origins).toEqual(["http://localhost:*", "http://127.0.0.1:*"]);
    expect(config.limits.maxDepth).toBe(12);
    expect(config.limits.maxAliases).toBe(30);
    expect(config.operationQueue).toEqual({ maxConcurrent: 8, maxQueued: 1000 });
  });

  it("selects PostgreSQL for a postgres:// or postgresql:// DATABASE_URL", () => {
    for (const url of ["postgres://u@h/db", "postgresql://u@h:5433/db"]) {
      expect(loadConfig({ DATABASE_URL: url, DATABASE_POOL_MAX: "3" }).database).toMatchObject({
        kind: "postgres",
        url,
        poolMax: 3,
      });
    }
  });

  it("takes a shutdown delay shorter than the shutdown timeout, and none by default", () => {
    expect(loadConfig({}).shutdownDelayMs).toBe(0);
    expect(loadConfig({ SHUTDOWN_DELAY: "5s", SHUTDOWN_TIMEOUT: "30s" })).toMatchObject({ shutdownDelayMs: 5000, shutdownTimeoutMs: 30_000 });
    expect(loadConfig({ SHUTDOWN_DELAY: "8s" }).shutdownDelayMs).toBe(8000);
  });

  it("runs jobs in process by default, with the webhook delivery settings of WEBHOOKS.md", () => {
    const config = loadConfig({});
    expect(config.jobs).toEqual({ enabled: true, concurrency: 10, pollIntervalMs: 1000 });
    expect(config.webhooks).toEqual({
      timeoutMs: 10_000,
      maxAttempts: 8,
      disableAfter: 5,
      retryScheduleMs: [5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000],
      allowPrivateNetworks: false,
    });
    expect(loadConfig({ JOBS: "off" }).jobs.enabled).toBe(false);
    expect(loadConfig({ JOBS: "ON" }).jobs.enabled).toBe(true);
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: "500ms, 1s,2s" }).webhooks.retryScheduleMs).toEqual([500, 1000, 2000]);
  });

  it("treats empty values as unset", () => {
    expect(loadConfig({ PORT: "", DATABASE_URL: "" }).database.kind).toBe("pglite");
  });

  it("turns the explorer, local CORS origins and introspection off in production unless INTROSPECTION=true", () => {
    const secret = "s".repeat(32);
    const production = loadConfig({ NODE_ENV: "production", JWT_SECRET: secret, METRICS_TOKEN: "t" });
    expect(production.introspection).toBe(false);
    expect(production.explorer).toBe("none");
    expect(production.cors.origins).toEqual([]);
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: secret, METRICS_TOKEN: "t", INTROSPECTION: "true" }).introspection).toBe(true);
  });

  it("serves /metrics on the public port unless METRICS_PORT gives it a listener of its own (on 127.0.0.1 by default)", () => {
    expect(loadConfig({}).metrics).toEqual({ token: undefined, listener: undefined });
    expect(loadConfig({ METRICS_TOKEN: "t" }).metrics).toEqual({ token: "t", listener: undefined });
    expect(loadConfig({ METRICS_PORT: "9464" }).metrics.listener).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(loadConfig({ METRICS_PORT: "0", METRICS_HOST: "0.0.0.0" }).metrics.listener).toEqual({ host: "0.0.0.0", port: 0 });
    // Both on "any free port" are two different ports.
    expect(loadConfig({ PORT: "0", METRICS_PORT: "0" }).metrics.listener?.port).toBe(0);
  });

  it("starts in production when /metrics is protected by a token, on its own listener, or public on purpose", () => {
    const production = { NODE_ENV: "production", JWT_SECRET: "s".repeat(32) };
    expect(loadConfig({ ...production, METRICS_TOKEN: "t" }).metrics.token).toBe("t");
    expect(loadConfig({ ...production, METRICS_PORT: "9464" }).metrics.listener?.port).toBe(9464);
    expect(loadConfig({ ...production, METRICS_PUBLIC: "true" }).metrics).toEqual({ token: undefined, listener: undefined });
  });

  it("caps WebSocket connections: 20 per user, 50 pending per address, and per instance sized to memory", () => {
    expect(loadConfig({}).websocket).toMatchObject({
      maxConnectionsPerUser: 20,
      maxPendingPerAddress: 50,
      maxConnections: defaultMaxConnections(),
    });
    expect(loadConfig({ WS_MAX_CONNECTIONS: "300", WS_MAX_CONNECTIONS_PER_USER: "2", WS_MAX_PENDING_PER_ADDRESS: "5" }).websocket).toMatchObject({
      maxConnections: 300,
      maxConnectionsPerUser: 2,
      maxPendingPerAddress: 5,
    });
    // Half the memory at 100 KiB a socket, never below 20 000.
    expect(defaultMaxConnections()).toBeGreaterThanOrEqual(20_000);
    expect(defaultMaxConnections(1024 ** 3)).toBe(20_000);
    expect(defaultMaxConnections(16 * 1024 ** 3)).toBe(Math.floor((16 * 1024 ** 3) / 2 / BYTES_PER_SOCKET));
    expect(defaultMaxConnections(16 * 1024 ** 3)).toBe(83_886);
  });

  it("explains policy denials outside production only, unless POLICY_EXPLAIN says otherwise", () => {
    const production = { NODE_ENV: "production", JWT_SECRET: "s".repeat(32), METRICS_TOKEN: "metrics-token" };
    expect(loadConfig({ NODE_ENV: "development" }).policyExplain).toBe(true);
    expect(loadConfig(production).policyExplain).toBe(false);
    expect(loadConfig({ ...production, POLICY_EXPLAIN: "true" }).policyExplain).toBe(true);
    expect(loadConfig({ NODE_ENV: "development", POLICY_EXPLAIN: "false" }).policyExplain).toBe(false);
  });

  it("gives access tokens 15 minutes and sessions 30 days by default, and reads both", () => {
    expect(loadConfig({})).toMatchObject({ jwt: { ttlMs: 900_000 }, sessions: { refreshTtlMs: 2_592_000_000, cacheTtlMs: 2000 } });
    expect(loadConfig({ JWT_TTL: "5m", REFRESH_TOKEN_TTL: "1d", SESSION_CACHE_TTL: "0" })).toMatchObject({
      jwt: { ttlMs: 300_000 },
      sessions: { refreshTtlMs: 86_400_000, cacheTtlMs: 0 },
    });
  });

  it("takes EXPLORER as graphiql, sandbox or none, in production too", () => {
    const production = { NODE_ENV: "production", JWT_SECRET: "s".repeat(32), METRICS_TOKEN: "t" };
    expect(loadConfig({ EXPLORER: "sandbox" }).explorer).toBe("sandbox");
    expect(loadConfig({ EXPLORER: "none" }).explorer).toBe("none");
    expect(loadConfig({ ...production, EXPLORER: "graphiql" }).explorer).toBe("graphiql");
  });

  it("takes CORS_ORIGINS as a comma list of origins and patterns, normalised, or none", () => {
    expect(loadConfig({ CORS_ORIGINS: " https://App.Example.com , http://localhost:3000,https://*.example.org,http://127.0.0.1:*" }).cors.origins).toEqual([
      "https://app.example.com",
      "http://localhost:3000",
      "https://*.example.org",
      "http://127.0.0.1:*",
    ]);
    // The scheme's default port is the same origin without it.
    expect(loadConfig({ CORS_ORIGINS: "https://app.example.com:443,http://a.example:80,http://[::1]:5173" }).cors.origins).toEqual([
      "https://app.example.com",
      "http://a.example",
      "http://[::1]:5173",
    ]);
    expect(loadConfig({ CORS_ORIGINS: "*" }).cors.origins).toEqual(["*"]);
    // none: no other origin, outside production too.
    expect(loadConfig({ CORS_ORIGINS: "none" }).cors.origins).toEqual([]);
    const production = { NODE_ENV: "production", JWT_SECRET: "s".repeat(32), METRICS_TOKEN: "t" };
    expect(loadConfig({ ...production, CORS_ORIGINS: "https://app.example.com" }).cors.origins).toEqual(["https://app.example.com"]);
  });

  it("takes log-in limits per account above the limit per account and address", () => {
    const config = loadConfig({ RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: "5", RATE_LIMIT_LOGIN_PER_ACCOUNT: "6", RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: "2h" });
    expect(config.rateLimits).toMatchObject({ loginPerAccountAddress: 5, loginPerAccount: 6, loginAccountWindowMs: 7_200_000 });
  });

  it.each([
    [{ PORT: "http" }, /^Invalid PORT: /],
    [{ PORT: "70000" }, /^Invalid PORT: /],
    [{ DATABASE_URL: "mysql://x" }, /^Invalid DATABASE_URL: must start with postgres/],
    [{ MIGRATE_ON_START: "maybe" }, /^Invalid MIGRATE_ON_START: must be true or false/],
    [{ JWT_TTL: "forever" }, /^Invalid JWT_TTL: must be a duration/],
    [{ JWT_TTL: "0" }, /^Invalid JWT_TTL: must be at least 1s/],
    [{ REFRESH_TOKEN_TTL: "0" }, /^Invalid REFRESH_TOKEN_TTL: must be at least 1s/],
    [{ JWT_TTL: "1h", REFRESH_TOKEN_TTL: "1h" }, /^Invalid REFRESH_TOKEN_TTL: must be longer than JWT_TTL/],
    [{ SESSION_CACHE_TTL: "5s" }, /^Invalid SESSION_CACHE_TTL: must be at most 4s/],
    [{ EVENT_RETENTION: "0" }, /^Invalid EVENT_RETENTION: must be at least 1s/],
    [{ EVENT_POLL_INTERVAL: "5ms" }, /^Invalid EVENT_POLL_INTERVAL: must be at least 10ms/],
    [{ JWT_SECRET: "short" }, /^Invalid JWT_SECRET: must be at least 32 characters/],
    [{ NODE_ENV: "production" }, /^Invalid JWT_SECRET: required when NODE_ENV=production/],
    [{ LOG_LEVEL: "loud" }, /^Invalid LOG_LEVEL: /],
    [{ REDIS_URL: "localhost:6379" }, /^Invalid REDIS_URL: /],
    [{ RATE_LIMIT_SIGNUP_PER_ADDRESS: "5" }, /^Invalid RATE_LIMIT_SIGNUP_PER_ADDRESS: /],
    [{ RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: "0" }, /^Invalid RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: /],
    [{ RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: "soon" }, /^Invalid RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: must be a duration/],
    // The variable's meaning before the per-(account, address) limit, and its old default.
    [{ RATE_LIMIT_LOGIN_PER_ACCOUNT: "10" }, /^Invalid RATE_LIMIT_LOGIN_PER_ACCOUNT: must be greater than RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS \(10\)/],
    [
      { RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: "200" },
      /^Invalid RATE_LIMIT_LOGIN_PER_ACCOUNT: must be greater than RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS \(200\)/,
    ],
    [{ SHUTDOWN_DELAY: "soon" }, /^Invalid SHUTDOWN_DELAY: must be a duration/],
    [{ SHUTDOWN_DELAY: "10s" }, /^Invalid SHUTDOWN_DELAY: must be at least 2s shorter than SHUTDOWN_TIMEOUT/],
    [{ SHUTDOWN_DELAY: "8.5s" }, /^Invalid SHUTDOWN_DELAY: must be at least 2s shorter than SHUTDOWN_TIMEOUT/],
    [
      { NODE_ENV: "production", JWT_SECRET: "s".repeat(32) },
      /^Invalid METRICS_TOKEN: required when NODE_ENV=production, unless METRICS_PORT .* or METRICS_PUBLIC=true\.$/,
    ],
    [{ METRICS_PORT: "4000" }, /^Invalid METRICS_PORT: must differ from PORT/],
    [{ PORT: "8080", METRICS_PORT: "8080" }, /^Invalid METRICS_PORT: must differ from PORT/],
    [{ METRICS_PORT: "metrics" }, /^Invalid METRICS_PORT: /],
    [{ METRICS_PORT: "9464", METRICS_PUBLIC: "true" }, /^Invalid METRICS_PUBLIC: /],
    [{ METRICS_PUBLIC: "sure" }, /^Invalid METRICS_PUBLIC: must be true or false/],
    [{ JOBS: "sometimes" }, /^Invalid JOBS: must be on or off/],
    [{ JOBS_POLL_INTERVAL: "100ms" }, /^Invalid JOBS_POLL_INTERVAL: must be at least 500ms/],
    [{ JOBS_CONCURRENCY: "0" }, /^Invalid JOBS_CONCURRENCY: /],
    [{ WEBHOOK_TIMEOUT: "10ms" }, /^Invalid WEBHOOK_TIMEOUT: must be at least 100ms/],
    [{ WEBHOOK_MAX_ATTEMPTS: "0" }, /^Invalid WEBHOOK_MAX_ATTEMPTS: /],
    [{ WEBHOOK_DISABLE_AFTER: "none" }, /^Invalid WEBHOOK_DISABLE_AFTER: /],
    [{ WEBHOOK_RETRY_SCHEDULE: "5s,soon" }, /^Invalid WEBHOOK_RETRY_SCHEDULE: must be a comma-separated list of durations/],
    [{ WEBHOOK_ALLOW_PRIVATE_NETWORKS: "perhaps" }, /^Invalid WEBHOOK_ALLOW_PRIVATE_NETWORKS: must be true or false/],
    [{ WS_MAX_CONNECTIONS: "0" }, /^Invalid WS_MAX_CONNECTIONS: /],
    [{ WS_MAX_CONNECTIONS_PER_USER: "-1" }, /^Invalid WS_MAX_CONNECTIONS_PER_USER: /],
    [{ WS_MAX_PENDING_PER_ADDRESS: "many" }, /^Invalid WS_MAX_PENDING_PER_ADDRESS: /],
    [{ EXPLORER: "playground" }, /^Invalid EXPLORER: /],
    [{ CORS_ORIGINS: "https://app.example.com/" }, /^Invalid CORS_ORIGINS: "https:\/\/app.example.com\/" is not an origin/],
    [{ CORS_ORIGINS: "app.example.com" }, /^Invalid CORS_ORIGINS: "app.example.com" is not an origin/],
    [{ CORS_ORIGINS: "ftp://files.example.com" }, /^Invalid CORS_ORIGINS: "ftp:\/\/files.example.com" is not an origin/],
    [{ CORS_ORIGINS: "https://app.example.com/path" }, /^Invalid CORS_ORIGINS: /],
    [{ CORS_ORIGINS: "https://*example.com" }, /^Invalid CORS_ORIGINS: /],
    [{ CORS_ORIGINS: "https://app.*.com" }, /^Invalid CORS_ORIGINS: /],
    [{ CORS_ORIGINS: "https://user@app.example.com" }, /^Invalid CORS_ORIGINS: /],
    [{ CORS_ORIGINS: "http://localhost:70000" }, /^Invalid CORS_ORIGINS: "http:\/\/localhost:70000" has no valid port/],
    [{ CORS_ORIGINS: ", ," }, /^Invalid CORS_ORIGINS: must list at least one origin/],
    [{ CORS_ORIGINS: "https://a.example.com,none" }, /^Invalid CORS_ORIGINS: "none" is not an origin/],
    [{ GRAPHQL_MAX_CONCURRENT_OPERATIONS: "0" }, /^Invalid GRAPHQL_MAX_CONCURRENT_OPERATIONS: /],
    [{ GRAPHQL_MAX_QUEUED_OPERATIONS: "-1" }, /^Invalid GRAPHQL_MAX_QUEUED_OPERATIONS: /],
  ])("rejects %j with a one-line message naming the variable", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });
});

describe("parseDuration", () => {
  it.each([
    ["7d", 604_800_000],
    ["12h", 43_200_000],
    ["30m", 1_800_000],
    ["45s", 45_000],
    ["250ms", 250],
    ["90", 90_000],
  ])("parses %s", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "7 days", "-1s", "1w", "abc"])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe(".env.example", () => {
  const text = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");
  const documented = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]);
  const values = Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]!.trim()]));

  it("lists every variable the server reads, and nothing else", () => {
    expect([...documented].sort()).toEqual([...ENVIRONMENT_VARIABLES].sort());
  });

  it("shows the real defaults: its values configure exactly what an empty environment does", () => {
    expect(loadConfig(values)).toEqual(loadConfig({}));
  });
});

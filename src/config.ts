// Every environment variable the server reads is parsed and validated here,
// once, at start-up. An invalid value stops the start with a one-line message
// naming the variable (see ConfigError).
import os from "node:os";
import path from "node:path";
import { z } from "zod";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** "7d", "12h", "30m", "45s", "500ms" or a plain number of seconds. */
export function parseDuration(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"] ?? 1000;
  return Math.round(amount * unitMs);
}

const booleanFlag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ["true", "false", "1", "0", "yes", "no"].includes(v), "must be true or false")
  .transform((v) => v === "true" || v === "1" || v === "yes");

const durationMs = z
  .string()
  .refine((v) => parseDuration(v) !== undefined, "must be a duration such as 7d, 12h, 30m or 45s")
  .transform((v) => parseDuration(v) as number);

// The size syntax of express.json's `limit` (the `bytes` package): a number
// of bytes, or a number with kb, mb, gb, tb or pb (powers of 1024).
const BYTE_SIZE = /^(\d+(?:\.\d+)?) *(b|kb|mb|gb|tb|pb)?$/i;
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4, pb: 1024 ** 5 };

/** A size such as "100kb" in bytes; undefined when it is not a size. */
export function byteSize(setting: string): number | undefined {
  const match = BYTE_SIZE.exec(setting.trim());
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * (BYTE_UNITS[(match[2] ?? "b").toLowerCase()] ?? 1));
}

const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().nonnegative();

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  HOST: z.string().min(1).default("0.0.0.0"),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  DATABASE_URL: z
    .string()
    .refine((v) => /^postgres(ql)?:\/\//.test(v), "must start with postgres:// or postgresql://")
    .optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  DATABASE_POOL_MAX: positiveInt.default(10),
  DATABASE_CONNECT_TIMEOUT: durationMs.prefault("5s"),
  DATABASE_QUERY_TIMEOUT: durationMs.prefault("5s"),
  MIGRATE_ON_START: booleanFlag.default(true),
  JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  JWT_TTL: durationMs.refine((ms) => ms >= 1000, "must be at least 1s").prefault("7d"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  INTROSPECTION: booleanFlag.optional(),
  // Which policy rule said no, in the error (extensions.policy).
  POLICY_EXPLAIN: booleanFlag.optional(),
  GRAPHQL_QUERY_STATS: booleanFlag.default(false),
  REDIS_URL: z
    .string()
    .refine((v) => /^rediss?:\/\//.test(v), "must start with redis:// or rediss://")
    .optional(),
  // Zero would prune every event as soon as it is written.
  EVENT_RETENTION: durationMs.refine((ms) => ms >= 1000, "must be at least 1s").prefault("7d"),
  // How often each instance re-reads the event log even without a bus wake-up.
  EVENT_POLL_INTERVAL: durationMs.refine((ms) => ms >= 10, "must be at least 10ms").prefault("1s"),
  WS_MAX_SUBSCRIPTIONS: positiveInt.default(100),
  WS_KEEPALIVE: durationMs.prefault("12s"),
  WS_CONNECTION_INIT_TIMEOUT: durationMs.prefault("3s"),
  // Caps on sockets (src/http/websocketAdmission.ts); unset WS_MAX_CONNECTIONS
  // is sized to memory (defaultMaxConnections).
  WS_MAX_CONNECTIONS: positiveInt.optional(),
  WS_MAX_CONNECTIONS_PER_USER: positiveInt.default(20),
  WS_MAX_PENDING_PER_ADDRESS: positiveInt.default(50),
  SHUTDOWN_TIMEOUT: durationMs.prefault("10s"),
  // Serving on, with /ready at 503, before the drain begins (for load balancers).
  SHUTDOWN_DELAY: durationMs.prefault("0s"),
  // Operation limits (src/http/limits.ts); 0 turns a count limit off.
  LIMIT_MAX_DEPTH: nonNegativeInt.default(12),
  LIMIT_MAX_ALIASES: nonNegativeInt.default(30),
  LIMIT_MAX_ROOT_FIELDS: nonNegativeInt.default(20),
  LIMIT_MAX_DIRECTIVES: nonNegativeInt.default(50),
  LIMIT_MAX_TOKENS: nonNegativeInt.default(2000),
  LIMIT_MAX_COST: nonNegativeInt.default(50000),
  // express.json would read anything else as "no limit".
  LIMIT_BODY_SIZE: z
    .string()
    .refine((v) => byteSize(v) !== undefined, "must be a size such as 100kb or 1mb")
    .default("100kb"),
  ALLOW_BATCHED_REQUESTS: booleanFlag.default(false),
  // With batching on: operations in one request (each is also limited on its own).
  LIMIT_MAX_BATCH_SIZE: positiveInt.default(10),
  // HTTP requests to /graphql executing at once, and waiting beyond those (src/http/operationQueue.ts).
  GRAPHQL_MAX_CONCURRENT_OPERATIONS: positiveInt.default(8),
  GRAPHQL_MAX_QUEUED_OPERATIONS: nonNegativeInt.default(1000),
  // Rate limits on credentials (src/modules/auth/rateLimits.ts). Failed
  // log-ins per (account, address) pair and per address share one window; per
  // account across all addresses (looser, see loadConfig) has its own.
  RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: positiveInt.default(10),
  RATE_LIMIT_LOGIN_PER_ADDRESS: positiveInt.default(100),
  RATE_LIMIT_LOGIN_WINDOW: durationMs.prefault("15m"),
  RATE_LIMIT_LOGIN_PER_ACCOUNT: positiveInt.default(100),
  RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: durationMs.prefault("1h"),
  RATE_LIMIT_SIGNUP_PER_ADDRESS: positiveInt.min(100).default(100),
  RATE_LIMIT_SIGNUP_WINDOW: durationMs.prefault("1h"),
  TRUST_PROXY: booleanFlag.default(false),
  METRICS_TOKEN: z.string().min(1).optional(),
  // Set: /metrics is served only on a listener of its own, never on PORT.
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  // Production refuses to start with /metrics open to anyone unless this says so.
  METRICS_PUBLIC: booleanFlag.default(false),
});

export type Env = z.infer<typeof envSchema>;

/** The names of every variable read here; .env.example must list them all (tests/unit/config.test.ts). */
export const ENVIRONMENT_VARIABLES = Object.keys(envSchema.shape) as (keyof Env)[];

export interface Config {
  env: Env["NODE_ENV"];
  isProduction: boolean;
  host: string;
  port: number;
  database:
    | { kind: "pglite"; dataDir: string | undefined }
    | { kind: "postgres"; url: string; poolMax: number; connectTimeoutMs: number; queryTimeoutMs: number };
  dataDir: string;
  migrateOnStart: boolean;
  jwt: { secret: string | undefined; ttlMs: number };
  logLevel: Env["LOG_LEVEL"];
  introspection: boolean;
  /** Policy denials name their rule in extensions.policy (on outside production by default). */
  policyExplain: boolean;
  landingPage: boolean;
  queryStats: boolean;
  redisUrl: string | undefined;
  eventRetentionMs: number;
  eventPollIntervalMs: number;
  websocket: {
    maxSubscriptions: number;
    keepAliveMs: number;
    connectionInitTimeoutMs: number;
    /** Open sockets on this instance, acknowledged or not. */
    maxConnections: number;
    /** Sockets one signed-in user holds at once (counted from connection_init). */
    maxConnectionsPerUser: number;
    /** Sockets from one client address that have not been acknowledged yet. */
    maxPendingPerAddress: number;
  };
  shutdownTimeoutMs: number;
  /** From the signal to the start of the drain: serving on, with /ready at 503 (≤ timeout − 2 s). */
  shutdownDelayMs: number;
  limits: {
    maxDepth: number;
    maxAliases: number;
    maxRootFields: number;
    maxDirectives: number;
    maxTokens: number;
    maxCost: number;
    /** LIMIT_BODY_SIZE as written, for messages. */
    bodySize: string;
    /** The same in bytes: the one bound for HTTP bodies and WebSocket messages. */
    bodySizeBytes: number;
    allowBatchedRequests: boolean;
    /** Operations in one batched HTTP request, when batching is on. */
    maxBatchSize: number;
  };
  /** HTTP requests to /graphql executing at once; more wait in a queue of at most maxQueued (src/http/operationQueue.ts). */
  operationQueue: { maxConcurrent: number; maxQueued: number };
  rateLimits: {
    /** Failed log-ins per (account, client address) pair per loginWindowMs. */
    loginPerAccountAddress: number;
    /** Failed log-ins per client address, across accounts, per loginWindowMs. */
    loginPerAddress: number;
    loginWindowMs: number;
    /** Failed log-ins per account, across addresses, per loginAccountWindowMs. */
    loginPerAccount: number;
    loginAccountWindowMs: number;
    signUpPerAddress: number;
    signUpWindowMs: number;
  };
  trustProxy: boolean;
  metrics: {
    /** When set, /metrics requires `Authorization: Bearer <token>`. */
    token: string | undefined;
    /** When set, /metrics is served here and not on the public port. */
    listener: { host: string; port: number } | undefined;
  };
}

/**
 * Bytes one WebSocket may cost the server, rounded up from the worst seen:
 * bench:subscriptions measured 44–90 KB per subscriber (a socket with one
 * subscription); an idle socket costs far less.
 */
export const BYTES_PER_SOCKET = 100 * 1024;
/** The default cap never goes below this (one instance's file descriptors are the next bound). */
export const MIN_DEFAULT_MAX_CONNECTIONS = 20_000;

/**
 * WS_MAX_CONNECTIONS when unset: half the memory (the container's limit when
 * there is one, else the machine's) at BYTES_PER_SOCKET each, and at least
 * MIN_DEFAULT_MAX_CONNECTIONS.
 */
export function defaultMaxConnections(memoryBytes = availableMemory()): number {
  return Math.max(MIN_DEFAULT_MAX_CONNECTIONS, Math.floor(memoryBytes / 2 / BYTES_PER_SOCKET));
}

function availableMemory(): number {
  const total = os.totalmem();
  // A cgroup limit, where Node can read one; 0 or a huge number means none.
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < total ? constrained : total;
}

/** Parses the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in most .env tooling.
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "environment");
    throw new ConfigError(`Invalid ${variable}: ${issue?.message ?? "invalid value"}.`);
  }
  const env = parsed.data;
  const isProduction = env.NODE_ENV === "production";
  if (isProduction && !env.JWT_SECRET) {
    throw new ConfigError("Invalid JWT_SECRET: required when NODE_ENV=production.");
  }
  // The drain needs time of its own after the delay: it cuts what is left a
  // second before SHUTDOWN_TIMEOUT, and gets at least a second before that.
  if (env.SHUTDOWN_DELAY > 0 && env.SHUTDOWN_DELAY + 2000 > env.SHUTDOWN_TIMEOUT) {
    throw new ConfigError("Invalid SHUTDOWN_DELAY: must be at least 2s shorter than SHUTDOWN_TIMEOUT.");
  }
  // At or below the pair's limit, one address could lock the account for
  // everyone again. This variable once meant what the pair's limit means now
  // (10 per 15m): an old setting of it fails here instead of locking accounts.
  if (env.RATE_LIMIT_LOGIN_PER_ACCOUNT <= env.RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS) {
    throw new ConfigError(
      `Invalid RATE_LIMIT_LOGIN_PER_ACCOUNT: must be greater than RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS (${env.RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS}); it counts failed log-ins from all addresses together.`,
    );
  }
  const metricsListener = env.METRICS_PORT === undefined ? undefined : { host: env.METRICS_HOST, port: env.METRICS_PORT };
  if (metricsListener && metricsListener.port !== 0 && metricsListener.port === env.PORT) {
    throw new ConfigError("Invalid METRICS_PORT: must differ from PORT (the metrics listener is not the public one).");
  }
  if (metricsListener && env.METRICS_PUBLIC) {
    throw new ConfigError("Invalid METRICS_PUBLIC: METRICS_PORT moves /metrics off the public port; set one or the other.");
  }
  // Per-operation counts tell anyone how busy the tenants are.
  if (isProduction && !env.METRICS_TOKEN && !metricsListener && !env.METRICS_PUBLIC) {
    throw new ConfigError(
      "Invalid METRICS_TOKEN: required when NODE_ENV=production, unless METRICS_PORT serves /metrics on a listener of its own or METRICS_PUBLIC=true.",
    );
  }
  const dataDir = path.resolve(env.DATA_DIR);
  return {
    env: env.NODE_ENV,
    isProduction,
    host: env.HOST,
    port: env.PORT,
    database: env.DATABASE_URL
      ? {
          kind: "postgres",
          url: env.DATABASE_URL,
          poolMax: env.DATABASE_POOL_MAX,
          connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT,
          queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT,
        }
      : { kind: "pglite", dataDir: path.join(dataDir, "pglite") },
    dataDir,
    migrateOnStart: env.MIGRATE_ON_START,
    jwt: { secret: env.JWT_SECRET, ttlMs: env.JWT_TTL },
    logLevel: env.LOG_LEVEL,
    introspection: env.INTROSPECTION ?? !isProduction,
    policyExplain: env.POLICY_EXPLAIN ?? !isProduction,
    landingPage: !isProduction,
    queryStats: env.GRAPHQL_QUERY_STATS,
    redisUrl: env.REDIS_URL,
    eventRetentionMs: env.EVENT_RETENTION,
    eventPollIntervalMs: env.EVENT_POLL_INTERVAL,
    websocket: {
      maxSubscriptions: env.WS_MAX_SUBSCRIPTIONS,
      keepAliveMs: env.WS_KEEPALIVE,
      connectionInitTimeoutMs: env.WS_CONNECTION_INIT_TIMEOUT,
      maxConnections: env.WS_MAX_CONNECTIONS ?? defaultMaxConnections(),
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
      maxPendingPerAddress: env.WS_MAX_PENDING_PER_ADDRESS,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT,
    shutdownDelayMs: env.SHUTDOWN_DELAY,
    limits: {
      maxDepth: env.LIMIT_MAX_DEPTH,
      maxAliases: env.LIMIT_MAX_ALIASES,
      maxRootFields: env.LIMIT_MAX_ROOT_FIELDS,
      maxDirectives: env.LIMIT_MAX_DIRECTIVES,
      maxTokens: env.LIMIT_MAX_TOKENS,
      maxCost: env.LIMIT_MAX_COST,
      bodySize: env.LIMIT_BODY_SIZE,
      bodySizeBytes: byteSize(env.LIMIT_BODY_SIZE) as number,
      allowBatchedRequests: env.ALLOW_BATCHED_REQUESTS,
      maxBatchSize: env.LIMIT_MAX_BATCH_SIZE,
    },
    operationQueue: { maxConcurrent: env.GRAPHQL_MAX_CONCURRENT_OPERATIONS, maxQueued: env.GRAPHQL_MAX_QUEUED_OPERATIONS },
    rateLimits: {
      loginPerAccountAddress: env.RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS,
      loginPerAddress: env.RATE_LIMIT_LOGIN_PER_ADDRESS,
      loginWindowMs: env.RATE_LIMIT_LOGIN_WINDOW,
      loginPerAccount: env.RATE_LIMIT_LOGIN_PER_ACCOUNT,
      loginAccountWindowMs: env.RATE_LIMIT_LOGIN_ACCOUNT_WINDOW,
      signUpPerAddress: env.RATE_LIMIT_SIGNUP_PER_ADDRESS,
      signUpWindowMs: env.RATE_LIMIT_SIGNUP_WINDOW,
    },
    trustProxy: env.TRUST_PROXY,
    metrics: { token: env.METRICS_TOKEN, listener: metricsListener },
  };
}

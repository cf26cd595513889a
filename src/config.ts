// Every environment variable the server reads is parsed and validated here,
// once, at start-up. An invalid value stops the start with a one-line message
// naming the variable (see ConfigError).
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { DEVELOPMENT_ORIGINS, parseOriginList } from "./http/origins.js";

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

// JOBS=on|off (true/false and the like too).
const onOff = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ["on", "off", "true", "false", "1", "0", "yes", "no"].includes(v), "must be on or off")
  .transform((v) => ["on", "true", "1", "yes"].includes(v));

/** "5s,30s,2m": the delays before the 2nd, 3rd, ... attempt; undefined when not such a list. */
export function parseDurationList(value: string): number[] | undefined {
  const delays = value.split(",").map((item) => parseDuration(item));
  return delays.length > 0 && delays.every((ms) => ms !== undefined && ms >= 0) ? (delays as number[]) : undefined;
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
  // The access token's lifetime; a session lives on through refreshSession.
  JWT_TTL: durationMs.refine((ms) => ms >= 1000, "must be at least 1s").prefault("15m"),
  // How long a session may go unrefreshed before it expires.
  REFRESH_TOKEN_TTL: durationMs.refine((ms) => ms >= 1000, "must be at least 1s").prefault("30d"),
  // How long an instance trusts that a session is still active before asking
  // the database again (sessionCheck.ts). At most 4s: an ended session must
  // be refused everywhere within 5s even if the bus message announcing it is lost.
  SESSION_CACHE_TTL: durationMs.refine((ms) => ms <= 4000, "must be at most 4s").prefault("2s"),
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
  // A subscription with more events than this waiting to be sent (its client
  // reads too slowly) closes its socket with 4413 rather than have them
  // buffered without bound (src/realtime/tailer.ts).
  WS_MAX_PENDING_EVENTS: positiveInt.default(1000),
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
  // Browser origins allowed over CORS and at the WebSocket upgrade
  // (src/http/origins.ts); unset: local dev servers outside production, none in it.
  CORS_ORIGINS: z
    .string()
    .transform((value, ctx) => {
      try {
        return parseOriginList(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  // The GraphQL IDE served to a browser at GET /graphql; unset: graphiql outside production, none in it.
  EXPLORER: z.enum(["graphiql", "sandbox", "none"]).optional(),
  // Background jobs (src/jobs): off on API instances when `npm run worker` runs them.
  JOBS: onOff.default(true),
  // Jobs one instance runs at once (webhook deliveries mostly).
  JOBS_CONCURRENCY: positiveInt.default(10),
  // How often an idle worker asks the queue for jobs (pg-boss's minimum is 500ms).
  JOBS_POLL_INTERVAL: durationMs.refine((ms) => ms >= 500, "must be at least 500ms").prefault("1s"),
  // Webhooks (src/webhooks, docs/api/WEBHOOKS.md).
  WEBHOOK_TIMEOUT: durationMs.refine((ms) => ms >= 100, "must be at least 100ms").prefault("10s"),
  WEBHOOK_MAX_ATTEMPTS: positiveInt.max(100).default(8),
  WEBHOOK_DISABLE_AFTER: positiveInt.default(5),
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .refine((v) => parseDurationList(v) !== undefined, "must be a comma-separated list of durations such as 5s,30s,2m")
    .default("5s,30s,2m,10m,30m,1h,2h,4h"),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: booleanFlag.default(false),
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
  sessions: {
    /** A session not refreshed for this long has expired. */
    refreshTtlMs: number;
    /** How long an active session is taken on trust before the database is asked again (0: every request). */
    cacheTtlMs: number;
  };
  logLevel: Env["LOG_LEVEL"];
  introspection: boolean;
  /** Policy denials name their rule in extensions.policy (on outside production by default). */
  policyExplain: boolean;
  /** What a browser gets at GET /graphql: the bundled GraphiQL, Apollo Sandbox (from its CDN), or nothing. */
  explorer: "graphiql" | "sandbox" | "none";
  /** Origins (entries as parseOriginList normalises them) allowed over CORS and at the WebSocket upgrade. */
  cors: { origins: readonly string[] };
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
    /** Events one subscription may have waiting to be sent before its socket is closed as a slow consumer (4413). */
    maxPendingEvents: number;
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
  jobs: {
    /** Whether this instance runs background jobs (JOBS); `npm run worker` always does. */
    enabled: boolean;
    concurrency: number;
    pollIntervalMs: number;
  };
  webhooks: {
    timeoutMs: number;
    maxAttempts: number;
    disableAfter: number;
    /** Delay before attempt n+1 is retrySchedule[n-1] (the last entry once past the end), with jitter. */
    retryScheduleMs: number[];
    allowPrivateNetworks: boolean;
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
function parseEnvironment<Shape extends z.ZodRawShape>(schema: z.ZodObject<Shape>, environment: NodeJS.ProcessEnv) {
  // Empty strings mean "unset", as in most .env tooling.
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "environment");
    throw new ConfigError(`Invalid ${variable}: ${issue?.message ?? "invalid value"}.`);
  }
  return parsed.data;
}

const databaseEnvSchema = envSchema.pick({
  DATABASE_URL: true,
  DATA_DIR: true,
  DATABASE_POOL_MAX: true,
  DATABASE_CONNECT_TIMEOUT: true,
  DATABASE_QUERY_TIMEOUT: true,
});

function databaseSelection(env: z.infer<typeof databaseEnvSchema>): Config["database"] {
  return env.DATABASE_URL
    ? {
        kind: "postgres",
        url: env.DATABASE_URL,
        poolMax: env.DATABASE_POOL_MAX,
        connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT,
        queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT,
      }
    : { kind: "pglite", dataDir: path.join(path.resolve(env.DATA_DIR), "pglite") };
}

/**
 * Only which database to use (DATABASE_URL, DATA_DIR and the pool settings),
 * for tools such as `npm run db:migrate` that need nothing else: they must not
 * demand a server's secrets.
 */
export function loadDatabaseConfig(environment: NodeJS.ProcessEnv = process.env): Config["database"] {
  return databaseSelection(parseEnvironment(databaseEnvSchema, environment));
}

export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const env = parseEnvironment(envSchema, environment);
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
  // An access token must never outlive the session that backs it.
  if (env.REFRESH_TOKEN_TTL <= env.JWT_TTL) {
    throw new ConfigError("Invalid REFRESH_TOKEN_TTL: must be longer than JWT_TTL (an access token cannot outlive its session).");
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
    database: databaseSelection(env),
    dataDir,
    migrateOnStart: env.MIGRATE_ON_START,
    jwt: { secret: env.JWT_SECRET, ttlMs: env.JWT_TTL },
    sessions: { refreshTtlMs: env.REFRESH_TOKEN_TTL, cacheTtlMs: env.SESSION_CACHE_TTL },
    logLevel: env.LOG_LEVEL,
    introspection: env.INTROSPECTION ?? !isProduction,
    policyExplain: env.POLICY_EXPLAIN ?? !isProduction,
    explorer: env.EXPLORER ?? (isProduction ? "none" : "graphiql"),
    cors: { origins: env.CORS_ORIGINS ?? (isProduction ? [] : DEVELOPMENT_ORIGINS) },
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
      maxPendingEvents: env.WS_MAX_PENDING_EVENTS,
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
    jobs: { enabled: env.JOBS, concurrency: env.JOBS_CONCURRENCY, pollIntervalMs: env.JOBS_POLL_INTERVAL },
    webhooks: {
      timeoutMs: env.WEBHOOK_TIMEOUT,
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      disableAfter: env.WEBHOOK_DISABLE_AFTER,
      retryScheduleMs: parseDurationList(env.WEBHOOK_RETRY_SCHEDULE) as number[],
      allowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    },
  };
}

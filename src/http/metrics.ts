// Prometheus metrics (prom-client), served at GET /metrics. Each server
// instance keeps its own registry (tests run several in one process); the
// process metrics (CPU, memory, event loop, GC) belong to the process and are
// collected once into a registry of their own.
//
// Operation names are chosen by clients, so as a label they are checked and
// capped: a client sending random names cannot make the series grow without
// bound (see operationLabel).
import { createHash, timingSafeEqual } from "node:crypto";
import { Router } from "express";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { JobObserver } from "../jobs/queue.js";
import type { FanOutObserver } from "../realtime/multiplex.js";
import type { WebhookObserver } from "../webhooks/deliver.js";
import type { OperationObserver } from "./operationPlugin.js";
import type { WebSocketObserver } from "./websocket.js";

export const METRICS_PATH = "/metrics";
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;

let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface Metrics {
  readonly registry: Registry;
  readonly operations: OperationObserver;
  readonly webSockets: WebSocketObserver;
  /** Events this instance committed and handed to the pub/sub. */
  eventsPublished(count: number): void;
  readonly jobs: JobObserver;
  readonly webhooks: WebhookObserver;
  /** Each event's direct fan-out, timed into realtime_fanout_duration_seconds. */
  readonly fanOut: FanOutObserver;
  /** Where the realtime_fanout_* counters read the batched delivery decisions' totals from, at each scrape. */
  watchFanOut(read: () => { events: number; sqlStatements: number }): void;
  /** Where db_statements_total reads the database client's statement count from, at each scrape. */
  watchStatements(read: () => number): void;
  /** Where jobs_queue_depth reads the waiting jobs per kind from, at each scrape. */
  watchQueueDepth(read: () => Promise<Record<string, number>>): void;
  /** The Prometheus text of this instance and of the process. */
  render(): Promise<string>;
  readonly contentType: string;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const operationsTotal = new Counter({
    name: "graphql_operations_total",
    help: "GraphQL operations over HTTP, by operation name, type and outcome (success or error).",
    labelNames: ["operation", "type", "outcome"] as const,
    registers: [registry],
  });
  const errorsTotal = new Counter({
    name: "graphql_errors_total",
    help: "Errors in GraphQL responses over HTTP and WebSocket, by extensions.code.",
    labelNames: ["code"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "graphql_operation_duration_seconds",
    help: "Time from the start of a GraphQL request to its response, by operation name and type.",
    labelNames: ["operation", "type"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const sqlStatements = new Histogram({
    name: "graphql_operation_sql_statements",
    help: "SQL statements sent to the database by one GraphQL operation, by operation name.",
    labelNames: ["operation"] as const,
    buckets: [0, 1, 2, 3, 5, 10, 20, 50, 100, 250],
    registers: [registry],
  });
  const wsOperationsTotal = new Counter({
    name: "graphql_ws_operations_total",
    help: "GraphQL operations over WebSocket that ended, by operation name, type and outcome (success or error).",
    labelNames: ["operation", "type", "outcome"] as const,
    registers: [registry],
  });
  const wsConnections = new Gauge({
    name: "graphql_ws_connections",
    help: "Open GraphQL WebSocket connections.",
    registers: [registry],
  });
  const wsRefused = new Counter({
    name: "graphql_ws_connections_refused_total",
    help: "WebSocket connections refused by a connection cap: instance (WS_MAX_CONNECTIONS), pending_per_address (WS_MAX_PENDING_PER_ADDRESS), per_user (WS_MAX_CONNECTIONS_PER_USER).",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const wsSubscriptions = new Gauge({
    name: "graphql_ws_subscriptions",
    help: "Active operations (mostly subscriptions) on GraphQL WebSocket connections.",
    registers: [registry],
  });
  const published = new Counter({
    name: "realtime_events_published_total",
    help: "Change events committed by this instance and published to the pub/sub.",
    registers: [registry],
  });
  const delivered = new Counter({
    name: "realtime_events_delivered_total",
    help: "Subscription events sent to WebSocket clients by this instance.",
    registers: [registry],
  });

  // Totals kept by the realtime module itself (it counts them per decision,
  // outside any request): read at each scrape.
  let readFanOut: (() => { events: number; sqlStatements: number }) | undefined;
  const fanOutCounter = (name: string, help: string, pick: (totals: { events: number; sqlStatements: number }) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        if (!readFanOut) return;
        this.reset();
        this.inc(pick(readFanOut()));
      },
    });
  fanOutCounter(
    "realtime_fanout_events_total",
    "Live events decided for their local subscribers at once (one decision per event, whatever the number of subscribers).",
    (totals) => totals.events,
  );
  fanOutCounter(
    "realtime_fanout_sql_statements_total",
    "SQL statements those decisions sent: divided by realtime_fanout_events_total, the statements per event.",
    (totals) => totals.sqlStatements,
  );

  let readStatements: (() => number) | undefined;
  new Counter({
    name: "db_statements_total",
    help: "SQL statements this instance's database client has sent, whoever sent them: requests, realtime decisions and checks, session reads, the event log (the job queue's own connection not included).",
    registers: [registry],
    collect() {
      if (!readStatements) return;
      this.reset();
      this.inc(readStatements());
    },
  });

  const fanOutDuration = new Histogram({
    name: "realtime_fanout_duration_seconds",
    help: "From a live event handed to the direct fan-out (committed, and read by this instance's tailer) to its last frame written to a local subscriber's socket: what the last of them waited here.",
    // From one subscriber (about a millisecond) to tens of thousands.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const fanOut: FanOutObserver = {
    onFanOut: (report) => fanOutDuration.observe((report.decideMs + report.sendMs) / 1000),
  };

  let readQueueDepth: (() => Promise<Record<string, number>>) | undefined;
  new Gauge({
    name: "jobs_queue_depth",
    help: "Background jobs waiting to run (created or to be retried), by kind; the queue is shared by every instance.",
    labelNames: ["kind"] as const,
    registers: [registry],
    async collect() {
      if (!readQueueDepth) return;
      this.reset();
      // A scrape while the database is away shows no depth rather than failing.
      const depths = await readQueueDepth().catch(() => ({}));
      for (const [kind, depth] of Object.entries(depths)) this.set({ kind }, depth);
    },
  });
  const jobDuration = new Histogram({
    name: "jobs_duration_seconds",
    help: "Time a background job ran on this instance, by kind and outcome (completed, or failed and handed back to the queue).",
    labelNames: ["kind", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const webhookAttempts = new Counter({
    name: "webhook_delivery_attempts_total",
    help: "Webhook delivery attempts made by this instance, by outcome (succeeded: a 2xx; failed: anything else).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const webhookDeliveries = new Counter({
    name: "webhook_deliveries_total",
    help: "Webhook deliveries that reached their end on this instance, by outcome (succeeded, failed after the last attempt or on a 410, dropped: not readable by the webhook's creator).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const webhookLag = new Histogram({
    name: "webhook_delivery_lag_seconds",
    help: "From an event's commit to the 2xx of its webhook delivery.",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
    registers: [registry],
  });
  for (const outcome of ["succeeded", "failed"] as const) webhookAttempts.inc({ outcome }, 0);
  for (const outcome of ["succeeded", "failed", "dropped"] as const) webhookDeliveries.inc({ outcome }, 0);

  // Every reason has a series from the start, so rate() sees the first refusal.
  for (const reason of ["instance", "pending_per_address", "per_user"] as const) wsRefused.inc({ reason }, 0);

  const knownNames = new Set<string>();
  const operationLabel = (name: string): string => {
    if (!OPERATION_NAME.test(name)) return "invalid";
    if (knownNames.has(name)) return name;
    if (knownNames.size >= MAX_OPERATION_NAMES) return "other";
    knownNames.add(name);
    return name;
  };

  return {
    registry,
    contentType: registry.contentType,
    fanOut,
    operations: {
      onOperation(report) {
        const operation = operationLabel(report.operationName);
        operationsTotal.inc({ operation, type: report.operationType, outcome: report.outcome });
        for (const code of report.errorCodes) errorsTotal.inc({ code });
        duration.observe({ operation, type: report.operationType }, report.durationMs / 1000);
        sqlStatements.observe({ operation }, report.sqlStatements);
      },
    },
    webSockets: {
      onConnectionChange: (delta) => wsConnections.inc(delta),
      onConnectionRefused: (reason) => wsRefused.inc({ reason }),
      onSubscriptionChange: (delta) => wsSubscriptions.inc(delta),
      onEventDelivered: () => delivered.inc(),
      onErrorsSent(codes) {
        for (const code of codes) errorsTotal.inc({ code });
      },
      onOperation(report) {
        wsOperationsTotal.inc({ operation: operationLabel(report.operationName), type: report.operationType, outcome: report.outcome });
      },
    },
    eventsPublished: (count) => published.inc(count),
    jobs: {
      onJobFinished: (kind, outcome, seconds) => jobDuration.observe({ kind, outcome }, seconds),
    },
    webhooks: {
      onAttempt: (outcome) => webhookAttempts.inc({ outcome }),
      onDeliveryEnded: (outcome) => webhookDeliveries.inc({ outcome }),
      onDelivered: (lagSeconds) => webhookLag.observe(lagSeconds),
    },
    watchQueueDepth(read) {
      readQueueDepth = read;
    },
    watchFanOut(read) {
      readFanOut = read;
    },
    watchStatements(read) {
      readStatements = read;
    },
    async render() {
      return `${await registry.metrics()}\n${await processMetrics().metrics()}`;
    },
  };
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/** GET /metrics; with a token, only for `Authorization: Bearer <token>`. */
export function metricsRoute(metrics: Metrics, token: string | undefined): Router {
  const router = Router();
  const expected = token === undefined ? undefined : digest(token);
  router.get(METRICS_PATH, async (req, res) => {
    if (expected) {
      const given = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
      // Compared as digests: equal lengths, and in constant time.
      if (!given || !timingSafeEqual(digest(given), expected)) {
        res.setHeader("www-authenticate", 'Bearer realm="metrics"');
        res.status(401).json({ errors: [{ message: "A valid metrics token is required.", extensions: { code: "UNAUTHENTICATED" } }] });
        return;
      }
    }
    res.setHeader("content-type", metrics.contentType);
    res.setHeader("cache-control", "no-store");
    res.send(await metrics.render());
  });
  return router;
}

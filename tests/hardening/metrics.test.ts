// GET /metrics, read the way Prometheus reads it (text exposition format),
// after real traffic: HTTP operations, real graphql-ws connections and
// subscriptions, realtime events; METRICS_TOKEN; label cardinality.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUp, startTestServer, uniqueEmail, type TestServer } from "../helpers/server.js";
import { api, connect, eventually, TODO_CHANGED, untilLive, type TodoChanged } from "../realtime/helpers.js";
import { post } from "./ops-support.js";
import { RawSocket } from "./wsProtocol-raw.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (one sample per line, # lines are metadata). */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

async function scrape(server: Pick<TestServer, "baseUrl">, token?: string) {
  const response = await fetch(`${server.baseUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, v]) => s.labels[key] === v))
    .reduce((sum, s) => sum + s.value, 0);

const has = (samples: Sample[], name: string) => samples.some((s) => s.name === name);

describe("GET /metrics", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it("counts operations by name, type and outcome, with latency and SQL histograms and error codes", async () => {
    const user = await signUp(server);
    for (let i = 0; i < 3; i++) {
      await post(server.url, `query MetricsMe { me { id } }`, undefined, { authorization: `Bearer ${user.token}` });
    }
    await post(server.url, `mutation MetricsBadLogIn { logIn(email: "${uniqueEmail()}", password: "wrong-password") { token } }`);

    const { samples, types } = await scrape(server);
    expect(types.get("graphql_operations_total")).toBe("counter");
    expect(value(samples, "graphql_operations_total", { operation: "MetricsMe", type: "query", outcome: "success" })).toBe(3);
    expect(value(samples, "graphql_operations_total", { operation: "MetricsBadLogIn", type: "mutation", outcome: "error" })).toBe(1);
    expect(value(samples, "graphql_errors_total", { code: "UNAUTHENTICATED" })).toBeGreaterThanOrEqual(1);

    expect(types.get("graphql_operation_duration_seconds")).toBe("histogram");
    expect(value(samples, "graphql_operation_duration_seconds_count", { operation: "MetricsMe", type: "query" })).toBe(3);
    expect(value(samples, "graphql_operation_duration_seconds_bucket", { operation: "MetricsMe", le: "+Inf" })).toBe(3);
    expect(value(samples, "graphql_operation_duration_seconds_sum", { operation: "MetricsMe" })).toBeGreaterThan(0);

    expect(types.get("graphql_operation_sql_statements")).toBe("histogram");
    expect(value(samples, "graphql_operation_sql_statements_count", { operation: "MetricsMe" })).toBe(3);
    // `me` reads the user: at least one statement per operation.
    expect(value(samples, "graphql_operation_sql_statements_sum", { operation: "MetricsMe" })).toBeGreaterThanOrEqual(3);
    expect(value(samples, "graphql_operation_sql_statements_bucket", { operation: "MetricsMe", le: "0" })).toBe(0);
  });

  it("moves the WebSocket gauges with real connections and subscriptions, and counts events published and delivered", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const spaceId = await owned.createSpace();
    const list = await owned.createList(spaceId, "Metrics list");
    const before = (await scrape(server)).samples;
    expect(value(before, "graphql_ws_connections")).toBe(0);
    expect(value(before, "graphql_ws_subscriptions")).toBe(0);

    const first = connect(server, user.token);
    const second = connect(server, user.token);
    try {
      const stream = first.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id });
      await untilLive(stream, () => owned.createTodo(list.id, "probe"), (item) => item.todoChanged.todo?.title === "probe");
      const secondStream = second.subscribe<TodoChanged>(TODO_CHANGED, { listId: list.id });
      let lastProbeId = "";
      const probe = async () => {
        lastProbeId = (await owned.createTodo(list.id, "probe-2")).id;
      };
      await untilLive(secondStream, probe, (item) => item.todoChanged.todo?.title === "probe-2");
      // untilLive may have written more than one probe, and may return on an
      // early one: wait until both streams have the last, so no probe is still
      // being delivered when the baseline is read (events arrive in order).
      const hasLastProbe = (received: TodoChanged[]) => received.some((item) => item.todoChanged.todoId === lastProbeId);
      await eventually(async () => hasLastProbe(stream.received) && hasLastProbe(secondStream.received), "the last probe on both streams");

      const during = (await scrape(server)).samples;
      expect(value(during, "graphql_ws_connections")).toBe(2);
      expect(value(during, "graphql_ws_subscriptions")).toBe(2);

      const todo = await owned.createTodo(list.id, "counted");
      await stream.until((item) => item.todoChanged.todoId === todo.id);
      await secondStream.until((item) => item.todoChanged.todoId === todo.id);
      const after = (await scrape(server)).samples;
      expect(value(after, "realtime_events_published_total") - value(during, "realtime_events_published_total")).toBe(1);
      expect(value(after, "realtime_events_delivered_total") - value(during, "realtime_events_delivered_total")).toBe(2);

      stream.close();
      await eventually(async () => value((await scrape(server)).samples, "graphql_ws_subscriptions") === 1, "one subscription left");
    } finally {
      await first.dispose();
      await second.dispose();
    }
    await eventually(async () => {
      const samples = (await scrape(server)).samples;
      return value(samples, "graphql_ws_connections") === 0 && value(samples, "graphql_ws_subscriptions") === 0;
    }, "gauges back to zero");
  });

  it("counts WebSocket operations by name, type and outcome when they end, with their error codes", async () => {
    const user = await signUp(server);
    const owned = api(server, user.token);
    const list = await owned.createList(await owned.createSpace(), "Counted over WebSocket");
    const before = (await scrape(server)).samples;
    const connection = connect(server, user.token);
    try {
      await connection.subscribe(`query WsMetricsMe { me { id } }`).next();
      await connection.subscribe(`query WsMetricsMe { me { id } }`).next();
      expect((await connection.subscribe(`query WsMetricsBad { me { noSuchField } }`).failure()).code).toBe("GRAPHQL_VALIDATION_FAILED");
      const stream = connection.subscribe<TodoChanged>(
        `subscription WsMetricsTodos($listId: ID!) { todoChanged(listId: $listId) { todoId } }`,
        { listId: list.id },
      );
      await untilLive(stream, () => owned.createTodo(list.id, "probe"), () => true);
      const open = (await scrape(server)).samples;
      // Counted when it ends, not while it runs.
      expect(value(open, "graphql_ws_operations_total", { operation: "WsMetricsTodos" })).toBe(0);
      stream.close();
      await eventually(
        async () => value((await scrape(server)).samples, "graphql_ws_operations_total", { operation: "WsMetricsTodos" }) === 1,
        "the subscription counted",
      );
    } finally {
      await connection.dispose();
    }
    const { samples, types } = await scrape(server);
    const added = (name: string, labels: Record<string, string>) => value(samples, name, labels) - value(before, name, labels);
    expect(types.get("graphql_ws_operations_total")).toBe("counter");
    expect(added("graphql_ws_operations_total", { operation: "WsMetricsMe", type: "query", outcome: "success" })).toBe(2);
    expect(added("graphql_ws_operations_total", { operation: "WsMetricsBad", type: "query", outcome: "error" })).toBe(1);
    expect(added("graphql_ws_operations_total", { operation: "WsMetricsTodos", type: "subscription", outcome: "success" })).toBe(1);
    expect(added("graphql_errors_total", { code: "GRAPHQL_VALIDATION_FAILED" })).toBe(1);
    // The HTTP series are for HTTP only.
    expect(added("graphql_operations_total", { operation: "WsMetricsMe" })).toBe(0);
  });

  it("closes with 4409 when a client reuses an id before its operation has wound down, and leaves no subscription counted", async () => {
    const user = await signUp(server);
    const spaceId = await api(server, user.token).createSpace();
    const gauge = async () => value((await scrape(server)).samples, "graphql_ws_subscriptions");
    const socket = await RawSocket.open(server.wsUrl);
    try {
      await socket.init({ authorization: `Bearer ${user.token}` });
      const subscribe = {
        id: "reused",
        type: "subscribe",
        payload: { query: "subscription ($spaceId: ID!) { spaceActivity(spaceId: $spaceId) { __typename } }", variables: { spaceId } },
      };
      socket.send(subscribe);
      await eventually(async () => (await gauge()) === 1, "the first subscription active");
      // In one breath: graphql-ws frees the id at once, but the first
      // operation is still winding down.
      socket.send({ id: "reused", type: "complete" });
      socket.send(subscribe);
      expect(await socket.closed).toEqual({ code: 4409, reason: "Subscriber for reused already exists" });
      await eventually(async () => (await gauge()) === 0, "no subscription left");
    } finally {
      await socket.close();
    }
  });

  it("includes the process metrics", async () => {
    const { samples } = await scrape(server);
    for (const name of [
      "process_cpu_user_seconds_total",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_version_info",
    ]) {
      expect(has(samples, name), name).toBe(true);
    }
    // Each series once: the process registry and the server's do not overlap.
    const keys = samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("caps the operation-name label: clients cannot grow the series without bound", async () => {
    const names = Array.from({ length: 260 }, (_, i) => `CardinalityProbe${i}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((name) => post(server.url, `query ${name} { me { id } }`)));
    }
    await post(server.url, `query ${"L".repeat(100)} { me { id } }`);
    const { samples } = await scrape(server);
    const labels = new Set(samples.filter((s) => s.name === "graphql_operations_total").map((s) => s.labels.operation));
    expect(labels.size).toBeLessThanOrEqual(202);
    expect(labels.has("other")).toBe(true);
    expect(labels.has("invalid")).toBe(true);
    expect([...labels].some((label) => label!.length > 64)).toBe(false);
    // Nothing is lost: every probe was counted, under its name or under "other".
    const probes = samples
      .filter((s) => s.name === "graphql_operations_total" && /^CardinalityProbe/.test(s.labels.operation ?? ""))
      .reduce((sum, s) => sum + s.value, 0);
    expect(probes + value(samples, "graphql_operations_total", { operation: "other" })).toBe(260);
  });
});

describe("METRICS_TOKEN", () => {
  const token = "metrics-token-0123456789";
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { METRICS_TOKEN: token } });
  });
  afterAll(() => server?.close());

  it("refuses /metrics without the bearer token or with a wrong one, and serves it with the right one", async () => {
    const url = `${server.baseUrl}/metrics`;
    for (const headers of [
      {},
      { authorization: "Bearer wrong-token" },
      { authorization: `Bearer ${token}x` },
      { authorization: `Basic ${Buffer.from(`user:${token}`).toString("base64")}` },
      { authorization: token },
    ] as Record<string, string>[]) {
      const response = await fetch(url, { headers });
      expect(response.status, JSON.stringify(headers)).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await response.json()).toEqual({
        errors: [{ message: "A valid metrics token is required.", extensions: { code: "UNAUTHENTICATED" } }],
      });
    }
    const { samples } = await scrape(server, token);
    expect(has(samples, "process_cpu_user_seconds_total")).toBe(true);
    // The GraphQL endpoint and health do not need it.
    expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
  });
});

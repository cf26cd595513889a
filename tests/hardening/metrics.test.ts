// GET /metrics, read the way Prometheus reads it (text exposition format),
// after real traffic: HTTP operations, real graphql-ws connections and
// subscriptions, realtime events; METRICS_TOKEN; label cardinality.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUp, startTestServer, uniqueEmail, type TestServer } from "../helpers/server.js";
import { api, connect, eventually, untilLive, type TodoChanged } from "../realtime/helpers.js";
import { has, post, scrape, value } from "./ops-support.js";
import { RawSocket } from "./wsProtocol-raw.js";

/** A selection of the event's own row only: caught up, such subscriptions are sent to by the direct fan-out (realtime/multiplex.ts). */
const ROW_ONLY_TODO_CHANGED = `subscription ($listId: ID!) { todoChanged(listId: $listId) { kind todoId todo { id title } } }`;

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

    // Every statement of the client, whoever sent it: at least the operations' own, and moving with each.
    expect(types.get("db_statements_total")).toBe("counter");
    const statements = value(samples, "db_statements_total")!;
    expect(statements).toBeGreaterThanOrEqual(value(samples, "graphql_operation_sql_statements_sum", { operation: "MetricsMe" })!);
    await post(server.url, `query MetricsMe { me { id } }`, undefined, { authorization: `Bearer ${user.token}` });
    expect(value((await scrape(server)).samples, "db_statements_total")).toBeGreaterThan(statements);
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
      const stream = first.subscribe<TodoChanged>(ROW_ONLY_TODO_CHANGED, { listId: list.id });
      await untilLive(stream, () => owned.createTodo(list.id, "probe"), (item) => item.todoChanged.todo?.title === "probe");
      const secondStream = second.subscribe<TodoChanged>(ROW_ONLY_TODO_CHANGED, { listId: list.id });
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
      const { samples: after, types } = await scrape(server);
      expect(value(after, "realtime_events_published_total") - value(during, "realtime_events_published_total")).toBe(1);
      expect(value(after, "realtime_events_delivered_total") - value(during, "realtime_events_delivered_total")).toBe(2);
      // Both subscriptions are caught up and read only the event's row, so the
      // event went out in one direct fan-out, timed from the tailer handing it
      // over to its last frame.
      expect(types.get("realtime_fanout_duration_seconds")).toBe("histogram");
      const fanOuts = (samples: typeof after) => value(samples, "realtime_fanout_duration_seconds_count");
      expect(fanOuts(after) - fanOuts(during)).toBe(1);
      expect(value(after, "realtime_fanout_duration_seconds_bucket", { le: "+Inf" })).toBe(fanOuts(after));
      expect(value(after, "realtime_fanout_duration_seconds_sum")).toBeGreaterThan(value(during, "realtime_fanout_duration_seconds_sum"));

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

describe("METRICS_PORT: /metrics on a listener of its own", () => {
  const token = "metrics-listener-token-0123456789";
  let server: TestServer;
  let withToken: TestServer;
  beforeAll(async () => {
    [server, withToken] = await Promise.all([
      startTestServer({ env: { METRICS_PORT: "0" } }),
      startTestServer({ env: { METRICS_PORT: "0", METRICS_TOKEN: token } }),
    ]);
  });
  afterAll(() => Promise.all([server?.close(), withToken?.close()]));

  it("serves /metrics there, and the public port answers 404 for /metrics like any unknown path", async () => {
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(server.metricsUrl!).port).not.toBe(String(server.port));
    await post(server.url, `query ListenerProbe { me { id } }`);
    const { samples } = await scrape(server, undefined, server.metricsUrl);
    expect(value(samples, "graphql_operations_total", { operation: "ListenerProbe" })).toBe(1);

    const publicMetrics = await fetch(`${server.baseUrl}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect(await publicMetrics.json()).toEqual({
      errors: [{ message: "Nothing is served at GET /metrics. The GraphQL endpoint is /graphql.", extensions: { code: "NOT_FOUND" } }],
    });
    // The public port serves everything else as before.
    expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
    expect((await server.gql(`{ me { id } }`)).status).toBe(200);
  });

  it("serves nothing but /metrics on the metrics listener", async () => {
    const base = server.metricsUrl!.replace(/\/metrics$/, "");
    for (const [method, path] of [
      ["GET", "/graphql"],
      ["POST", "/graphql"],
      ["GET", "/health"],
      ["GET", "/"],
    ] as const) {
      const response = await fetch(`${base}${path}`, { method, headers: { "content-type": "application/json" }, ...(method === "POST" ? { body: "{}" } : {}) });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(await response.json()).toEqual({
        errors: [{ message: `Nothing is served at ${method} ${path}. The metrics endpoint is /metrics.`, extensions: { code: "NOT_FOUND" } }],
      });
    }
  });

  it("still requires METRICS_TOKEN there when it is set", async () => {
    const refused = await fetch(withToken.metricsUrl!);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({
      errors: [{ message: "A valid metrics token is required.", extensions: { code: "UNAUTHENTICATED" } }],
    });
    expect((await fetch(withToken.metricsUrl!, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const { samples } = await scrape(withToken, token, withToken.metricsUrl);
    expect(has(samples, "graphql_ws_connections")).toBe(true);
    expect((await fetch(`${withToken.baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });

  it("is closed when the server closes", async () => {
    const own = await startTestServer({ env: { METRICS_PORT: "0" } });
    const url = own.metricsUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await scrape(own, undefined, url);
    // A keep-alive scraper's idle connection does not hold the close up.
    await own.close();
    await expect(fetch(url)).rejects.toThrow();
  });
});

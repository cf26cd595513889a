// What an operator sees of webhooks and jobs: Prometheus metrics (queue depth
// per kind, job durations and outcomes, deliveries by outcome and their lag),
// one log line per delivery attempt, and a /ready that a failing receiver
// does not touch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { captureLogs, has, scrape, value, type LogSink } from "../hardening/ops-support.js";
import { adminWithSpace, createTodo, createWebhook, deliveriesOf, eventually, startReceiver, webhookEnv, type Receiver } from "./support.js";

let server: TestServer;
let receiver: Receiver;
let logs: LogSink;
let failing = true;
beforeAll(async () => {
  logs = captureLogs("info");
  server = await startTestServer({ logger: logs.logger, env: webhookEnv({ WEBHOOK_RETRY_SCHEDULE: "1s", WEBHOOK_MAX_ATTEMPTS: "5" }) });
  receiver = await startReceiver(() => (failing ? 500 : 200));
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

describe("webhook observability", () => {
  it("metrics, one log line per attempt, and /ready at 200 while the receiver fails", async () => {
    const before = await scrape(server);
    expect(has(before.samples, "jobs_queue_depth")).toBe(true);
    expect(before.types.get("jobs_queue_depth")).toBe("gauge");
    expect(before.types.get("jobs_duration_seconds")).toBe("histogram");
    expect(before.types.get("webhook_delivery_lag_seconds")).toBe("histogram");
    expect(value(before.samples, "webhook_delivery_attempts_total", { outcome: "failed" })).toBe(0);
    expect(before.samples.find((s) => s.name === "jobs_queue_depth" && s.labels.kind === "webhook-delivery")).toBeDefined();

    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, receiver.url);
    await createTodo(server, admin.token, admin.listId, "Watched");
    await eventually(() => receiver.requests.length >= 2, "two failed attempts");
    const ready = await fetch(`${server.baseUrl}/ready`);
    expect(ready.status).toBe(200);
    failing = false;
    const [delivery] = await eventually(async () => {
      const rows = await deliveriesOf(server.database.prisma, hook.id);
      return rows[0]?.status === "SUCCEEDED" ? rows : undefined;
    }, "the delivery to succeed");

    const after = await scrape(server);
    expect(value(after.samples, "webhook_delivery_attempts_total", { outcome: "failed" })).toBe(delivery!.attempts - 1);
    expect(value(after.samples, "webhook_delivery_attempts_total", { outcome: "succeeded" })).toBe(1);
    expect(value(after.samples, "webhook_deliveries_total", { outcome: "succeeded" })).toBe(1);
    expect(value(after.samples, "webhook_delivery_lag_seconds_count")).toBe(1);
    // Failed attempts and all: about one retry delay per failure, at least.
    expect(value(after.samples, "webhook_delivery_lag_seconds_sum")).toBeGreaterThan(0.8 * (delivery!.attempts - 1));
    expect(value(after.samples, "jobs_duration_seconds_count", { kind: "webhook-delivery", outcome: "completed" })).toBeGreaterThanOrEqual(delivery!.attempts);

    const attemptLines = logs.lines().filter((line) => line.msg === "webhook delivery attempt" && line.deliveryId === delivery!.id);
    expect(attemptLines).toHaveLength(delivery!.attempts);
    expect(attemptLines.map((line) => line.attempt)).toEqual(Array.from({ length: delivery!.attempts }, (_, i) => i + 1));
    expect(attemptLines[0]).toMatchObject({ webhookId: hook.id, statusCode: 500, outcome: "failed", error: "HTTP 500." });
    expect(attemptLines.at(-1)).toMatchObject({ statusCode: 200, outcome: "succeeded" });
    // The signing secret is never logged.
    expect(logs.text()).not.toContain("whsec_");
  });
});

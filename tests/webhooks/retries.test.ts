// Failed attempts are retried on the configured schedule (shortened here with
// WEBHOOK_RETRY_SCHEDULE), end FAILED after WEBHOOK_MAX_ATTEMPTS, and
// WEBHOOK_DISABLE_AFTER deliveries in a row ending FAILED deactivate the
// webhook; a 410 deactivates it at once; redeliver starts a new delivery.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { freePort } from "../helpers/process.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import {
  adminWithSpace,
  createTodo,
  createWebhook,
  deliveriesOf,
  eventually,
  startReceiver,
  webhookEnv,
  type Receiver,
  type Answer,
} from "./support.js";

const SCHEDULE_MS = [1000, 2000];
const JITTER = 0.2;
// A due job starts within a poll (500 ms) and a claim; the machine is busy.
const SLACK_MS = 1500;

let server: TestServer;
let prisma: RawPrismaClient;
let receiver: Receiver;
beforeAll(async () => {
  server = await startTestServer({
    env: webhookEnv({
      WEBHOOK_RETRY_SCHEDULE: SCHEDULE_MS.map((ms) => `${ms}ms`).join(","),
      WEBHOOK_MAX_ATTEMPTS: "3",
      WEBHOOK_TIMEOUT: "500ms",
      WEBHOOK_DISABLE_AFTER: "2",
    }),
  });
  prisma = server.database.prisma;
  receiver = await startReceiver((request) => answers.get(request.path)?.(request) ?? 200);
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

/** Per receiver path, how it answers. */
const answers = new Map<string, (request: { body: string }) => Answer>();
let paths = 0;
const path = (answer: (request: { body: string }) => Answer) => {
  const name = `/hook-${++paths}`;
  answers.set(name, answer);
  return { name, url: `http://127.0.0.1:${receiver.port}${name}` };
};

const settled = (webhookId: string, count: number) =>
  eventually(async () => {
    const rows = await deliveriesOf(prisma, webhookId);
    return rows.length >= count && rows.every((row) => row.status !== "PENDING") ? rows : undefined;
  }, `${count} deliveries to settle`, 30_000);

const webhookActive = async (id: string) => (await prisma.webhook.findUniqueOrThrow({ where: { id } })).active;

/** Attempt times at the receiver for the delivery with this webhook-id. */
const attemptTimes = (path: string, deliveryId: string) =>
  receiver.requests.filter((r) => r.path === path && r.headers["webhook-id"] === deliveryId).map((r) => r.at);

function expectSchedule(times: number[]) {
  expect(times).toHaveLength(SCHEDULE_MS.length + 1);
  for (let i = 1; i < times.length; i++) {
    const gap = times[i]! - times[i - 1]!;
    const planned = SCHEDULE_MS[i - 1]!;
    expect(gap, `gap before attempt ${i + 1}`).toBeGreaterThanOrEqual(planned * (1 - JITTER) - 50);
    expect(gap, `gap before attempt ${i + 1}`).toBeLessThanOrEqual(planned * (1 + JITTER) + SLACK_MS);
  }
}

describe("retries", () => {
  it("after a 500: on the schedule, then FAILED after the last attempt", async () => {
    const admin = await adminWithSpace(server);
    const target = path(() => 500);
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    await createTodo(server, admin.token, admin.listId, "Fails");
    const [delivery] = await settled(hook.id, 1);
    expect(delivery).toMatchObject({ status: "FAILED", attempts: 3, lastStatusCode: 500, lastError: "HTTP 500.", nextAttemptAt: null, deliveredAt: null });
    expectSchedule(attemptTimes(target.name, delivery!.id));
    // One delivery in a row failed: below WEBHOOK_DISABLE_AFTER.
    expect(await webhookActive(hook.id)).toBe(true);
  });

  it("after a timeout: on the schedule, with no status code and a lastError that says so", async () => {
    const admin = await adminWithSpace(server);
    const target = path(() => "hang");
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    await createTodo(server, admin.token, admin.listId, "Hangs");
    const [delivery] = await settled(hook.id, 1);
    expect(delivery).toMatchObject({ status: "FAILED", attempts: 3, lastStatusCode: null });
    expect(delivery!.lastError).toMatch(/^Timed out after 500 ms\.$/);
    // Each attempt starts when the previous one timed out plus the delay.
    const times = attemptTimes(target.name, delivery!.id);
    expect(times).toHaveLength(3);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(500 + SCHEDULE_MS[i - 1]! * (1 - JITTER) - 50);
  });

  it("after a refused connection: FAILED after the last attempt, lastError 'Connection refused.'", async () => {
    const admin = await adminWithSpace(server);
    const closedPort = await freePort();
    const hook = await createWebhook(server, admin.token, admin.spaceId, `http://127.0.0.1:${closedPort}/nobody`);
    await createTodo(server, admin.token, admin.listId, "Refused");
    const [delivery] = await settled(hook.id, 1);
    expect(delivery).toMatchObject({ status: "FAILED", attempts: 3, lastStatusCode: null, lastError: "Connection refused." });
  });

  it("succeeds on a later attempt: SUCCEEDED with its attempts counted", async () => {
    const admin = await adminWithSpace(server);
    let calls = 0;
    const target = path(() => (++calls === 1 ? 503 : 204));
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    await createTodo(server, admin.token, admin.listId, "Second time lucky");
    const [delivery] = await settled(hook.id, 1);
    expect(delivery).toMatchObject({ status: "SUCCEEDED", attempts: 2, lastStatusCode: 204, lastError: null, nextAttemptAt: null });
    expect(delivery!.deliveredAt).toBeInstanceOf(Date);
  });

  it("deactivates the webhook after WEBHOOK_DISABLE_AFTER deliveries in a row end FAILED; then nothing more is delivered", async () => {
    const admin = await adminWithSpace(server);
    const target = path(() => 500);
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    await createTodo(server, admin.token, admin.listId, "One");
    await createTodo(server, admin.token, admin.listId, "Two");
    const rows = await settled(hook.id, 2);
    expect(rows.map((row) => row.status)).toEqual(["FAILED", "FAILED"]);
    expect(await webhookActive(hook.id)).toBe(false);
    const seen = receiver.requests.length;
    await createTodo(server, admin.token, admin.listId, "Three");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await deliveriesOf(prisma, hook.id)).toHaveLength(2);
    expect(receiver.requests.filter((r) => r.path === target.name).length).toBe(receiver.requests.slice(0, seen).filter((r) => r.path === target.name).length);

    // Turned on again by an admin: delivering resumes, with the count of failures forgiven.
    const updated = await server.gql<{ updateWebhook: { active: boolean } }>(
      `mutation ($id: ID!) { updateWebhook(id: $id, input: { active: true }) { active } }`,
      { id: hook.id },
      admin.token,
    );
    expect(updated.data?.updateWebhook.active).toBe(true);
    expect((await prisma.webhook.findUniqueOrThrow({ where: { id: hook.id } })).failuresInARow).toBe(0);
  });

  it("a 410 deactivates the webhook at once, without retries", async () => {
    const admin = await adminWithSpace(server);
    const target = path(() => 410);
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    await createTodo(server, admin.token, admin.listId, "Gone");
    const [delivery] = await settled(hook.id, 1);
    expect(delivery).toMatchObject({ status: "FAILED", attempts: 1, lastStatusCode: 410 });
    expect(await webhookActive(hook.id)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, SCHEDULE_MS[0]! * 1.5));
    expect(attemptTimes(target.name, delivery!.id)).toHaveLength(1);
  });

  it("redeliver queues a new delivery of the same event, whatever the old one's status", async () => {
    const admin = await adminWithSpace(server);
    let failing = true;
    const target = path(() => (failing ? 500 : 200));
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    const todoId = await createTodo(server, admin.token, admin.listId, "Again");
    const [failed] = await settled(hook.id, 1);
    expect(failed!.status).toBe("FAILED");
    failing = false;

    const result = await server.gql<{ redeliverWebhookDelivery: { id: string; status: string; attempts: number; eventCursor: string; webhook: { id: string } } }>(
      `mutation ($id: ID!) { redeliverWebhookDelivery(id: $id) { id status attempts eventCursor webhook { id } } }`,
      { id: failed!.id },
      admin.token,
    );
    expect(result.errors).toBeUndefined();
    const fresh = result.data!.redeliverWebhookDelivery;
    expect(fresh).toMatchObject({ status: "PENDING", attempts: 0, webhook: { id: hook.id } });
    expect(fresh.id).not.toBe(failed!.id);
    const request = await eventually(() => receiver.requests.find((r) => r.headers["webhook-id"] === fresh.id), "the redelivery");
    const body = JSON.parse(request.body) as { data: { cursor: string; todoId: string } };
    expect(body.data).toMatchObject({ cursor: fresh.eventCursor, todoId });
    const rows = await settled(hook.id, 2);
    expect(rows.find((row) => row.id === fresh.id)).toMatchObject({ status: "SUCCEEDED", attempts: 1, redeliveryOf: failed!.id });
    // The old one is as it was.
    expect(rows.find((row) => row.id === failed!.id)).toMatchObject({ status: "FAILED", attempts: 3 });

    // A SUCCEEDED one can be redelivered too.
    const again = await server.gql<{ redeliverWebhookDelivery: { id: string } }>(
      `mutation ($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }`,
      { id: fresh.id },
      admin.token,
    );
    expect(again.errors).toBeUndefined();
    await settled(hook.id, 3);
  });
});

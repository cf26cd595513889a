// Graceful shutdown with jobs running: an attempt that can finish within
// SHUTDOWN_TIMEOUT finishes (and is recorded) before the server is closed;
// one that cannot is handed back unmade (no attempt counted, no lease held),
// and the next server to run the queue makes it, with the same webhook-id
// and body.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import type { TestDatabase } from "../helpers/database.js";
import { startTestServer } from "../helpers/server.js";
import { adminWithSpace, createTodo, createWebhook, eventually, startReceiver, webhookEnv } from "../webhooks/support.js";
import { lastingDatabase } from "./support.js";

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

const inspect = async <T>(read: (prisma: Awaited<ReturnType<typeof openDatabase>>["prisma"]) => Promise<T>): Promise<T> => {
  const opened = await openDatabase(database!.config);
  try {
    return await read(opened.prisma);
  } finally {
    await opened.close();
  }
};

describe("stopping a server with a delivery in flight", () => {
  it("lets an attempt that can finish within SHUTDOWN_TIMEOUT finish, and records it", async () => {
    database = await lastingDatabase();
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 1500 }));
    try {
      const server = await startTestServer({ database, env: webhookEnv({ SHUTDOWN_TIMEOUT: "10s" }) });
      const admin = await adminWithSpace(server);
      const hook = await createWebhook(server, admin.token, admin.spaceId, receiver.url);
      await createTodo(server, admin.token, admin.listId, "Finish me");
      await eventually(() => receiver.requests.length === 1, "the attempt to be in flight");
      await server.close();
      const [delivery] = await inspect((prisma) => prisma.webhookDelivery.findMany({ where: { webhookId: hook.id } }));
      expect(delivery).toMatchObject({ status: "SUCCEEDED", attempts: 1, lastStatusCode: 200, leaseToken: null });
    } finally {
      await receiver.close();
    }
  });

  it("hands back an attempt that cannot finish in time; the next server makes it", async () => {
    database = await lastingDatabase();
    let answering = false;
    const receiver = await startReceiver(() => (answering ? 200 : "hang"));
    try {
      const env = webhookEnv({ SHUTDOWN_TIMEOUT: "4s", WEBHOOK_TIMEOUT: "30s" });
      const first = await startTestServer({ database, env });
      const admin = await adminWithSpace(first);
      const hook = await createWebhook(first, admin.token, admin.spaceId, receiver.url);
      await createTodo(first, admin.token, admin.listId, "Hand me back");
      await eventually(() => receiver.requests.length === 1, "the attempt to be in flight");
      const closing = performance.now();
      await first.close();
      expect(performance.now() - closing).toBeLessThan(4000);
      const [handedBack] = await inspect((prisma) => prisma.webhookDelivery.findMany({ where: { webhookId: hook.id } }));
      expect(handedBack).toMatchObject({ status: "PENDING", attempts: 0, leaseToken: null, leaseUntil: null });

      answering = true;
      const second = await startTestServer({ database, env });
      try {
        await eventually(() => receiver.requests.length === 2, "the attempt to be made again", 30_000);
        const [firstTry, secondTry] = receiver.requests;
        expect(secondTry!.headers["webhook-id"]).toBe(firstTry!.headers["webhook-id"]);
        expect(secondTry!.body).toBe(firstTry!.body);
        const delivered = await eventually(async () => {
          const [row] = await second.database.prisma.webhookDelivery.findMany({ where: { webhookId: hook.id } });
          return row?.status === "SUCCEEDED" ? row : undefined;
        }, "the delivery to be recorded");
        expect(delivered).toMatchObject({ id: handedBack!.id, attempts: 1 });
      } finally {
        await second.close();
      }
    } finally {
      await receiver.close();
    }
  });
});

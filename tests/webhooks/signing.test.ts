// A delivery arrives signed per Standard Webhooks, verified here with the
// standardwebhooks package itself; a tampered body or a rotated-away secret
// fails verification.
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { adminWithSpace, createTodo, createWebhook, eventually, startReceiver, webhookEnv, type Receiver } from "./support.js";

let server: TestServer;
let receiver: Receiver;
beforeAll(async () => {
  server = await startTestServer({ env: webhookEnv() });
  receiver = await startReceiver();
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

describe("a delivery", () => {
  it("arrives signed: Webhook.verify accepts it, and refuses a tampered body", async () => {
    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, receiver.url);
    const todoId = await createTodo(server, admin.token, admin.listId, "Milk");
    const request = await eventually(() => receiver.requests.find((r) => r.body.includes(todoId)), "the delivery");

    expect(request.method).toBe("POST");
    expect(request.headers["content-type"]).toBe("application/json");
    const verified = new Webhook(hook.secret).verify(request.body, request.headers) as Record<string, any>;
    expect(verified).toMatchObject({
      type: "todo.created",
      data: { spaceId: admin.spaceId, listId: admin.listId, todoId, todo: { id: todoId, title: "Milk", completed: false, completedAt: null, listId: admin.listId, ownerId: admin.userId } },
    });
    expect(typeof verified.data.cursor).toBe("string");
    expect(() => new Webhook(hook.secret).verify(request.body.replace("Milk", "Milk!"), request.headers)).toThrow();

    // webhook-id is the delivery's id, as the API shows it.
    const listed = await server.gql<{ space: { webhooks: { deliveries: { nodes: { id: string; status: string; attempts: number; lastStatusCode: number; eventCursor: string }[] } }[] } }>(
      `query ($id: ID!) { space(id: $id) { webhooks { deliveries { nodes { id status attempts lastStatusCode eventCursor } } } } }`,
      { id: admin.spaceId },
      admin.token,
    );
    const delivery = await eventually(async () => {
      const again = await server.gql<typeof listed.data>(
        `query ($id: ID!) { space(id: $id) { webhooks { deliveries { nodes { id status attempts lastStatusCode eventCursor } } } } }`,
        { id: admin.spaceId },
        admin.token,
      );
      const node = again.data!.space.webhooks[0]!.deliveries.nodes.find((n) => n.id === request.headers["webhook-id"]);
      return node?.status === "SUCCEEDED" ? node : undefined;
    }, "the delivery to be recorded");
    expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 200, eventCursor: verified.data.cursor });
  });

  it("after rotateWebhookSecret, is signed with the new secret only", async () => {
    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, receiver.url);
    const rotated = await server.gql<{ rotateWebhookSecret: { secret: string; webhook: { id: string } } }>(
      `mutation ($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }`,
      { id: hook.id },
      admin.token,
    );
    const secret = rotated.data!.rotateWebhookSecret.secret;
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(hook.secret);
    const todoId = await createTodo(server, admin.token, admin.listId, "Eggs");
    const request = await eventually(() => receiver.requests.find((r) => r.body.includes(todoId)), "the delivery");
    expect(() => new Webhook(secret).verify(request.body, request.headers)).not.toThrow();
    expect(() => new Webhook(hook.secret).verify(request.body, request.headers)).toThrow();
  });
});

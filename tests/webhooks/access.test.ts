// ACCESS.md, Webhook: only admins of the space see and manage webhooks (others
// get an empty list and NOT_FOUND); a webhook delivers only what its creator
// may read at delivery time, and stops when its creator is no longer an admin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { errorCode, signUp, startTestServer, type TestServer } from "../helpers/server.js";
import {
  addMember,
  adminWithSpace,
  createList,
  createTodo,
  createWebhook,
  deliveriesOf,
  eventually,
  startReceiver,
  subjectsReceived,
  webhookEnv,
  type Receiver,
} from "./support.js";

let server: TestServer;
let prisma: RawPrismaClient;
let receiver: Receiver;
const failingPaths = new Set<string>();
beforeAll(async () => {
  server = await startTestServer({ env: webhookEnv({ WEBHOOK_RETRY_SCHEDULE: "1s" }) });
  prisma = server.database.prisma;
  receiver = await startReceiver((request) => (failingPaths.has(request.path) ? 500 : 200));
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

let paths = 0;
const hookUrl = () => {
  const name = `/access-${++paths}`;
  return { name, url: `http://127.0.0.1:${receiver.port}${name}` };
};

const WEBHOOK_FIELDS = `id url description active createdBy { id } space { id } deliveries { totalCount nodes { id status } }`;

describe("what a webhook delivers", () => {
  it("never a todo (or list) of someone else's private list, not even as a delivery row", async () => {
    const admin = await adminWithSpace(server);
    const member = await addMember(server, admin.token, admin.spaceId, "USER");
    const target = hookUrl();
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    const privateList = await createList(server, member.token, admin.spaceId, "Diary", true);
    const secret = await createTodo(server, member.token, privateList, "Secret");
    const visible = await createTodo(server, admin.token, admin.listId, "Visible");
    await eventually(() => subjectsReceived(receiver, target.name).some((body) => body.data.todoId === visible), "the visible todo");
    // The private events come before the visible one in the log: had they been delivered, they would be here by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const received = subjectsReceived(receiver, target.name);
    expect(received.map((body) => body.data.todoId)).not.toContain(secret);
    expect(received.map((body) => body.data.listId)).not.toContain(privateList);
    const rows = await deliveriesOf(prisma, hook.id);
    const events = await prisma.event.findMany({ where: { id: { in: rows.map((row) => row.eventId) } } });
    expect(events.map((event) => event.listId)).not.toContain(privateList);
  });

  it("checks again at delivery time: a list made private before a retry is dropped from the webhook", async () => {
    const admin = await adminWithSpace(server);
    const member = await addMember(server, admin.token, admin.spaceId, "USER");
    const target = hookUrl();
    failingPaths.add(target.name);
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    const list = await createList(server, member.token, admin.spaceId, "Soon private");
    const todoId = await createTodo(server, member.token, list, "Soon secret");
    const first = await eventually(async () => {
      const rows = await deliveriesOf(prisma, hook.id);
      const row = rows.find((candidate) => candidate.attempts >= 1 && candidate.payload?.includes(todoId));
      return row;
    }, "the first (failed) attempt");
    const made = await server.gql(`mutation ($id: ID!) { updateList(id: $id, input: { private: true }) { id } }`, { id: list }, member.token);
    expect(made.errors).toBeUndefined();
    failingPaths.delete(target.name);
    await eventually(async () => !(await prisma.webhookDelivery.findUnique({ where: { id: first.id } })), "the delivery to be dropped");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const attempts = receiver.requests.filter((request) => request.headers["webhook-id"] === first.id);
    expect(attempts).toHaveLength(1);
    // The list's own update (now private, someone else's) made no delivery either.
    expect(subjectsReceived(receiver, target.name).filter((body) => body.type === "list.updated")).toEqual([]);
  });

  it("stops when its creator is no longer an admin: the webhook becomes inactive and nothing more arrives", async () => {
    const admin = await adminWithSpace(server);
    const other = await addMember(server, admin.token, admin.spaceId, "ADMIN");
    const target = hookUrl();
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    const before = await createTodo(server, admin.token, admin.listId, "Before");
    await eventually(() => subjectsReceived(receiver, target.name).some((body) => body.data.todoId === before), "a delivery before the demotion");

    const memberships = await server.gql<{ space: { members: { id: string; user: { id: string } }[] } }>(
      `query ($id: ID!) { space(id: $id) { members { id user { id } } } }`,
      { id: admin.spaceId },
      other.token,
    );
    const creatorMembership = memberships.data!.space.members.find((m) => m.user.id === admin.userId)!.id;
    const demoted = await server.gql(`mutation ($id: ID!) { updateSpaceMember(id: $id, role: USER) { id } }`, { id: creatorMembership }, other.token);
    expect(demoted.errors).toBeUndefined();
    const count = subjectsReceived(receiver, target.name).length;
    await createTodo(server, admin.token, admin.listId, "After");
    await eventually(async () => !(await prisma.webhook.findUniqueOrThrow({ where: { id: hook.id } })).active, "the webhook to become inactive");
    const rows = await deliveriesOf(prisma, hook.id);
    expect(rows.at(-1)).toMatchObject({ status: "FAILED", attempts: 0, lastError: "The webhook's creator is no longer an admin of the space." });
    await createTodo(server, other.token, admin.listId, "Later");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(subjectsReceived(receiver, target.name)).toHaveLength(count);
  });
});

describe("who sees and manages webhooks", () => {
  it("an admin: create, read, update, delete (with its deliveries), rotate", async () => {
    const admin = await adminWithSpace(server);
    const target = hookUrl();
    const created = await server.gql<{ createWebhook: { webhook: { id: string; url: string; description: string; active: boolean; createdBy: { id: string } } } }>(
      `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id url description active createdBy { id } } secret } }`,
      { input: { spaceId: admin.spaceId, url: target.url, description: "  CI  " } },
      admin.token,
    );
    const webhook = created.data!.createWebhook.webhook;
    expect(webhook).toMatchObject({ url: target.url, description: "CI", active: true, createdBy: { id: admin.userId } });
    await createTodo(server, admin.token, admin.listId, "Counted");
    await eventually(async () => (await deliveriesOf(prisma, webhook.id)).some((row) => row.status === "SUCCEEDED"), "a delivery");

    const listed = await server.gql<{ space: { webhooks: { id: string; deliveries: { totalCount: number } }[] } }>(
      `query ($id: ID!) { space(id: $id) { webhooks { ${WEBHOOK_FIELDS} } } }`,
      { id: admin.spaceId },
      admin.token,
    );
    expect(listed.data!.space.webhooks.map((w) => w.id)).toEqual([webhook.id]);
    expect(listed.data!.space.webhooks[0]!.deliveries.totalCount).toBeGreaterThanOrEqual(1);

    const updated = await server.gql<{ updateWebhook: { url: string; description: string | null; active: boolean } }>(
      `mutation ($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { url description active } }`,
      { id: webhook.id, input: { url: `${target.url}?v=2`, description: null, active: false } },
      admin.token,
    );
    expect(updated.data!.updateWebhook).toEqual({ url: `${target.url}?v=2`, description: null, active: false });

    const badUrl = await server.gql(`mutation ($id: ID!) { updateWebhook(id: $id, input: { url: "ftp://example.com/x" }) { id } }`, { id: webhook.id }, admin.token);
    expect(errorCode(badUrl)).toBe("BAD_USER_INPUT");
    expect(badUrl.errors?.[0]?.extensions?.field).toBe("url");
    expect((await prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } })).url).toBe(`${target.url}?v=2`);

    const deleted = await server.gql<{ deleteWebhook: string }>(`mutation ($id: ID!) { deleteWebhook(id: $id) }`, { id: webhook.id }, admin.token);
    expect(deleted.data!.deleteWebhook).toBe(webhook.id);
    expect(await prisma.webhook.count({ where: { id: webhook.id } })).toBe(0);
    expect(await prisma.webhookDelivery.count({ where: { webhookId: webhook.id } })).toBe(0);
  });

  it("a member who is not an admin: an empty list, NOT_FOUND on every id, FORBIDDEN to create; nothing changes", async () => {
    const admin = await adminWithSpace(server);
    const member = await addMember(server, admin.token, admin.spaceId, "USER");
    const outsider = await signUp(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, hookUrl().url);
    await createTodo(server, admin.token, admin.listId, "For the delivery");
    const delivery = await eventually(async () => (await deliveriesOf(prisma, hook.id))[0], "a delivery");
    const before = await prisma.webhook.findUniqueOrThrow({ where: { id: hook.id } });
    const deliveriesBefore = await prisma.webhookDelivery.count();

    const seen = await server.gql<{ space: { webhooks: unknown[] } }>(`query ($id: ID!) { space(id: $id) { webhooks { id } } }`, { id: admin.spaceId }, member.token);
    expect(seen.data!.space.webhooks).toEqual([]);

    for (const token of [member.token, outsider.token]) {
      for (const [operation, variables] of [
        [`mutation ($id: ID!) { updateWebhook(id: $id, input: { active: false }) { id } }`, { id: hook.id }],
        [`mutation ($id: ID!) { deleteWebhook(id: $id) }`, { id: hook.id }],
        [`mutation ($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id: hook.id }],
        [`mutation ($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }`, { id: delivery.id }],
      ] as const) {
        const result = await server.gql(operation, variables, token);
        expect(errorCode(result), operation).toBe("NOT_FOUND");
      }
    }
    const create = `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }`;
    const input = { spaceId: admin.spaceId, url: "https://example.com/hook" };
    expect(errorCode(await server.gql(create, { input }, member.token))).toBe("FORBIDDEN");
    expect(errorCode(await server.gql(create, { input }, outsider.token))).toBe("NOT_FOUND");
    expect(errorCode(await server.gql(create, { input }))).toBe("UNAUTHENTICATED");

    expect(await prisma.webhook.findUniqueOrThrow({ where: { id: hook.id } })).toEqual(before);
    expect(await prisma.webhook.count({ where: { spaceId: admin.spaceId } })).toBe(1);
    expect(await prisma.webhookDelivery.count()).toBe(deliveriesBefore);
  });

  it("pages deliveries newest first, filtered by status", async () => {
    const admin = await adminWithSpace(server);
    const target = hookUrl();
    const hook = await createWebhook(server, admin.token, admin.spaceId, target.url);
    for (const title of ["a", "b", "c"]) await createTodo(server, admin.token, admin.listId, title);
    await eventually(async () => {
      const rows = await deliveriesOf(prisma, hook.id);
      return rows.length === 3 && rows.every((row) => row.status === "SUCCEEDED");
    }, "three deliveries");
    const page = (after: string | null) =>
      server.gql<{ space: { webhooks: { deliveries: { nodes: { id: string; createdAt: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } }[] } }>(
        `query ($id: ID!, $after: String) { space(id: $id) { webhooks { deliveries(first: 2, after: $after, status: SUCCEEDED) { nodes { id createdAt } pageInfo { hasNextPage endCursor } } } } }`,
        { id: admin.spaceId, after },
        admin.token,
      );
    const first = (await page(null)).data!.space.webhooks[0]!.deliveries;
    expect(first.nodes).toHaveLength(2);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = (await page(first.pageInfo.endCursor)).data!.space.webhooks[0]!.deliveries;
    expect(second.nodes).toHaveLength(1);
    const ids = [...first.nodes, ...second.nodes].map((node) => node.id);
    const rows = await deliveriesOf(prisma, hook.id);
    expect(ids).toEqual(rows.map((row) => row.id).reverse());
    const pending = await server.gql<{ space: { webhooks: { deliveries: { totalCount: number } }[] } }>(
      `query ($id: ID!) { space(id: $id) { webhooks { deliveries(status: PENDING) { totalCount } } } }`,
      { id: admin.spaceId },
      admin.token,
    );
    expect(pending.data!.space.webhooks[0]!.deliveries.totalCount).toBe(0);
  });
});

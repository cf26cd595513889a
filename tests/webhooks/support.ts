// Shared by the webhook tests: a real receiver (an HTTP server of the test's
// own on loopback) that records every request and answers as the test says,
// a space with an admin and a webhook made through the API, and waiting.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { signUp, type TestServer } from "../helpers/server.js";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** What the receiver does with a request: answer with a status (after a delay), redirect, or never answer. */
export type Answer = number | "hang" | { redirectTo: string } | { status: number; delayMs: number };

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Decides each answer (200 unless set). */
  answer: (request: ReceivedRequest) => Answer;
  close(): Promise<void>;
}

export async function startReceiver(answer: (request: ReceivedRequest) => Answer = () => 200): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<http.ServerResponse>();
  const receiver: Receiver = { url: "", port: 0, requests, answer, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      requests.push(request);
      const decision = receiver.answer(request);
      if (decision === "hang") {
        hanging.add(res);
        return;
      }
      if (typeof decision === "object" && "redirectTo" in decision) {
        res.writeHead(302, { location: decision.redirectTo }).end();
        return;
      }
      if (typeof decision === "object") {
        hanging.add(res);
        setTimeout(() => {
          hanging.delete(res);
          if (!res.destroyed) res.writeHead(decision.status, { "content-type": "text/plain" }).end("ok");
        }, decision.delayMs);
        return;
      }
      res.writeHead(decision, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  receiver.port = port;
  receiver.url = `http://127.0.0.1:${port}/hook`;
  receiver.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return receiver;
}

export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface AdminSpace {
  token: string;
  userId: string;
  spaceId: string;
  listId: string;
}

let spaces = 0;
/** A signed-up admin with a space and a public list, through the API. */
export async function adminWithSpace(server: Pick<TestServer, "gql">): Promise<AdminSpace> {
  const admin = await signUp(server);
  const slug = `hook${process.pid % 1000}${++spaces}${Date.now() % 100000}`.slice(0, 16);
  const space = await server.gql<{ createSpace: { id: string } }>(
    `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }`,
    { input: { name: "Webhook space", slug } },
    admin.token,
  );
  const spaceId = space.data!.createSpace.id;
  const list = await server.gql<{ createList: { id: string } }>(
    `mutation ($input: CreateListInput!) { createList(input: $input) { id } }`,
    { input: { spaceId, title: "Groceries" } },
    admin.token,
  );
  return { token: admin.token, userId: admin.user.id, spaceId, listId: list.data!.createList.id };
}

export async function createWebhook(server: Pick<TestServer, "gql">, token: string, spaceId: string, url: string) {
  const result = await server.gql<{ createWebhook: { webhook: { id: string }; secret: string } }>(
    `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } secret } }`,
    { input: { spaceId, url } },
    token,
  );
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return { id: result.data!.createWebhook.webhook.id, secret: result.data!.createWebhook.secret };
}

export async function createTodo(server: Pick<TestServer, "gql">, token: string, listId: string, title: string) {
  const result = await server.gql<{ createTodo: { id: string } }>(
    `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
    { input: { listId, title } },
    token,
  );
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!.createTodo.id;
}

export const deliveriesOf = (prisma: RawPrismaClient, webhookId: string) =>
  prisma.webhookDelivery.findMany({ where: { webhookId }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] });

/** The env of a server whose webhooks may reach the loopback receiver, with quick retries. */
export const webhookEnv = (extra: Record<string, string> = {}) => ({
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
  JOBS_POLL_INTERVAL: "500ms",
  EVENT_POLL_INTERVAL: "200ms",
  ...extra,
});

/** Signs up a user and adds them to the space with `role`; returns their token and membership id. */
export async function addMember(server: Pick<TestServer, "gql">, adminToken: string, spaceId: string, role: "USER" | "ADMIN") {
  const user = await signUp(server);
  const added = await server.gql<{ addSpaceMember: { id: string } }>(
    `mutation ($spaceId: ID!, $email: String!, $role: SpaceRole) { addSpaceMember(spaceId: $spaceId, email: $email, role: $role) { id } }`,
    { spaceId, email: user.email, role },
    adminToken,
  );
  expect(added.errors, JSON.stringify(added.errors)).toBeUndefined();
  return { token: user.token, userId: user.user.id, membershipId: added.data!.addSpaceMember.id };
}

export async function createList(server: Pick<TestServer, "gql">, token: string, spaceId: string, title: string, isPrivate = false) {
  const result = await server.gql<{ createList: { id: string } }>(
    `mutation ($input: CreateListInput!) { createList(input: $input) { id } }`,
    { input: { spaceId, title, private: isPrivate } },
    token,
  );
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data!.createList.id;
}

/** The todo ids (or list ids for list events) the receiver got, per request path. */
export const subjectsReceived = (receiver: Receiver, path?: string) =>
  receiver.requests
    .filter((request) => path === undefined || request.path === path)
    .map((request) => JSON.parse(request.body) as { type: string; data: { todoId?: string; listId: string } });

// Nothing lost: the server is killed with SIGKILL while deliveries are in
// flight and events keep being written; after a restart every event of the
// log has a SUCCEEDED delivery to a receiver that was up all along, and no
// webhook-id ever carried two different bodies (at least once, same content).
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/db/database.js";
import { serverProcesses } from "../helpers/process.js";
import { postGraphQL } from "../helpers/server.js";
import { adminWithSpace, createWebhook, eventually, startReceiver } from "../webhooks/support.js";

const { launch, serverEnv } = serverProcesses();

function databaseOf(env: { DATA_DIR: string; DATABASE_URL?: string }): Promise<Database> {
  return openDatabase(
    env.DATABASE_URL
      ? { kind: "postgres", url: env.DATABASE_URL, poolMax: 2, connectTimeoutMs: 5000, queryTimeoutMs: 5000 }
      : { kind: "pglite", dataDir: path.join(env.DATA_DIR, "pglite") },
  );
}

describe("a server killed mid-delivery", () => {
  it("loses no event and sends no webhook-id with two contents", async () => {
    // Always up; answers after a little while, so attempts are in flight when the kill comes.
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 50 + Math.floor(Math.random() * 250) }));
    const env = {
      ...(await serverEnv()),
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
      WEBHOOK_TIMEOUT: "2s",
      WEBHOOK_RETRY_SCHEDULE: "1s",
      JOBS_POLL_INTERVAL: "500ms",
      EVENT_POLL_INTERVAL: "200ms",
    };
    try {
      const first = await launch(env);
      const api = { gql: <Data>(query: string, variables?: Record<string, unknown>, token?: string) => postGraphQL<Data>(first.url, query, variables, token) };
      const admin = await adminWithSpace(api);
      const hook = await createWebhook(api, admin.token, admin.spaceId, receiver.url);

      // Writers keep going through the kill and the restart.
      let writing = true;
      let url = first.url;
      let written = 0;
      const writer = async () => {
        while (writing) {
          const result = await postGraphQL<{ createTodo: { id: string } }>(
            url,
            `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }`,
            { input: { listId: admin.listId, title: `todo ${written}` } },
            admin.token,
          ).catch(() => undefined);
          if (result?.data?.createTodo) written++;
          else await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      const writers = [writer(), writer()];
      await eventually(() => receiver.requests.length >= 20, "deliveries under way", 30_000);
      first.child.kill("SIGKILL");
      await first.exit;
      const writtenBeforeKill = written;

      const second = await launch(env);
      url = second.url;
      await eventually(() => written >= writtenBeforeKill + 20, "writes after the restart", 30_000);
      writing = false;
      await Promise.all(writers);

      // Every delivery done: nothing PENDING for a while, as the API reports it.
      const pendingCount = async () => {
        const result = await postGraphQL<{ space: { webhooks: { deliveries: { totalCount: number } }[] } }>(
          second.url,
          `query ($id: ID!) { space(id: $id) { webhooks { deliveries(status: PENDING) { totalCount } } } }`,
          { id: admin.spaceId },
          admin.token,
        );
        return result.data!.space.webhooks[0]!.deliveries.totalCount;
      };
      let quietSince = Date.now();
      let lastSeen = receiver.requests.length;
      await eventually(async () => {
        if (receiver.requests.length !== lastSeen || (await pendingCount()) > 0) {
          lastSeen = receiver.requests.length;
          quietSince = Date.now();
          return false;
        }
        return Date.now() - quietSince > 3000;
      }, "every delivery to finish", 90_000);
      second.child.kill("SIGTERM");
      expect(await second.exit).toBe(0);

      const database = await databaseOf(env);
      try {
        // Every todo was written after the webhook was made (the list before it: not for this webhook).
        const events = await database.prisma.event.findMany({ where: { spaceId: admin.spaceId, subject: "TODO" } });
        const deliveries = await database.prisma.webhookDelivery.findMany({ where: { webhookId: hook.id } });
        expect(events.length).toBeGreaterThan(40);
        const succeeded = new Set(deliveries.filter((d) => d.status === "SUCCEEDED").map((d) => d.eventId));
        const missing = events.filter((event) => !succeeded.has(event.id)).map((event) => String(event.id));
        expect(missing).toEqual([]);
        // One delivery per event: the dispatcher handed nothing out twice.
        expect(deliveries.filter((d) => d.redeliveryOf === null)).toHaveLength(events.length);

        const bodies = new Map<string, Set<string>>();
        for (const request of receiver.requests) {
          const id = request.headers["webhook-id"]!;
          if (!bodies.has(id)) bodies.set(id, new Set());
          bodies.get(id)!.add(request.body);
          expect(() => new Webhook(hook.secret).verify(request.body, request.headers)).not.toThrow();
        }
        expect([...bodies.values()].filter((set) => set.size > 1)).toEqual([]);
        for (const delivery of deliveries) expect(bodies.has(delivery.id)).toBe(true);
      } finally {
        await database.close();
      }
    } finally {
      await receiver.close();
    }
  }, 240_000);
});

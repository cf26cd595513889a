// Several instances on one PostgreSQL share the queue: every attempt is made
// by exactly one of them, both do some of the work, and a periodic job runs
// once per period however many instances offer it. (PGlite is one process's
// database: there is no second instance to share it with.)
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { adminWithSpace, createTodo, createWebhook, eventually, startReceiver, webhookEnv } from "../webhooks/support.js";

const started: TestServer[] = [];
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const server of started) await server.close();
  for (const database of databases) await database.drop();
});

async function twoInstances(env: Record<string, string>): Promise<[TestServer, TestServer]> {
  const database = await createTestDatabase();
  databases.push(database);
  const a = await startTestServer({ database, env });
  const b = await startTestServer({ database, env });
  started.push(a, b);
  return [a, b];
}

const attemptsCounted = async (server: TestServer) => {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  return [...text.matchAll(/^webhook_delivery_attempts_total\{outcome="(\w+)"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[2]), 0);
};

describe.skipIf(!usePostgres)("two instances on one PostgreSQL", () => {
  it("make each attempt once between them, and both make some", async () => {
    const [a, b] = await twoInstances(webhookEnv({ WEBHOOK_RETRY_SCHEDULE: "500ms", WEBHOOK_MAX_ATTEMPTS: "3", JOBS_CONCURRENCY: "4" }));
    const seen = new Map<string, number>();
    // The first attempt of every delivery fails, the second succeeds: two attempts each, exactly.
    const receiver = await startReceiver((request) => {
      const id = request.headers["webhook-id"]!;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      return seen.get(id) === 1 ? 500 : { status: 200, delayMs: 20 };
    });
    try {
      const admin = await adminWithSpace(a);
      const hook = await createWebhook(a, admin.token, admin.spaceId, receiver.url);
      const todos = 60;
      await Promise.all(Array.from({ length: todos }, (_, i) => createTodo(i % 2 ? a : b, admin.token, admin.listId, `todo ${i}`)));
      const prisma = a.database.prisma;
      const rows = await eventually(async () => {
        const deliveries = await prisma.webhookDelivery.findMany({ where: { webhookId: hook.id } });
        return deliveries.length === todos && deliveries.every((row) => row.status === "SUCCEEDED") ? deliveries : undefined;
      }, "every delivery to succeed", 60_000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const row of rows) {
        expect(row.attempts, row.id).toBe(2);
        expect(seen.get(row.id), row.id).toBe(2);
      }
      expect(receiver.requests).toHaveLength(2 * todos);
      const [byA, byB] = [await attemptsCounted(a), await attemptsCounted(b)];
      expect(byA + byB).toBe(2 * todos);
      expect(byA).toBeGreaterThan(0);
      expect(byB).toBeGreaterThan(0);
    } finally {
      await receiver.close();
    }
  }, 120_000);

  it("run a periodic job (event-log pruning) once per period across instances", async () => {
    const [a] = await twoInstances({ EVENT_RETENTION: "1s" });
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const slots = await a.database.prisma.$queryRawUnsafe<{ slot: Date; jobs: number }[]>(
      `SELECT singleton_on AS slot, count(*)::int AS jobs FROM pgboss.job WHERE name = 'event-log-prune' GROUP BY singleton_on ORDER BY 1`,
    );
    expect(slots.length).toBeGreaterThanOrEqual(3);
    expect(slots.filter((slot) => slot.jobs !== 1)).toEqual([]);
  }, 60_000);
});

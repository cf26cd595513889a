// Webhook management for admins (docs/api/webhooks.graphql). Every read and
// write goes through the policy client, whose webhook rules (rules.ts) admit
// admins of the space only; URLs are checked by src/webhooks/urlGuard.ts.
import { notFound } from "../../errors.js";
import type { Webhook, WebhookDelivery, WebhookDeliveryStatus } from "../../generated/prisma/client.js";
import { toPage, type PageArgs } from "../../pagination/connection.js";
import type { PolicyClient } from "../../policy/client.js";
import type { WebhookQueue } from "../../webhooks/index.js";
import { newWebhookSecret } from "../../webhooks/signing.js";
import { checkWebhookUrl, type UrlPolicy } from "../../webhooks/urlGuard.js";
import { looksLikeId, notNull, optionalText } from "../validation.js";

/** What the webhook resolvers need beyond the policy client. */
export interface WebhookSettings {
  urlPolicy: UrlPolicy;
  queue: WebhookQueue;
}

export interface CreatedWebhookResult {
  webhook: Webhook;
  secret: string;
}

const DESCRIPTION_MAX = 500;
const description = (value: string | null | undefined) => optionalText(value, "description", "Description", DESCRIPTION_MAX);

export async function createWebhook(
  db: PolicyClient,
  viewerId: string,
  input: { spaceId: string; url: string; description?: string | null },
  settings: WebhookSettings,
): Promise<CreatedWebhookResult> {
  const url = checkWebhookUrl(input.url, settings.urlPolicy);
  const text = description(input.description);
  if (!looksLikeId(input.spaceId)) throw notFound("Space");
  const secret = newWebhookSecret();
  const webhook = await db.webhook.create({
    data: { spaceId: input.spaceId, createdById: viewerId, url, secret, ...(text === undefined ? {} : { description: text }) },
  });
  return { webhook, secret };
}

export async function updateWebhook(
  db: PolicyClient,
  id: string,
  input: { url?: string | null; description?: string | null; active?: boolean | null },
  settings: WebhookSettings,
): Promise<Webhook> {
  const url = notNull(input.url, "url", "URL");
  const active = notNull(input.active, "active", "Active");
  const text = description(input.description);
  if (!looksLikeId(id)) throw notFound("Webhook");
  return db.webhook.update({
    where: { id },
    data: {
      ...(url === undefined ? {} : { url: checkWebhookUrl(url, settings.urlPolicy) }),
      ...(text === undefined ? {} : { description: text }),
      // Turned on again: the failures that turned it off are forgiven.
      ...(active === undefined ? {} : active ? { active, failuresInARow: 0 } : { active }),
    },
  });
}

export async function deleteWebhook(db: PolicyClient, id: string): Promise<string> {
  if (!looksLikeId(id)) throw notFound("Webhook");
  // Its deliveries go with it (ON DELETE CASCADE); their queued jobs then find nothing to do.
  await db.webhook.delete({ where: { id } });
  return id;
}

export async function rotateWebhookSecret(db: PolicyClient, id: string): Promise<CreatedWebhookResult> {
  if (!looksLikeId(id)) throw notFound("Webhook");
  const secret = newWebhookSecret();
  // Every attempt reads the secret when it signs: the old one signs nothing from now on.
  const webhook = await db.webhook.update({ where: { id }, data: { secret } });
  return { webhook, secret };
}

export async function redeliver(db: PolicyClient, id: string, settings: WebhookSettings): Promise<WebhookDelivery> {
  const original = looksLikeId(id) ? await db.webhookDelivery.findFirst({ where: { id } }) : null;
  if (!original) throw notFound("Webhook delivery");
  const delivery = await db.webhookDelivery.create({
    data: { webhookId: original.webhookId, eventId: original.eventId, eventAt: original.eventAt, redeliveryOf: original.id },
  });
  await settings.queue.queueDeliveries([delivery.id]);
  return delivery;
}

const newestFirst = [{ createdAt: "desc" as const }, { id: "desc" as const }];

/** A webhook's deliveries, newest first, optionally of one status. */
export async function listDeliveries(db: PolicyClient, webhookId: string, page: PageArgs, status: WebhookDeliveryStatus | null | undefined) {
  const scope = { webhookId, ...(status ? { status } : {}) };
  const before = page.after
    ? { OR: [{ createdAt: { lt: page.after.createdAt } }, { createdAt: page.after.createdAt, id: { lt: page.after.id } }] }
    : {};
  const rows = await db.webhookDelivery.findMany({ where: { ...scope, ...before }, orderBy: newestFirst, take: page.first + 1 });
  return toPage(rows, page, () => db.webhookDelivery.count({ where: scope }));
}

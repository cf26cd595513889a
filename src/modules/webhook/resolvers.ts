import type { GraphQLContext } from "../../context.js";
import { orNotFound } from "../../errors.js";
import type { Resolvers } from "../../generated/graphql.js";
import { connectionResolvers, pageOrder, parsePageArgs } from "../../pagination/connection.js";
import { related, signedIn } from "../resolve.js";
import {
  createWebhook,
  deleteWebhook,
  listDeliveries,
  redeliver,
  rotateWebhookSecret,
  updateWebhook,
} from "./service.js";

const settings = (context: GraphQLContext) => context.webhooks;

export const webhookResolvers: Resolvers = {
  Mutation: {
    createWebhook: signedIn(({ input }, context, viewer) => createWebhook(context.db, viewer.id, input, settings(context))),
    updateWebhook: signedIn(({ id, input }, context) => updateWebhook(context.db, id, input, settings(context))),
    deleteWebhook: signedIn(({ id }, { db }) => deleteWebhook(db, id)),
    rotateWebhookSecret: signedIn(({ id }, { db }) => rotateWebhookSecret(db, id)),
    redeliverWebhookDelivery: signedIn(({ id }, context) => redeliver(context.db, id, settings(context))),
  },
  Space: {
    // Empty for anyone but an admin: the policy reads no webhook for them.
    webhooks: (space, _args, { db }) => db.webhook.findMany({ where: { spaceId: space.id }, orderBy: pageOrder }),
  },
  Webhook: {
    space: related("Space", (loaders) => loaders.space, (webhook: { spaceId: string }) => webhook.spaceId),
    createdBy: (webhook, _args, { loaders }) => loaders.user.load(webhook.createdById),
    deliveries: (webhook, { first, after, status }, { db }) => listDeliveries(db, webhook.id, parsePageArgs(first, after, 20), status),
  },
  WebhookDelivery: {
    webhook: async (delivery, _args, { db }) => orNotFound(await db.webhook.findFirst({ where: { id: delivery.webhookId } }), "Webhook"),
    eventCursor: (delivery, _args, { realtime }) => realtime.cursors.encode(delivery.eventId),
  },
  WebhookDeliveryConnection: connectionResolvers,
};

// The access rules of shared/api/ACCESS.md, one table per model. Hold this
// file next to ACCESS.md: each entry is one row of it.
//
// read/update/delete yield a Prisma `where` filter: the rows the viewer may
// touch. The enforcing client (client.ts) ANDs the read filter into every read
// and checks update/delete against the row first (NOT_FOUND when the row is
// not readable, FORBIDDEN when readable but not writable). create decides on
// the input before anything is written.
import type { Prisma } from "../generated/prisma/client.js";
import type { Viewer } from "./viewer.js";

/** What a create rule may look at: the raw rows of the parents it names. */
export interface CreateContext {
  viewer: Viewer;
  /** Is there a row of `model` matching `where` that the viewer may read? */
  canRead(model: ModelName, where: Record<string, unknown>): Promise<boolean>;
}

/** `rule` names the entry of this file that said no; `message`, when set, is what the caller reads. */
export type Decision = { allow: true } | { allow: false; code: "NOT_FOUND" | "FORBIDDEN"; rule: string; message?: string };

export const allow: Decision = { allow: true };
const deny = (code: "NOT_FOUND" | "FORBIDDEN", rule: string, message?: string): Decision =>
  message === undefined ? { allow: false, code, rule } : { allow: false, code, rule, message };

export type ModelName =
  | "user"
  | "space"
  | "spaceMember"
  | "list"
  | "todo"
  | "session"
  | "refreshToken"
  | "webhook"
  | "webhookDelivery";

interface FieldRule<Where> {
  /** The rows on which the field is visible to `viewer`. */
  read(viewer: Viewer): Where;
  /**
   * The field is always visible on the viewer's own row (a user row whose id
   * is the viewer's), which `read` must also say: that row then needs no
   * statement to decide.
   */
  visibleOnOwnRow?: true;
}

interface ModelRules<Where> {
  read(viewer: Viewer): Where;
  update(viewer: Viewer): Where;
  delete(viewer: Viewer): Where;
  create(data: Record<string, unknown>, context: CreateContext): Promise<Decision>;
  /** Columns an update may never change (ownership and parent links). */
  immutable: readonly string[];
  /**
   * Field rules: a field listed here is visible only on the rows its filter
   * matches; every other reader of the row gets null in that field. The
   * enforcing client applies them to every row it returns, and refuses a
   * filter, order or grouping on such a field, which would reveal it.
   */
  fields?: Readonly<Record<string, FieldRule<Where>>>;
  /** Nested relation writes a create may carry; all others are refused. */
  nestedCreates?: readonly string[];
  /**
   * An invariant over the rows around a written row, checked inside the write's
   * transaction after the write: a message means the write is undone and fails
   * with CONFLICT. `lock` serialises concurrent writers that could break it.
   */
  invariant?: {
    lock(row: Record<string, unknown>): { table: string; id: string };
    check(row: Record<string, unknown>, tx: Prisma.TransactionClient): Promise<string | undefined>;
  };
}

// A filter that matches no row, for operations nobody may perform.
const NOTHING = { id: { in: [] as string[] } };

const memberOf = (viewer: Viewer): Prisma.SpaceWhereInput => ({ members: { some: { userId: viewer.id } } });
const adminOf = (viewer: Viewer): Prisma.SpaceWhereInput => ({
  members: { some: { userId: viewer.id, role: "ADMIN" } },
});

const listRead = (viewer: Viewer): Prisma.ListWhereInput => ({
  OR: [{ ownerId: viewer.id }, { AND: [{ space: memberOf(viewer) }, { private: false }] }],
});

// The user is me, or shares at least one space with me now.
const sharesSpaceWith = (viewer: Viewer): Prisma.UserWhereInput => ({
  OR: [{ id: viewer.id }, { memberships: { some: { space: memberOf(viewer) } } }],
});

/**
 * The create rule of a row owned by its creator under a parent row: the
 * parent (named by `foreignKey`) must be readable, else NOT_FOUND; the owner
 * must be me, else FORBIDDEN.
 */
const ownedChild =
  (model: ModelName, parent: ModelName, foreignKey: string) =>
  async (data: Record<string, unknown>, { viewer, canRead }: CreateContext): Promise<Decision> => {
    if (!(await canRead(parent, { id: data[foreignKey] as string }))) {
      return deny("NOT_FOUND", `${model}.create: ${parent} not readable`);
    }
    if (data.ownerId !== viewer.id) return deny("FORBIDDEN", `${model}.create: owner must be the creator`);
    return allow;
  };

interface WhereInputs {
  user: Prisma.UserWhereInput;
  space: Prisma.SpaceWhereInput;
  spaceMember: Prisma.SpaceMemberWhereInput;
  list: Prisma.ListWhereInput;
  todo: Prisma.TodoWhereInput;
  session: Prisma.SessionWhereInput;
  refreshToken: Prisma.RefreshTokenWhereInput;
  webhook: Prisma.WebhookWhereInput;
  webhookDelivery: Prisma.WebhookDeliveryWhereInput;
}

export const rules: { [M in ModelName]: ModelRules<WhereInputs[M]> } = {
  user: {
    // The user is me, or shares at least one space with me, or owns a list or
    // todo I may read: a member who left still shows as the owner of what
    // they made, so nobody's query breaks when they go.
    read: (viewer) => ({
      OR: [sharesSpaceWith(viewer), { lists: { some: listRead(viewer) } }, { todos: { some: { list: listRead(viewer) } } }],
    }),
    // Only through updateMe.
    update: (viewer) => ({ id: viewer.id }),
    // Not offered by the API.
    delete: () => NOTHING,
    // Sign-up creates users through the auth module, never through a viewer.
    create: async () => deny("FORBIDDEN", "user.create: only sign-up creates users"),
    immutable: ["id", "email", "passwordHash", "createdAt"],
    // The email only for the user and those who share a space with them now.
    fields: { email: { read: sharesSpaceWith, visibleOnOwnRow: true } },
  },

  space: {
    // I am a member.
    read: (viewer) => memberOf(viewer),
    // I am an admin.
    update: (viewer) => adminOf(viewer),
    delete: (viewer) => adminOf(viewer),
    // Any signed-in user; the creator is the owner and the only, ADMIN, member.
    create: async (data, { viewer }) => {
      if (data.ownerId !== viewer.id) return deny("FORBIDDEN", "space.create: owner must be the creator");
      const members = (data.members as { create?: unknown } | undefined)?.create;
      const creatorAsAdmin =
        members !== null &&
        typeof members === "object" &&
        !Array.isArray(members) &&
        (members as Record<string, unknown>).userId === viewer.id &&
        (members as Record<string, unknown>).role === "ADMIN" &&
        Object.keys(members).length === 2;
      if (!creatorAsAdmin) return deny("FORBIDDEN", "space.create: the creator must become its ADMIN member");
      return allow;
    },
    immutable: ["id", "ownerId", "createdAt"],
    nestedCreates: ["members"],
  },

  spaceMember: {
    // I am a member of that space.
    read: (viewer) => ({ space: memberOf(viewer) }),
    // I am an admin of the space.
    update: (viewer) => ({ space: adminOf(viewer) }),
    // I am an admin of the space, or it is my own membership (leave).
    delete: (viewer) => ({ OR: [{ space: adminOf(viewer) }, { userId: viewer.id }] }),
    // I am an admin of the space, and the new member is not me.
    create: async (data, { viewer, canRead }) => {
      const spaceId = data.spaceId as string;
      if (!(await canRead("space", { id: spaceId }))) return deny("NOT_FOUND", "spaceMember.create: space not readable");
      if (!(await canRead("space", { id: spaceId, ...adminOf(viewer) }))) {
        return deny("FORBIDDEN", "spaceMember.create: not an admin of the space", "Only an admin of the space can add members.");
      }
      if (data.userId === viewer.id) return deny("FORBIDDEN", "spaceMember.create: cannot add yourself");
      return allow;
    },
    immutable: ["id", "spaceId", "userId", "createdAt"],
    // A space always keeps at least one ADMIN.
    invariant: {
      lock: (row) => ({ table: "Space", id: row.spaceId as string }),
      check: async (row, tx) => {
        const admins = await tx.spaceMember.count({ where: { spaceId: row.spaceId as string, role: "ADMIN" } });
        return admins === 0 ? "A space must keep at least one admin." : undefined;
      },
    },
  },

  list: {
    // I own it; or I am a member of its space and it is not private.
    read: listRead,
    // I own it and am still a member of the space; or I am an admin of the space.
    update: (viewer) => ({
      OR: [{ ownerId: viewer.id, space: memberOf(viewer) }, { space: adminOf(viewer) }],
    }),
    // I own it; or I am an admin of the space.
    delete: (viewer) => ({ OR: [{ ownerId: viewer.id }, { space: adminOf(viewer) }] }),
    // The owner is me and I am a member of the space (I may read the space).
    create: ownedChild("list", "space", "spaceId"),
    immutable: ["id", "ownerId", "spaceId", "createdAt"],
  },

  todo: {
    // Every operation is allowed exactly when I may read the todo's list.
    read: (viewer) => ({ list: listRead(viewer) }),
    update: (viewer) => ({ list: listRead(viewer) }),
    delete: (viewer) => ({ list: listRead(viewer) }),
    // The owner is me (the creator).
    create: ownedChild("todo", "list", "listId"),
    immutable: ["id", "ownerId", "listId", "createdAt"],
  },

  session: {
    // Only my own: another user's session behaves as if it did not exist.
    read: (viewer) => ({ userId: viewer.id }),
    // Ending one of mine (logOut, endSession, endOtherSessions).
    update: (viewer) => ({ userId: viewer.id }),
    // Sessions end; they are never deleted through the API.
    delete: () => NOTHING,
    // Sign-up and log-in start sessions through the auth module, never through a viewer.
    create: async () => deny("FORBIDDEN", "session.create: only signUp and logIn start sessions"),
    immutable: ["id", "userId", "userAgent", "createdAt", "expiresAt"],
  },

  refreshToken: {
    // Like the password hash: never readable or writable through any path
    // but the auth module's own (src/modules/auth/sessions.ts).
    read: () => ({ hash: { in: [] } }),
    update: () => ({ hash: { in: [] } }),
    delete: () => ({ hash: { in: [] } }),
    create: async () => deny("FORBIDDEN", "refreshToken.create: only the auth module issues refresh tokens"),
    immutable: ["hash", "sessionId", "createdAt", "usedAt"],
  },

  webhook: {
    // Every operation: I am an admin of its space (ACCESS.md, Webhook).
    read: (viewer) => ({ space: adminOf(viewer) }),
    update: (viewer) => ({ space: adminOf(viewer) }),
    delete: (viewer) => ({ space: adminOf(viewer) }),
    // I am an admin of the space, and the webhook acts for me.
    create: async (data, { viewer, canRead }) => {
      const spaceId = data.spaceId as string;
      if (!(await canRead("space", { id: spaceId }))) return deny("NOT_FOUND", "webhook.create: space not readable");
      if (!(await canRead("space", { id: spaceId, ...adminOf(viewer) }))) {
        return deny("FORBIDDEN", "webhook.create: not an admin of the space", "Only an admin of the space can manage its webhooks.");
      }
      if (data.createdById !== viewer.id) return deny("FORBIDDEN", "webhook.create: creator must be the caller");
      return allow;
    },
    immutable: ["id", "spaceId", "createdById", "createdAt"],
  },

  webhookDelivery: {
    // Readable with its webhook.
    read: (viewer) => ({ webhook: { space: adminOf(viewer) } }),
    // Attempts are recorded by the delivery job (src/webhooks), never through the API.
    update: () => NOTHING,
    // Dropped with their webhook (deleteWebhook), never one by one.
    delete: () => NOTHING,
    // redeliverWebhookDelivery: the webhook is readable (I am an admin of its space).
    create: async (data, { canRead }) => {
      if (!(await canRead("webhook", { id: data.webhookId as string }))) {
        return deny("NOT_FOUND", "webhookDelivery.create: webhook not readable");
      }
      return allow;
    },
    immutable: ["id", "webhookId", "eventId", "redeliveryOf", "eventAt", "createdAt"],
  },
};

const one = (model: ModelName) => ({ model, many: false });
const many = (model: ModelName) => ({ model, many: true });

/**
 * Relations of each model, for filtering what `include`/`select` pulls in.
 * To-many relations get the related model's read filter; to-one relations
 * cannot be filtered by Prisma and are refused (load them with a DataLoader).
 * Keep in step with prisma/schema.prisma: a relation missing here would be
 * passed through unfiltered.
 */
export const relations: Record<ModelName, Record<string, { model: ModelName; many: boolean }>> = {
  user: {
    ownedSpaces: many("space"),
    memberships: many("spaceMember"),
    lists: many("list"),
    todos: many("todo"),
    sessions: many("session"),
    webhooks: many("webhook"),
  },
  space: { owner: one("user"), members: many("spaceMember"), lists: many("list"), webhooks: many("webhook") },
  spaceMember: { space: one("space"), user: one("user") },
  list: { space: one("space"), owner: one("user"), todos: many("todo") },
  todo: { list: one("list"), owner: one("user") },
  session: { user: one("user"), refreshTokens: many("refreshToken") },
  refreshToken: { session: one("session") },
  webhook: { space: one("space"), createdBy: one("user"), deliveries: many("webhookDelivery") },
  webhookDelivery: { webhook: one("webhook") },
};

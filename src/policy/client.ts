// The enforcing client: the only Prisma handle resolvers, services and loaders
// ever get. It exposes a small set of delegate methods per model, each of which
// applies the rules of rules.ts before touching the database:
//   reads    the read filter is ANDed into `where`, and into every to-many
//            relation pulled in with include/select;
//   creates  the model's create rule decides on the input first;
//   updates, deletes  in one transaction: the target is read through the read
//            filter (missing: NOT_FOUND), then checked against the update or
//            delete filter (fails: FORBIDDEN), then written, then the model's
//            invariant is checked (fails: CONFLICT, rolled back).
//   fields   a field with a field rule is null on every returned row the
//            rule does not cover; filtering, ordering or grouping by it is refused.
// A denied operation writes nothing. Anything the client cannot enforce (a
// to-one include, _count, a nested write the rules do not name) is refused.
//
// Denials do not depend on timing. Under PostgreSQL's READ COMMITTED every
// statement sees the latest commits, so a row deleted by someone else between
// two checks would fail the second one (FORBIDDEN) although the truth is that
// it is gone (NOT_FOUND). Deletes only ever take rows away, so a FORBIDDEN is
// confirmed by reading again whatever it rested on: if that is no longer
// readable, the answer is NOT_FOUND. A write whose row vanishes after the
// checks (Prisma's P2025, or P2003 for a parent) is NOT_FOUND too.
import { prismaErrorCode } from "../db/prismaErrors.js";
import { AppError, conflict, forbidden, notFound, unauthenticated, type ErrorCode } from "../errors.js";
import type { Prisma, PrismaClient, User } from "../generated/prisma/client.js";
import { appendEvent, type CommittedEvent, type NewEvent } from "../realtime/eventLog.js";
import { relations, rules, type CreateContext, type ModelName } from "./rules.js";
import type { Viewer } from "./viewer.js";

type ReadOperation = "findUnique" | "findFirst" | "findMany" | "count" | "groupBy";
type WriteOperation = "create" | "update" | "delete";
export type PolicyOperation = ReadOperation | WriteOperation;

/**
 * A user row as the enforcing client returns it: `email` has a field rule
 * (rules.ts) and is null for readers it does not cover. Prisma's own row type
 * says string; code that shows users takes this type instead.
 */
export type ReadableUser = Omit<User, "email"> & { email: string | null };

/** The methods of a model the enforcing client offers, with Prisma's own types. */
export type PolicyDelegate<M extends ModelName> = Pick<PrismaClient[M], PolicyOperation>;

export interface Denial {
  model: ModelName;
  operation: PolicyOperation;
  rule: string;
  viewerId: string | null;
}

export interface PolicyOptions {
  /** Called for every denial, so the server can log which rule said no. */
  onDenied?: (denial: Denial) => void;
  /**
   * Name the rule that said no in the error itself, as
   * `extensions.policy: { model, operation, rule }` (POLICY_EXPLAIN). Off in
   * production: it would tell a caller that a hidden row exists.
   */
  explain?: boolean;
  /** Called after a transaction that appended events has committed. */
  onEventsCommitted?: (events: CommittedEvent[]) => void;
}

/** The models the enforcing client offers a delegate for: its members other than the viewer and the $ methods. */
type ExposedModel = Exclude<keyof PolicyClient, "viewer" | `$${string}`>;

export interface PolicyClient {
  readonly viewer: Viewer | null;
  readonly user: PolicyDelegate<"user">;
  readonly space: PolicyDelegate<"space">;
  readonly spaceMember: PolicyDelegate<"spaceMember">;
  readonly list: PolicyDelegate<"list">;
  readonly todo: PolicyDelegate<"todo">;
  readonly session: PolicyDelegate<"session">;
  readonly webhook: PolicyDelegate<"webhook">;
  readonly webhookDelivery: PolicyDelegate<"webhookDelivery">;
  /** Runs fn in one transaction; nested calls join the outer transaction. */
  $transaction<T>(fn: (db: PolicyClient) => Promise<T>): Promise<T>;
  /**
   * Records a change in the event log, in the current transaction. The event
   * is published only after that transaction commits.
   */
  $appendEvent(event: NewEvent): Promise<void>;
  /**
   * Applies `model`'s create rule to `data` without writing anything, and
   * throws its denial, for services that must authorise before they look
   * something up (the row is created later through the same rule).
   */
  $authorizeCreate(model: ModelName, data: Record<string, unknown>): Promise<void>;
}

/** The codes a policy decision can end in, which POLICY_EXPLAIN explains. */
const EXPLAINED_CODES: ReadonlySet<ErrorCode> = new Set(["NOT_FOUND", "FORBIDDEN", "CONFLICT"]);

export class PolicyUsageError extends Error {
  override name = "PolicyUsageError";
}

// Prisma's delegates are generic per call; inside the engine the arguments are
// handled as plain objects and results passed through untouched.
type Args = Record<string, unknown>;
type GenericDelegate = Record<PolicyOperation, (args: Args) => Promise<unknown>>;
type RawClient = PrismaClient | Prisma.TransactionClient;

const rawDelegate = (tx: RawClient, model: ModelName) => tx[model] as unknown as GenericDelegate;

/**
 * Narrows `where` by `filter`. The caller's own conditions stay at the top
 * level, so a unique `where` (findUnique, update, delete) keeps the unique
 * field Prisma requires there; the filter joins any AND the caller wrote.
 */
function restrict(where: unknown, filter: unknown): Args {
  if (where === undefined || where === null) return { AND: [filter] };
  const own = where as Args;
  const ands = own.AND === undefined ? [] : Array.isArray(own.AND) ? own.AND : [own.AND];
  return { ...own, AND: [...ands, filter] };
}

function readFilter(model: ModelName, viewer: Viewer | null): Args {
  // An anonymous caller reads nothing; resolvers reject it earlier, this is the backstop.
  if (!viewer) return model === "refreshToken" ? { hash: { in: [] } } : { id: { in: [] } };
  return rules[model].read(viewer) as Args;
}

/** Adds read filters to every relation an include/select pulls in. */
function guardSelection(model: ModelName, args: Args, viewer: Viewer | null): Args {
  const guarded: Args = { ...args };
  for (const key of ["include", "select"] as const) {
    const selection = args[key];
    if (selection === undefined || selection === null || typeof selection !== "object") continue;
    const result: Args = {};
    for (const [field, value] of Object.entries(selection as Args)) {
      if (field === "_count") {
        throw new PolicyUsageError(`${model}.${key}._count is not supported by the policy client; use count.`);
      }
      const relation = relations[model][field];
      if (!relation || value === false || value === undefined) {
        result[field] = value;
        continue;
      }
      if (!relation.many) {
        throw new PolicyUsageError(
          `${model}.${key}.${field}: to-one relations cannot be filtered by the policy client; load them with a DataLoader.`,
        );
      }
      if (rules[relation.model].fields) {
        throw new PolicyUsageError(`${model}.${key}.${field}: ${relation.model} has field rules; read it through its own delegate.`);
      }
      const nested = value === true ? {} : (value as Args);
      result[field] = {
        ...guardSelection(relation.model, nested, viewer),
        where: restrict(nested.where, readFilter(relation.model, viewer)),
      };
    }
    guarded[key] = result;
  }
  return guarded;
}

const RELATION_FILTERS = new Set(["some", "every", "none", "is", "isNot"]);

/**
 * The first field with a field rule that a filter, order or cursor mentions,
 * at any depth (AND/OR/NOT and relation filters included), as "model.field".
 * Filtering or ordering by a hidden field would reveal it row by row.
 */
function guardedFieldIn(model: ModelName, clause: unknown): string | undefined {
  if (clause === null || typeof clause !== "object") return undefined;
  if (Array.isArray(clause)) {
    for (const item of clause) {
      const found = guardedFieldIn(model, item);
      if (found) return found;
    }
    return undefined;
  }
  const guarded = rules[model].fields ?? {};
  for (const [key, value] of Object.entries(clause as Args)) {
    if (Object.hasOwn(guarded, key)) return `${model}.${key}`;
    if (key === "AND" || key === "OR" || key === "NOT") {
      const found = guardedFieldIn(model, value);
      if (found) return found;
      continue;
    }
    const relation = relations[model][key];
    if (!relation || value === null || typeof value !== "object") continue;
    // { some: {...} } and { is: {...} } wrap the related filter; a to-one
    // filter or a relation order may also name the related fields directly.
    for (const [inner, nested] of Object.entries(value as Args)) {
      const found = guardedFieldIn(relation.model, RELATION_FILTERS.has(inner) ? nested : { [inner]: nested });
      if (found) return found;
    }
  }
  return undefined;
}

function refuseGuardedClauses(model: ModelName, args: Args): void {
  const guarded = Object.keys(rules[model].fields ?? {});
  const named = [args.by, args.distinct].flat().find((field) => typeof field === "string" && guarded.includes(field));
  const found =
    (named === undefined ? undefined : `${model}.${String(named)}`) ??
    guardedFieldIn(model, args.where) ??
    guardedFieldIn(model, args.orderBy) ??
    guardedFieldIn(model, args.cursor) ??
    guardedFieldIn(model, args.having);
  if (found) throw new PolicyUsageError(`${found} has a field rule: it cannot be filtered, ordered or grouped by.`);
}

function refuseRelationWrites(model: ModelName, data: Args, allowed: readonly string[] = []): void {
  for (const field of Object.keys(data)) {
    if (relations[model][field] && !allowed.includes(field)) {
      throw new PolicyUsageError(`${model}: write the foreign key instead of the relation '${field}'.`);
    }
  }
}

export function createPolicyClient(raw: PrismaClient, viewer: Viewer | null, options: PolicyOptions = {}): PolicyClient {
  return bind(raw, undefined, viewer, options);
}

/**
 * Inside a transaction: `pending` collects the events the transaction appends,
 * published by the outermost $transaction on commit; `readable` remembers the
 * rows this viewer's reads returned in it, by model and id, so that a create
 * rule asking whether such a row is readable needs no statement of its own.
 * That answer is as fresh as a count would be: either can be overtaken by a
 * concurrent delete before the insert, which then fails on its foreign key
 * (NOT_FOUND, see the top of this file).
 */
interface BoundTransaction {
  tx: Prisma.TransactionClient;
  pending: CommittedEvent[];
  readable: Map<ModelName, Set<string>>;
}

function bind(
  root: PrismaClient,
  transaction: BoundTransaction | undefined,
  viewer: Viewer | null,
  options: PolicyOptions,
): PolicyClient {
  const client: RawClient = transaction?.tx ?? root;

  const deny = (model: ModelName, operation: PolicyOperation, rule: string, error: AppError): never => {
    options.onDenied?.({ model, operation, rule, viewerId: viewer?.id ?? null });
    if (options.explain && EXPLAINED_CODES.has(error.code)) error.extensions.policy = { model, operation, rule };
    throw error;
  };

  /**
   * Nulls every field with a field rule on the rows the rule does not cover
   * for this viewer: one statement per guarded field the rows carry.
   */
  const hideGuardedFields = async <T>(model: ModelName, result: T, db: RawClient = client): Promise<T> => {
    const fieldRules = rules[model].fields;
    if (!fieldRules || result === null || typeof result !== "object") return result;
    const rows = (Array.isArray(result) ? result : [result]) as Args[];
    for (const [field, rule] of Object.entries(fieldRules)) {
      const carrying = rows.filter(
        (row) => Object.hasOwn(row, field) && row[field] !== null && !(rule.visibleOnOwnRow && viewer && row.id === viewer.id),
      );
      if (carrying.length === 0) continue;
      if (carrying.some((row) => typeof row.id !== "string")) {
        throw new PolicyUsageError(`${model}.${field} has a field rule: select the id with it.`);
      }
      const visible = viewer
        ? new Set(
            ((await rawDelegate(db, model).findMany({
              where: { id: { in: carrying.map((row) => row.id) }, AND: [rule.read(viewer)] },
              select: { id: true },
            })) as { id: string }[]).map((row) => row.id),
          )
        : new Set<string>();
      for (const row of carrying) if (!visible.has(row.id as string)) row[field] = null;
    }
    return result;
  };

  /** Did a read of this viewer in this transaction return the row `where` names by id alone? */
  const readInThisTransaction = (model: ModelName, where: Args): boolean => {
    const keys = Object.keys(where);
    return keys.length === 1 && typeof where.id === "string" && transaction?.readable.get(model)?.has(where.id) === true;
  };

  /** Is there a row of `model` matching `where` that `me` may read, as of now? */
  const readable = async (tx: RawClient, model: ModelName, where: Args, me: Viewer): Promise<boolean> =>
    ((await rawDelegate(tx, model).count({ where: restrict(where, readFilter(model, me)) })) as number) > 0;

  /**
   * Decides a create by its rule, reading in `tx`. A FORBIDDEN that rested on
   * a parent deleted meanwhile becomes NOT_FOUND (see the top of this file).
   */
  const authorizeCreate = async (tx: RawClient, model: ModelName, data: Args, me: Viewer): Promise<void> => {
    const seenReadable: { parent: ModelName; where: Args }[] = [];
    const context: CreateContext = {
      viewer: me,
      canRead: async (parent, where) => {
        const found = readInThisTransaction(parent, where) || (await readable(tx, parent, where, me));
        if (found) seenReadable.push({ parent, where });
        return found;
      },
    };
    const decision = await rules[model].create(data, context);
    if (decision.allow) return;
    if (decision.code === "FORBIDDEN") {
      for (const { parent, where } of seenReadable) {
        if (!(await readable(tx, parent, where, me))) {
          deny(model, "create", `${model}.create: ${parent} not readable`, notFound(parentLabel(model)));
        }
      }
    }
    deny(model, "create", decision.rule, decision.code === "NOT_FOUND" ? notFound(parentLabel(model)) : forbidden(decision.message));
  };

  const requireViewer = (model: ModelName, operation: PolicyOperation): Viewer =>
    viewer ?? deny(model, operation, "signed-in caller required", unauthenticated());

  // Writes always run in a transaction: the checks and the write see one state.
  const inTransaction = <T>(fn: (db: PolicyClient, tx: Prisma.TransactionClient) => Promise<T>): Promise<T> =>
    transaction ? fn(self, transaction.tx) : self.$transaction((db) => fn(db, currentTx(db)));

  const delegate = <M extends ModelName>(model: M): PolicyDelegate<M> => {
    const own = (tx: RawClient) => rawDelegate(tx, model);
    const modelRules = rules[model];
    const label = model === "spaceMember" ? "Membership" : model[0]!.toUpperCase() + model.slice(1);

    const read = (operation: ReadOperation) => async (args: Args = {}) => {
      refuseGuardedClauses(model, args);
      const result = await own(client)[operation](
        guardSelection(model, { ...args, where: restrict(args.where, readFilter(model, viewer)) }, viewer),
      );
      if (operation === "count" || operation === "groupBy") return result;
      if (transaction && result !== null) rememberReadable(transaction, model, result);
      return hideGuardedFields(model, result);
    };

    const create = async (args: Args) => {
      const me = requireViewer(model, "create");
      const data = (args.data ?? {}) as Args;
      refuseRelationWrites(model, data, modelRules.nestedCreates);
      return inTransaction(async (_db, tx) => {
        await authorizeCreate(tx, model, data, me);
        try {
          return await hideGuardedFields(model, await own(tx).create(guardSelection(model, args, me)), tx);
        } catch (error) {
          // The parent was deleted after the check.
          if (prismaErrorCode(error) === "P2003") deny(model, "create", `${model}.create: parent not readable`, notFound(parentLabel(model)));
          throw error;
        }
      });
    };

    const write = (operation: "update" | "delete") => async (args: Args) => {
      const me = requireViewer(model, operation);
      const data = (args.data ?? {}) as Args;
      if (operation === "update") {
        refuseRelationWrites(model, data);
        const immutable = Object.keys(data).find((field) => modelRules.immutable.includes(field));
        if (immutable) deny(model, operation, `${model}.immutable: ${immutable}`, forbidden(`${immutable} cannot be changed.`));
      }
      return inTransaction(async (_db, tx) => {
        const target = (await own(tx).findFirst({
          where: restrict(args.where, readFilter(model, me)),
        })) as Args | null;
        if (!target) return deny(model, operation, `${model}.read`, notFound(label));
        const permitted = modelRules[operation](me) as Args;
        // A rule that grants the write to exactly those who may read (todos)
        // was decided by the read above: no second statement.
        const sameAsRead = JSON.stringify(permitted) === JSON.stringify(readFilter(model, me));
        const allowed = sameAsRead ? 1 : await own(tx).count({ where: restrict({ id: target.id }, permitted) });
        if (allowed === 0) {
          // Confirmed against the latest commits: a target deleted meanwhile is NOT_FOUND.
          if (!(await readable(tx, model, { id: target.id }, me))) deny(model, operation, `${model}.read`, notFound(label));
          deny(model, operation, `${model}.${operation}`, forbidden());
        }

        const invariant = modelRules.invariant;
        if (invariant) {
          const lock = invariant.lock(target);
          // The table name comes from rules.ts, never from input.
          await tx.$queryRawUnsafe(`SELECT 1 FROM "${lock.table}" WHERE id = $1 FOR UPDATE`, lock.id);
        }
        let result: unknown;
        try {
          result = await own(tx)[operation](guardSelection(model, { ...args, where: { id: target.id } }, me));
        } catch (error) {
          // Deleted by someone else after the checks.
          if (prismaErrorCode(error) === "P2025") deny(model, operation, `${model}.read`, notFound(label));
          throw error;
        }
        if (invariant) {
          const broken = await invariant.check(target, tx);
          // Throwing rolls the transaction back: the write never happened.
          if (broken) deny(model, operation, `${model}.invariant`, conflict(broken));
        }
        return hideGuardedFields(model, result, tx);
      });
    };

    const methods: Record<PolicyOperation, (args: Args) => Promise<unknown>> = {
      findUnique: read("findUnique"),
      findFirst: read("findFirst"),
      findMany: read("findMany"),
      count: read("count"),
      groupBy: read("groupBy"),
      create,
      update: write("update"),
      delete: write("delete"),
    };
    // The methods return plain promises where Prisma's types say PrismaPromise;
    // the difference only matters for array-form $transaction, which is not offered.
    return methods as unknown as PolicyDelegate<M>;
  };

  // Each model's delegate is made when first used: a client is made per
  // request (and per subscription check), and most use one or two models;
  // making all eight up front was about a hundred closures each time.
  const made: { [M in ExposedModel]?: PolicyDelegate<M> } = {};
  const delegateOf = <M extends ExposedModel>(model: M): PolicyDelegate<M> =>
    (made[model] ??= delegate(model) as (typeof made)[M]) as PolicyDelegate<M>;

  const self: PolicyClient = {
    viewer,
    get user() {
      return delegateOf("user");
    },
    get space() {
      return delegateOf("space");
    },
    get spaceMember() {
      return delegateOf("spaceMember");
    },
    get list() {
      return delegateOf("list");
    },
    get todo() {
      return delegateOf("todo");
    },
    get session() {
      return delegateOf("session");
    },
    get webhook() {
      return delegateOf("webhook");
    },
    get webhookDelivery() {
      return delegateOf("webhookDelivery");
    },
    async $transaction<T>(fn: (db: PolicyClient) => Promise<T>): Promise<T> {
      if (transaction) return fn(self);
      const pending: CommittedEvent[] = [];
      const result = await root.$transaction((tx) => fn(bind(root, { tx, pending, readable: new Map() }, viewer, options)));
      if (pending.length > 0) options.onEventsCommitted?.(pending);
      return result;
    },
    async $appendEvent(event: NewEvent): Promise<void> {
      if (!transaction) throw new PolicyUsageError("$appendEvent must run inside $transaction.");
      transaction.pending.push(await appendEvent(transaction.tx, event));
    },
    async $authorizeCreate(model: ModelName, data: Record<string, unknown>): Promise<void> {
      await authorizeCreate(client, model, data, requireViewer(model, "create"));
    },
  };
  transactions.set(self, transaction?.tx);
  return self;
}

// The raw transaction behind a transaction-bound client, for the engine only.
const transactions = new WeakMap<PolicyClient, Prisma.TransactionClient | undefined>();
function currentTx(db: PolicyClient): Prisma.TransactionClient {
  const tx = transactions.get(db);
  if (!tx) throw new PolicyUsageError("Expected a transaction-bound policy client.");
  return tx;
}

function rememberReadable(transaction: BoundTransaction, model: ModelName, result: unknown): void {
  let ids = transaction.readable.get(model);
  if (!ids) transaction.readable.set(model, (ids = new Set()));
  for (const row of Array.isArray(result) ? result : [result]) {
    const id = (row as { id?: unknown } | null)?.id;
    if (typeof id === "string") ids.add(id);
  }
}

function parentLabel(model: ModelName): string {
  switch (model) {
    case "spaceMember":
    case "list":
    case "webhook":
      return "Space";
    case "todo":
      return "List";
    case "webhookDelivery":
      return "Webhook";
    default:
      return "Parent";
  }
}

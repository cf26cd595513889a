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
// A denied operation writes nothing. Anything the client cannot enforce (a
// to-one include, _count, a nested write the rules do not name) is refused.
import { AppError, conflict, forbidden, notFound, unauthenticated } from "../errors.js";
import type { Prisma, PrismaClient } from "../generated/prisma/client.js";
import { appendEvent, type CommittedEvent, type NewEvent } from "../realtime/eventLog.js";
import { relations, rules, type CreateContext, type ModelName } from "./rules.js";
import type { Viewer } from "./viewer.js";

type ReadOperation = "findUnique" | "findFirst" | "findMany" | "count" | "groupBy";
type WriteOperation = "create" | "update" | "delete";
export type PolicyOperation = ReadOperation | WriteOperation;

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
  /** Called after a transaction that appended events has committed. */
  onEventsCommitted?: (events: CommittedEvent[]) => void;
}

export interface PolicyClient {
  readonly viewer: Viewer | null;
  readonly user: PolicyDelegate<"user">;
  readonly space: PolicyDelegate<"space">;
  readonly spaceMember: PolicyDelegate<"spaceMember">;
  readonly list: PolicyDelegate<"list">;
  readonly todo: PolicyDelegate<"todo">;
  /** Runs fn in one transaction; nested calls join the outer transaction. */
  $transaction<T>(fn: (db: PolicyClient) => Promise<T>): Promise<T>;
  /**
   * Records a change in the event log, in the current transaction. The event
   * is published only after that transaction commits.
   */
  $appendEvent(event: NewEvent): Promise<void>;
}

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
  if (!viewer) return { id: { in: [] } };
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
 * `tx` is set inside a transaction; `pending` then collects the events the
 * transaction appends, published by the outermost $transaction on commit.
 */
function bind(
  root: PrismaClient,
  transaction: { tx: Prisma.TransactionClient; pending: CommittedEvent[] } | undefined,
  viewer: Viewer | null,
  options: PolicyOptions,
): PolicyClient {
  const client: RawClient = transaction?.tx ?? root;

  const deny = (model: ModelName, operation: PolicyOperation, rule: string, error: AppError): never => {
    options.onDenied?.({ model, operation, rule, viewerId: viewer?.id ?? null });
    throw error;
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

    const read = (operation: ReadOperation) => async (args: Args = {}) =>
      own(client)[operation](
        guardSelection(model, { ...args, where: restrict(args.where, readFilter(model, viewer)) }, viewer),
      );

    const create = async (args: Args) => {
      const me = requireViewer(model, "create");
      const data = (args.data ?? {}) as Args;
      refuseRelationWrites(model, data, modelRules.nestedCreates);
      return inTransaction(async (_db, tx) => {
        const context: CreateContext = {
          viewer: me,
          canRead: async (parent, where) =>
            ((await rawDelegate(tx, parent).count({ where: restrict(where, readFilter(parent, me)) })) as number) > 0,
        };
        const decision = await modelRules.create(data, context);
        if (!decision.allow) {
          deny(model, "create", decision.rule, decision.code === "NOT_FOUND" ? notFound(parentLabel(model)) : forbidden());
        }
        return own(tx).create(guardSelection(model, args, me));
      });
    };

    const write = (operation: "update" | "delete") => async (args: Args) => {
      const me = requireViewer(model, operation);
      const data = (args.data ?? {}) as Args;
      if (operation === "update") {
        refuseRelationWrites(model, data);
        const immutable = Object.keys(data).find((field) => modelRules.immutable.includes(field));
        if (immutable) deny(model, operation, `${model}.${immutable} is immutable`, forbidden(`${immutable} cannot be changed.`));
      }
      return inTransaction(async (_db, tx) => {
        const target = (await own(tx).findFirst({
          where: restrict(args.where, readFilter(model, me)),
        })) as Args | null;
        if (!target) return deny(model, operation, `${model}.read`, notFound(label));
        const permitted = modelRules[operation](me) as Args;
        const allowed = await own(tx).count({ where: restrict({ id: target.id }, permitted) });
        if (allowed === 0) deny(model, operation, `${model}.${operation}`, forbidden());

        const invariant = modelRules.invariant;
        if (invariant) {
          const lock = invariant.lock(target);
          // The table name comes from rules.ts, never from input.
          await tx.$queryRawUnsafe(`SELECT 1 FROM "${lock.table}" WHERE id = $1 FOR UPDATE`, lock.id);
        }
        const result = await own(tx)[operation](
          guardSelection(model, { ...args, where: { id: target.id } }, me),
        );
        if (invariant) {
          const broken = await invariant.check(target, tx);
          // Throwing rolls the transaction back: the write never happened.
          if (broken) deny(model, operation, `${model} invariant`, conflict(broken));
        }
        return result;
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

  const self: PolicyClient = {
    viewer,
    user: delegate("user"),
    space: delegate("space"),
    spaceMember: delegate("spaceMember"),
    list: delegate("list"),
    todo: delegate("todo"),
    async $transaction<T>(fn: (db: PolicyClient) => Promise<T>): Promise<T> {
      if (transaction) return fn(self);
      const pending: CommittedEvent[] = [];
      const result = await root.$transaction((tx) => fn(bind(root, { tx, pending }, viewer, options)));
      if (pending.length > 0) options.onEventsCommitted?.(pending);
      return result;
    },
    async $appendEvent(event: NewEvent): Promise<void> {
      if (!transaction) throw new PolicyUsageError("$appendEvent must run inside $transaction.");
      transaction.pending.push(await appendEvent(transaction.tx, event));
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

function parentLabel(model: ModelName): string {
  switch (model) {
    case "spaceMember":
    case "list":
      return "Space";
    case "todo":
      return "List";
    default:
      return "Parent";
  }
}

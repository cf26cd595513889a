// Counts the SQL statements each GraphQL operation sends, without trusting any
// global counter: the driver adapter is wrapped so every statement increments
// the counter of the operation whose async context issued it. Used for the
// `extensions.queryStats` of a response (GRAPHQL_QUERY_STATS=1) and metrics.
import { AsyncLocalStorage } from "node:async_hooks";
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQueryable,
  Transaction,
} from "@prisma/driver-adapter-utils";

export interface QueryStats {
  sqlStatements: number;
}

const statsStorage = new AsyncLocalStorage<QueryStats>();

/** Runs fn with a fresh statement counter and returns both. */
export function withQueryStats<T>(stats: QueryStats, fn: () => T): T {
  return statsStorage.run(stats, fn);
}

/**
 * Runs fn uncounted: for work a request triggers but does not own, shared by
 * every request that needs it (the session check's read, one per session per
 * SESSION_CACHE_TTL whichever request happens to ask first).
 */
export function outsideQueryStats<T>(fn: () => T): T {
  return statsStorage.exit(fn);
}

export function currentQueryStats(): QueryStats | undefined {
  return statsStorage.getStore();
}

function countStatement(total: QueryStats): void {
  total.sqlStatements += 1;
  const stats = statsStorage.getStore();
  if (stats) stats.sqlStatements += 1;
}

function countingQueryable<Q extends SqlQueryable>(target: Q, total: QueryStats): Q {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "queryRaw" || property === "executeRaw") {
        return (...args: unknown[]) => {
          countStatement(total);
          return (value as (...a: unknown[]) => unknown).apply(object, args);
        };
      }
      if (property === "startTransaction") {
        return async (...args: unknown[]) => {
          const transaction = (await (value as (...a: unknown[]) => Promise<Transaction>).apply(object, args));
          return countingQueryable(transaction, total);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(object);
    },
  });
}

/**
 * Wraps an adapter factory so the adapters it makes count statements: in the
 * operation's counter, and in `total`, every statement the client sends
 * whoever sends it (the metrics' db_statements_total).
 */
export function countingAdapterFactory(
  factory: SqlMigrationAwareDriverAdapterFactory,
  total: QueryStats,
): SqlMigrationAwareDriverAdapterFactory {
  return new Proxy(factory, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (property === "connect" && typeof value === "function") {
        return async () => countingQueryable(await (value as () => Promise<SqlDriverAdapter>).apply(object), total);
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(object) : value;
    },
  });
}

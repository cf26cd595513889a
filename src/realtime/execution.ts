// Executes subscription events: once per event for every subscription that
// would compute the same result, instead of once per subscription.
//
// graphql-js executes each subscription's selection once per event. With
// thousands of subscribers of one space that is thousands of executions of
// the same selection over the same row. Here an event's result is kept, for
// as long as the event is held, under a key of what the result depends on:
// - the document, operation and variables, for a selection that reads only
//   the event and its own row (leaf fields of TodoEvent/ListEvent and of the
//   todo or list they carry, as in `todo { id title completed }`): every
//   subscriber allowed the event receives the same row (audience.ts), so the
//   result is the same for all of them, whoever they are;
// - the same and the viewer, for any other selection (`todo { owner { email } }`,
//   `list { todos { ... } }`): that result depends on what the viewer may
//   read, and is executed once per viewer in a fresh context of theirs, its
//   loaders primed with the event's row.
//
// Leaf fields of Todo and List must therefore be computed from the row alone
// (their resolvers take the parent only); tests/unit/sharedExecution.test.ts
// keeps them so.
import {
  createSourceEventStream,
  execute,
  getNamedType,
  getOperationAST,
  isAbstractType,
  isLeafType,
  isObjectType,
  Kind,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type SelectionSetNode,
} from "graphql";
import type { GraphQLContext } from "../context.js";
import type { DeliveredEvent } from "./events.js";
import type { SharedResult } from "./multiplex.js";

type Result = ExecutionResult | Promise<ExecutionResult>;

/** The `subscribe` graphql-ws calls for subscription operations. */
export function createSubscriptionExecutor(): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const shareable = new WeakMap<DocumentNode, Map<string, boolean>>();
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 0;
  // Per event and key: the result, and (for the direct fan-out) it serialized.
  const results = new WeakMap<DeliveredEvent, Map<string, { result: Result; shared?: Promise<SharedResult> }>>();

  const isShareable = (args: ExecutionArgs): boolean => {
    let byOperation = shareable.get(args.document);
    if (!byOperation) shareable.set(args.document, (byOperation = new Map()));
    const name = args.operationName ?? "";
    let answer = byOperation.get(name);
    if (answer === undefined) byOperation.set(name, (answer = readsOnlyTheEventRow(args.schema, args.document, args.operationName)));
    return answer;
  };
  const documentId = (document: DocumentNode): number => {
    let id = documentIds.get(document);
    if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
    return id;
  };

  return async (args) => {
    const context = args.contextValue as GraphQLContext;
    const shared = isShareable(args);
    // What the result depends on besides the event.
    const key = [documentId(args.document), args.operationName ?? "", JSON.stringify(args.variableValues ?? {}), shared ? "" : (context.viewer?.id ?? "")].join("\u0000");

    const entryFor = (event: DeliveredEvent) => {
      let byKey = results.get(event);
      if (!byKey) results.set(event, (byKey = new Map()));
      let entry = byKey.get(key);
      if (!entry) {
        entry = { result: execute({ ...args, rootValue: event, contextValue: shared ? context : primedContext(context, event) }) };
        byKey.set(key, entry);
      }
      return entry;
    };
    const executeEvent = (event: DeliveredEvent): Result => entryFor(event).result;
    const transport = context.transport;
    const viewerId = context.viewer?.id;
    if (shared && transport && viewerId !== undefined) {
      // Caught up, the stream hands its events to the direct fan-out
      // (multiplex.ts), which sends this result, serialized once per event.
      context.directReceiver = {
        viewerId,
        groupKey: key,
        resultFor: (event) => {
          const entry = entryFor(event);
          return (entry.shared ??= Promise.resolve(entry.result).then((result) => ({
            result,
            serialized: result.errors ? undefined : JSON.stringify(result),
          })));
        },
        send: (result) => transport.sendNext(result),
      };
    }
    const source = await createSourceEventStream(args);
    if (!isAsyncIterator(source)) return source as ExecutionResult;
    return mapEvents(source as AsyncIterableIterator<DeliveredEvent>, executeEvent);
  };
}

/** A fresh context of the viewer's, which already holds the event's row. */
function primedContext(context: GraphQLContext, event: DeliveredEvent): GraphQLContext {
  const fresh = context.fresh();
  if (event.todo) fresh.loaders.todo.prime(event.todo.id, event.todo);
  if (event.list) fresh.loaders.list.prime(event.list.id, event.list);
  return fresh;
}

/**
 * Whether the operation's selection reads only leaf fields of the event and
 * of the one row it carries: nothing that depends on who is asking.
 */
export function readsOnlyTheEventRow(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName);
  const root = schema.getSubscriptionType();
  if (!operation || operation.operation !== "subscription" || !root) return false;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // depth 0: the root field; 1: the event; 2: its row, where only leaves may be read.
  const walk = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, depth: number, seen: Set<string>): boolean => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || seen.has(fragment.name.value)) return false;
        const type = schema.getType(fragment.typeCondition.name.value);
        if (!type || !(isObjectType(type) || isAbstractType(type))) return false;
        if (!walk(fragment.selectionSet, type, depth, new Set([...seen, fragment.name.value]))) return false;
        continue;
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (!type || !(isObjectType(type) || isAbstractType(type))) return false;
        if (!walk(selection.selectionSet, type, depth, seen)) return false;
        continue;
      }
      if (selection.name.value === "__typename") continue;
      if (!isObjectType(parent)) return false;
      const field = parent.getFields()[selection.name.value];
      if (!field) return false;
      const type = getNamedType(field.type);
      // The root field's own arguments pick the stream, not the result.
      if (depth > 0 && (selection.arguments?.length ?? 0) > 0) return false;
      if (isLeafType(type)) {
        if (depth === 0) return false;
        continue;
      }
      if (depth >= 2 || !selection.selectionSet) return false;
      if (!(isObjectType(type) || isAbstractType(type))) return false;
      if (!walk(selection.selectionSet, type, depth + 1, seen)) return false;
    }
    return true;
  };
  return walk(operation.selectionSet, root, 0, new Set());
}

/** `source` with each value mapped; return() and throw() end the source. */
function mapEvents<T, R>(source: AsyncIterableIterator<T>, map: (value: T) => R | Promise<R>): AsyncIterableIterator<R> {
  return new MappedEvents(source, map);
}

/**
 * A class rather than an object literal of closures: one is kept for every
 * open subscription, and its methods are then shared by all of them.
 */
class MappedEvents<T, R> implements AsyncIterableIterator<R> {
  constructor(
    private readonly source: AsyncIterableIterator<T>,
    private readonly map: (value: T) => R | Promise<R>,
  ) {}

  async next(): Promise<IteratorResult<R>> {
    const next = await this.source.next();
    return next.done ? { value: undefined, done: true } : { value: await this.map(next.value), done: false };
  }

  async return(): Promise<IteratorResult<R>> {
    await this.source.return?.();
    return { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<R>> {
    await this.source.return?.();
    throw error;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<R> {
    return this;
  }
}

function isAsyncIterator(value: unknown): value is AsyncIterableIterator<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

// The checks an operation over WebSocket goes through before it runs, the
// same as over HTTP: parse and validate with the operation limits, resolve the
// operation, refuse text PostgreSQL cannot store, coerce the variables, and
// the cost limit. graphql-ws would otherwise parse and validate with none.
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { unstorableTextError, type OperationLimits } from "./limits.js";

/** What checkOperation found: what to execute, or the errors to send back. */
export type CheckedOperation = {
  /** The operation the document selects, once it parses (named in the log even when refused). */
  operation?: OperationDefinitionNode;
  result: ExecutionArgs | GraphQLError[];
};

/**
 * Parses and validates an operation with the same limits as HTTP (graphql-ws
 * would otherwise parse and validate it with none).
 */
export function checkOperation(
  schema: GraphQLSchema,
  limits: OperationLimits,
  payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  documents: ValidatedDocuments,
): CheckedOperation {
  const parsed = documents.get(payload.query, () => parseAndValidate(schema, limits, payload.query));
  if ("parseErrors" in parsed) return { result: parsed.parseErrors };
  const { document, errors } = parsed;
  const operation = getOperationAST(document, payload.operationName) ?? undefined;
  if (errors.length) {
    return {
      operation,
      result: errors.map((error) =>
        error.extensions.code ? error : new GraphQLError(error.message, { nodes: error.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }),
      ),
    };
  }
  // What Apollo reports over HTTP for these two, with the same codes.
  if (!operation) {
    const message = payload.operationName
      ? `Unknown operation named "${payload.operationName}".`
      : "Must provide operation name if query contains multiple operations.";
    return { result: [new GraphQLError(message, { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } })] };
  }
  const unstorable = unstorableTextError(document, operation, payload.variables);
  if (unstorable) return { operation, result: [unstorable] };
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
  if (coerced.errors) {
    return {
      operation,
      result: coerced.errors.map((error) => new GraphQLError(error.message, { nodes: error.nodes, extensions: { code: "BAD_USER_INPUT" } })),
    };
  }
  const costError = limits.costError(schema, document, payload.operationName, payload.variables);
  if (costError) return { operation, result: [costError] };
  return { operation, result: { schema, document, operationName: payload.operationName, variableValues: payload.variables } };
}

type Parsed = { document: DocumentNode; errors: readonly GraphQLError[] } | { parseErrors: GraphQLError[] };

function parseAndValidate(schema: GraphQLSchema, limits: OperationLimits, query: string): Parsed {
  let document: DocumentNode;
  try {
    document = parse(query, limits.parseOptions);
  } catch (error) {
    const message = error instanceof GraphQLError ? error.message : "The operation could not be parsed.";
    return { parseErrors: [new GraphQLError(message, { extensions: { code: "GRAPHQL_PARSE_FAILED" } })] };
  }
  return { document, errors: validate(schema, document, [...specifiedRules, ...limits.validationRules]) };
}

/**
 * Parsed and validated documents by their text, the least recently used
 * dropped beyond `capacity`. Thousands of subscribers of one app send the
 * same few documents: each is parsed and validated once and held once (a
 * parsed document takes several KB of heap), and subscriptions sharing a
 * document can share its execution (src/realtime/execution.ts). Texts that do
 * not parse are not kept.
 */
export class ValidatedDocuments {
  private readonly entries = new Map<string, Parsed>();

  constructor(private readonly capacity = 1000) {}

  get(query: string, make: () => Parsed): Parsed {
    const found = this.entries.get(query);
    if (found) {
      this.entries.delete(query);
      this.entries.set(query, found);
      return found;
    }
    const made = make();
    if ("document" in made) {
      this.entries.set(query, made);
      if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    }
    return made;
  }
}

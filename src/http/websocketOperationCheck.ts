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
): CheckedOperation {
  let document: DocumentNode;
  try {
    document = parse(payload.query, limits.parseOptions);
  } catch (error) {
    const message = error instanceof GraphQLError ? error.message : "The operation could not be parsed.";
    return { result: [new GraphQLError(message, { extensions: { code: "GRAPHQL_PARSE_FAILED" } })] };
  }
  const operation = getOperationAST(document, payload.operationName) ?? undefined;
  const errors = validate(schema, document, [...specifiedRules, ...limits.validationRules]);
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

// Operation limits: what an operation may ask for before the server spends
// anything on it. Every limit comes from the environment (LIMIT_*; 0 turns a
// count limit off) and every rejection is GRAPHQL_VALIDATION_FAILED with a
// message naming the limit and its value (shared/api/ERRORS.md), over HTTP and
// over WebSocket alike.
//
//   tokens      graphql-js's own parser option: the parse stops at the limit,
//               so a huge document never becomes a huge AST.
//   depth, aliases, directives
//               GraphQL Armor's validation rules.
//   root fields a small validation rule here (Armor has none).
//   cost        cost.ts, checked once the variables are known.
//
// The body size limit and batching are HTTP matters: see server.ts. With
// introspection off, the validation rules here also carry the introspection
// ban of schemaVisibility.ts, so both transports apply it.
import { HeaderMap, type ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import {
  BREAK,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  visit,
} from "graphql";
import type { Config } from "../config.js";
import { operationCost } from "./cost.js";
import { noIntrospectionRule } from "./schemaVisibility.js";

export type LimitSettings = Config["limits"];

export const LIMIT_ERROR_CODE = "GRAPHQL_VALIDATION_FAILED";

export interface OperationLimits {
  parseOptions: ParseOptions;
  validationRules: ValidationRule[];
  /** The cost error for this operation with these (raw, client-sent) variables, if any. */
  costError(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, variables: unknown): GraphQLError | undefined;
  /** For Apollo Server: the cost check, once the operation is resolved, and Armor's plugins. */
  apolloPlugins(): ApolloServerPlugin[];
}

/** A limit error as Apollo and graphql-ws send it: code, and 400 over HTTP. */
export function limitError(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: LIMIT_ERROR_CODE, http: { status: 400, headers: new HeaderMap() } },
  });
}

// Armor prefixes its messages with "Syntax Error: ", which they are not.
const reportCleanly = (context: ValidationContext | null, error: GraphQLError) =>
  context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error:\s*/, ""), { extensions: { code: LIMIT_ERROR_CODE } }));

const armorLimit = (n: number) => ({
  enabled: n > 0,
  n,
  exposeLimits: true,
  propagateOnRejection: false,
  onReject: [reportCleanly],
});

export function createOperationLimits(settings: LimitSettings, options: { introspection: boolean }): OperationLimits {
  const armor = new ApolloArmor({
    maxDepth: { ...armorLimit(settings.maxDepth), flattenFragments: true, ignoreIntrospection: true },
    maxAliases: armorLimit(settings.maxAliases),
    maxDirectives: armorLimit(settings.maxDirectives),
    // Armor's token check runs in a plugin hook whose errors Apollo answers
    // with 500; the parser's own maxTokens (below) rejects properly instead.
    maxTokens: { enabled: false },
    // Armor's cost rule ignores variables and schema defaults: cost.ts.
    costLimit: { enabled: false },
    // Armor's hides field suggestions over HTTP only, and not enum or
    // fragment hints: schemaVisibility.ts does it for both transports.
    blockFieldSuggestion: { enabled: false },
  }).protect();

  const validationRules = [...armor.validationRules];
  if (!options.introspection) validationRules.push(noIntrospectionRule);
  if (settings.maxRootFields > 0) validationRules.push(maxRootFieldsRule(settings.maxRootFields));

  const costError: OperationLimits["costError"] = (schema, document, operationName, variables) => {
    if (settings.maxCost <= 0) return undefined;
    const operation = getOperationAST(document, operationName);
    if (!operation) return undefined;
    const coerced = getVariableValues(
      schema,
      operation.variableDefinitions ?? [],
      variables !== null && typeof variables === "object" ? (variables as Record<string, unknown>) : {},
    );
    // Variables that do not coerce fail at execution with their own error.
    if (coerced.errors) return undefined;
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    const cost = operationCost(schema, operation, fragments, coerced.coerced);
    if (cost <= settings.maxCost) return undefined;
    return limitError(`Query cost limit of ${settings.maxCost} exceeded, found ${formatCost(cost)}.`);
  };

  return {
    parseOptions: settings.maxTokens > 0 ? { maxTokens: settings.maxTokens } : {},
    validationRules,
    costError,
    apolloPlugins: () => [
      // Armor's declarations name Apollo's CommonJS types, this project uses
      // the ES module ones: the same plain objects at run time.
      ...(armor.plugins as unknown as ApolloServerPlugin[]),
      {
        async requestDidStart() {
          return {
            async didResolveOperation({ schema, document, operation, operationName, request }) {
              const error = unstorableTextError(document, operation, request.variables) ?? costError(schema, document, operationName, request.variables);
              if (error) throw error;
            },
          };
        },
      },
    ],
  };
}

// Text the database layer cannot take: PostgreSQL text cannot hold U+0000,
// and Prisma's query engine fails on an unpaired UTF-16 surrogate (valid in
// JSON, not in UTF-8). Either would reach the database only to fail there as
// an internal error, so it is refused up front, as bad input, wherever it is:
// a string literal in the document or a variable.
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// Whether a document's own string literals hold such text, found once per
// parsed document: parsed documents are cached and shared (thousands of
// subscriptions send the same one), and walking one made kilobytes of garbage.
const literalsChecked = new WeakMap<DocumentNode, boolean>();
function hasUnstorableLiteral(document: DocumentNode): boolean {
  let found = literalsChecked.get(document);
  if (found !== undefined) return found;
  found = false;
  visit(document, {
    StringValue(node) {
      if (UNSTORABLE_TEXT.test(node.value)) {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  literalsChecked.set(document, found);
  return found;
}

/** The error for an operation whose string literals or variables hold text the database cannot store, if any. */
export function unstorableTextError(
  document: DocumentNode,
  operation: OperationDefinitionNode | null | undefined,
  variables: unknown,
): GraphQLError | undefined {
  let found = hasUnstorableLiteral(document);
  if (!found && operation && variables !== null && typeof variables === "object") {
    const values = variables as Record<string, unknown>;
    // Iterative: a variable may be nested as deep as the body size allows.
    const pending: unknown[] = (operation.variableDefinitions ?? []).map((definition) => values[definition.variable.name.value]);
    while (!found && pending.length) {
      const value = pending.pop();
      if (typeof value === "string") found = UNSTORABLE_TEXT.test(value);
      else if (Array.isArray(value)) for (const item of value) pending.push(item);
      else if (value !== null && typeof value === "object") for (const item of Object.values(value)) pending.push(item);
    }
  }
  if (!found) return undefined;
  return new GraphQLError("Text must not contain the NUL character (U+0000) or unpaired UTF-16 surrogates.", {
    extensions: { code: "BAD_USER_INPUT", http: { status: 400, headers: new HeaderMap() } },
  });
}

const formatCost = (cost: number) => (Number.isSafeInteger(cost) ? String(cost) : cost.toExponential(2));

/** Counts the fields selected at the root of each operation, through fragments. */
export function maxRootFieldsRule(max: number): ValidationRule {
  return (context: ValidationContext) => ({
    OperationDefinition(operation) {
      const count = countFields(operation.selectionSet, context, new Set());
      if (count > max) {
        context.reportError(
          new GraphQLError(`Root fields limit of ${max} exceeded, found ${count}.`, {
            nodes: [operation],
            extensions: { code: LIMIT_ERROR_CODE },
          }),
        );
      }
    },
  });
}

function countFields(selectionSet: SelectionSetNode, context: ValidationContext, seen: Set<string>): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += 1;
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += countFields(selection.selectionSet, context, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) count += countFields(fragment.selectionSet, context, seen);
    }
  }
  return count;
}

// graphql-js reports the token limit as a syntax error; the API reports every
// limit the same way. (graphql 16 spells it "more that"; "than" is accepted
// too, should a release fix the typo.)
const TOKEN_LIMIT = /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/;

/** The public form of a token-limit parse error, or undefined for any other error. */
export function asTokenLimitError(formatted: GraphQLFormattedError): GraphQLFormattedError | undefined {
  const match = TOKEN_LIMIT.exec(formatted.message);
  if (!match) return undefined;
  return { message: `Token limit of ${match[1]} exceeded.`, extensions: { code: LIMIT_ERROR_CODE } };
}

// Apollo Server refuses a JSON array body when batching is off with a
// BAD_REQUEST of its own; the API reports it like every other limit.
const BATCHING_DISABLED = "Operation batching disabled.";

/** The public form of Apollo's batching-disabled error, or undefined for any other error. */
export function asBatchingLimitError(formatted: GraphQLFormattedError): GraphQLFormattedError | undefined {
  if (formatted.message !== BATCHING_DISABLED) return undefined;
  return {
    message: "Batching limit of 1 operation per request exceeded: batched requests are disabled (ALLOW_BATCHED_REQUESTS).",
    extensions: { code: LIMIT_ERROR_CODE },
  };
}

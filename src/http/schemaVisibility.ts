// What a client may learn about the schema when introspection is off
// (production, unless INTROSPECTION=true): no __schema or __type, and no
// "Did you mean ...?" hints in error messages, which would spell the schema
// out a field, argument or enum value at a time. One rule and one message
// rewrite, used by HTTP (Apollo) and WebSocket (graphql-ws) alike.
import { GraphQLError, type GraphQLFormattedError, type ValidationContext, type ValidationRule } from "graphql";

const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/** Refuses __schema and __type anywhere in an operation (__typename stays allowed). */
export const noIntrospectionRule: ValidationRule = (context: ValidationContext) => ({
  Field(node) {
    if (INTROSPECTION_FIELDS.has(node.name.value)) {
      context.reportError(
        new GraphQLError("Introspection is disabled on this server.", {
          nodes: node,
          extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
        }),
      );
    }
  },
});

// graphql-js's hints: `Did you mean "me"?`, `Did you mean "a", "b", or "c"?`,
// `Did you mean the enum value "ADMIN"?`, `Did you mean to use an inline
// fragment on "X"?`. Names never hold "?", so the hint ends at the first one.
const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** The error without schema hints. */
export function withoutSuggestions(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (!formatted.message.includes("Did you mean")) return formatted;
  return { ...formatted, message: formatted.message.replace(SUGGESTION, "").trim() };
}

// The cost of an operation: about how many objects the server may have to
// load to answer it, used by the cost limit (limits.ts). GraphQL Armor's cost
// rule only reads `first` when it is written as a literal, so `first: $n` or
// an omitted `first` (the schema default, 20 or 50) would cost as if it were
// 1: this one runs once the variables are known and uses the value the
// resolver will see.
//
// Model: a field that selects an object costs 1 plus its selection, and a
// field with a `first` argument (a connection) costs 1 plus `first` times its
// selection. Scalars cost nothing (the token and alias limits bound them).
// Fragments on unions are added up, not maxed: an over-estimate, on the safe
// side. __typename and introspection cost nothing. So
//   { spaces { nodes { lists { nodes { todos { nodes { id } } } } } } }
// with the schema defaults (20 spaces, 20 lists, 50 todos) costs
//   1 + 20 × (1 + 1 + 20 × (1 + 1 + 50 × 1)) = 20 841.
import {
  getArgumentValues,
  getNamedType,
  isCompositeType,
  Kind,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type FieldNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

const PAGE_ARGUMENT = "first";

export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variableValues: Record<string, unknown>,
): number {
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return 0;
  // A fragment costs the same wherever it is spread (the variables are fixed
  // for the request), so each is computed once: a document that spreads
  // fragments into fragments cannot make this walk exponential.
  const fragmentCosts = new Map<string, number>();

  const selectionCost = (selectionSet: SelectionSetNode, parentType: GraphQLCompositeType): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      switch (selection.kind) {
        case Kind.FIELD: {
          const name = selection.name.value;
          if (name.startsWith("__")) break;
          const field = "getFields" in parentType ? parentType.getFields()[name] : undefined;
          if (!field) break; // validation already rejected it
          const namedType = getNamedType(field.type);
          if (!selection.selectionSet || !isCompositeType(namedType)) break;
          total += 1 + pageSize(field, selection) * selectionCost(selection.selectionSet, namedType);
          break;
        }
        case Kind.INLINE_FRAGMENT: {
          const typeName = selection.typeCondition?.name.value;
          const type = typeName ? schema.getType(typeName) : parentType;
          if (type && isCompositeType(type)) total += selectionCost(selection.selectionSet, type);
          break;
        }
        case Kind.FRAGMENT_SPREAD: {
          const name = selection.name.value;
          let cost = fragmentCosts.get(name);
          if (cost === undefined) {
            fragmentCosts.set(name, 0); // a cycle (rejected by validation anyway) ends here
            const fragment = fragments.get(name);
            const type = fragment ? schema.getType(fragment.typeCondition.name.value) : undefined;
            cost = fragment && type && isCompositeType(type) ? selectionCost(fragment.selectionSet, type) : 0;
            fragmentCosts.set(name, cost);
          }
          total += cost;
          break;
        }
      }
    }
    return total;
  };

  const pageSize = (field: GraphQLField<unknown, unknown>, node: FieldNode): number => {
    if (!field.args.some((arg) => arg.name === PAGE_ARGUMENT)) return 1;
    try {
      const value = getArgumentValues(field, node, variableValues)[PAGE_ARGUMENT];
      return typeof value === "number" && Number.isFinite(value) ? Math.max(0, value) : 1;
    } catch {
      return 1; // an invalid argument fails at execution with its own error
    }
  };

  return selectionCost(operation.selectionSet, rootType);
}

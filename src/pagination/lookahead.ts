// Which fields an operation selects on the rows of a connection, read from
// the connection field's own selection (`nodes { … }` and `edges { node { … } }`,
// through fragments, honouring @skip and @include). The loaders use it to load
// a page's to-one relations (a todo's owner) together with the page, so those
// fields resolve to values at hand instead of one promise per row.
import {
  getDirectiveValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type FieldNode,
  type GraphQLResolveInfo,
  type SelectionSetNode,
} from "graphql";

type Selected = (node: { directives?: FieldNode["directives"] }) => boolean;

/** The names of the fields selected on a connection's nodes. */
export function selectedNodeFields(info: Pick<GraphQLResolveInfo, "fieldNodes" | "fragments" | "variableValues">): Set<string> {
  const included: Selected = (node) =>
    getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true &&
    getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;

  const fieldsOf = (selectionSet: SelectionSetNode | undefined, visit: (field: FieldNode) => void, seen = new Set<string>()): void => {
    for (const selection of selectionSet?.selections ?? []) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) visit(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) fieldsOf(selection.selectionSet, visit, seen);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        fieldsOf(info.fragments[selection.name.value]?.selectionSet, visit, seen);
      }
    }
  };

  const names = new Set<string>();
  const collect = (field: FieldNode) => names.add(field.name.value);
  for (const connection of info.fieldNodes) {
    fieldsOf(connection.selectionSet, (field) => {
      if (field.name.value === "nodes") fieldsOf(field.selectionSet, collect);
      else if (field.name.value === "edges") {
        fieldsOf(field.selectionSet, (edgeField) => {
          if (edgeField.name.value === "node") fieldsOf(edgeField.selectionSet, collect);
        });
      }
    });
  }
  return names;
}

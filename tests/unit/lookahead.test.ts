// selectedNodeFields reads which fields an operation selects on a
// connection's nodes, from the connection field's selection: through `nodes`
// and `edges { node }`, fragments and inline fragments, honouring @skip and
// @include with the operation's variables.
import { Kind, parse, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode } from "graphql";
import { describe, expect, it } from "vitest";
import { selectedNodeFields } from "../../src/pagination/lookahead.js";

/** The info graphql-js would hand the resolver of the first `todos` field in `document`. */
function infoFor(document: string, variableValues: Record<string, unknown> = {}) {
  const parsed = parse(document);
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const definition of parsed.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  }
  const operation = parsed.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const list = operation.selectionSet.selections[0] as FieldNode;
  const todos = list.selectionSet!.selections.find((s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === "todos")!;
  return { fieldNodes: [todos], fragments, variableValues };
}

describe("selectedNodeFields", () => {
  it("collects the fields under nodes and edges.node, through fragments and aliases", () => {
    const info = infoFor(`
      query { list(id: "l") { todos(first: 5) {
        totalCount
        nodes { id ...Owned }
        items: edges { cursor node { ... on Todo { title } } }
      } } }
      fragment Owned on Todo { owner { id } }
    `);
    expect([...selectedNodeFields(info)].sort()).toEqual(["id", "owner", "title"]);
  });

  it("leaves out what @skip and @include leave out, with the operation's variables", () => {
    const document = `
      query ($withOwner: Boolean!) { list(id: "l") { todos {
        nodes { id owner @include(if: $withOwner) { id } list @skip(if: true) { id } }
      } } }
    `;
    expect([...selectedNodeFields(infoFor(document, { withOwner: false }))]).toEqual(["id"]);
    expect([...selectedNodeFields(infoFor(document, { withOwner: true }))].sort()).toEqual(["id", "owner"]);
  });

  it("finds nothing when only the count or the page info is selected", () => {
    expect(selectedNodeFields(infoFor(`{ list(id: "l") { todos { totalCount pageInfo { hasNextPage } } } }`)).size).toBe(0);
  });
});

// Which subscription selections share one execution per event among all
// their subscribers (src/realtime/execution.ts): only those that read leaf
// fields of the event and of the row it carries. Anything that reaches past
// the row (its owner, its list, a connection) depends on the viewer and is
// executed per viewer.
import { getNamedType, isLeafType, parse } from "graphql";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { describe, expect, it } from "vitest";
import { readsOnlyTheEventRow } from "../../src/realtime/execution.js";
import { loadTypeDefs, resolvers } from "../../src/schema.js";

const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
const shares = (document: string) => readsOnlyTheEventRow(schema, parse(document));

describe("readsOnlyTheEventRow", () => {
  it("shares leaf fields of the event and of its todo or list, through fragments, aliases and __typename", () => {
    expect(shares(`subscription { todoChanged(listId: "l") { kind todoId listId cursor todo { id title completed completedAt createdAt updatedAt } } }`)).toBe(true);
    expect(
      shares(`subscription ($s: ID!) { spaceActivity(spaceId: $s) {
        __typename
        ... on TodoEvent { kind cursor t: todo { __typename id name: title } }
        ...L
      } }
      fragment L on ListEvent { kind spaceId list { id title private } }`),
    ).toBe(true);
  });

  it("executes per viewer anything past the row: owner, list, space, connections", () => {
    expect(shares(`subscription { todoChanged(listId: "l") { todo { id owner { id } } } }`)).toBe(false);
    expect(shares(`subscription { todoChanged(listId: "l") { todo { list { id } } } }`)).toBe(false);
    expect(shares(`subscription ($s: ID!) { spaceActivity(spaceId: $s) { ... on ListEvent { list { space { id } } } } }`)).toBe(false);
    expect(shares(`subscription ($s: ID!) { spaceActivity(spaceId: $s) { ... on ListEvent { list { todos { totalCount } } } } }`)).toBe(false);
    expect(shares(`subscription ($s: ID!) { spaceActivity(spaceId: $s) { ... on TodoEvent { todo { ...Owner } } } } fragment Owner on Todo { owner { email } }`)).toBe(false);
  });

  it("refuses what it cannot see through: an unknown fragment, a query", () => {
    expect(shares(`subscription { todoChanged(listId: "l") { ...Missing } }`)).toBe(false);
    expect(shares(`query { me { id } }`)).toBe(false);
  });
});

describe("the leaf fields of Todo and List", () => {
  // Shared results are computed in the first subscriber's context: a leaf
  // resolver that read the context (the viewer, a loader) would leak it.
  it("are computed from the row alone: no resolver of theirs takes more than the parent", () => {
    for (const typeName of ["Todo", "List", "TodoEvent", "ListEvent"]) {
      const type = schema.getType(typeName) as import("graphql").GraphQLObjectType;
      const own = (resolvers as Record<string, Record<string, unknown>>)[typeName] ?? {};
      for (const [name, field] of Object.entries(type.getFields())) {
        if (!isLeafType(getNamedType(field.type))) continue;
        const resolver = own[name];
        if (resolver === undefined) continue;
        // TodoEvent/ListEvent.cursor enciphers the event id with the deployment's key: the same for every viewer.
        if (name === "cursor") continue;
        expect(typeof resolver === "function" && resolver.length <= 1, `${typeName}.${name} reads more than its parent`).toBe(true);
      }
    }
  });
});

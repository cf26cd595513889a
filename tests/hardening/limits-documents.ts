// Operations built to sit exactly on an operation limit (or one past it), for
// the limit tests over HTTP and WebSocket and for bench/limits.ts. Each
// mutation creates a space if it runs, so a rejected one provably wrote
// nothing; slugs are 4–16 letters or digits.
import { Lexer, Source, TokenKind } from "graphql";

const createSpace = (slug: string) => `createSpace(input: { name: "Limit test", slug: "${slug}" })`;

/**
 * A createSpace mutation of exactly `depth` levels as GraphQL Armor counts
 * them: the root field, `depth - 2` nested members/space levels, and the leaf.
 */
export function depthMutation(depth: number, slug: string): string {
  let selection = "id";
  for (let level = depth - 3; level >= 0; level--) {
    selection = `${level % 2 === 0 ? "members" : "space"} { ${selection} }`;
  }
  return `mutation { ${createSpace(slug)} { ${selection} } }`;
}

/** `count` aliased fields on the created space. */
export function aliasesMutation(count: number, slug: string): string {
  const fields = Array.from({ length: count }, (_, i) => `a${i}: id`).join(" ");
  return `mutation { ${createSpace(slug)} { ${fields} } }`;
}

/** `count` @include directives on the created space's fields. */
export function directivesMutation(count: number, slug: string): string {
  const fields = Array.from({ length: count }, () => "id @include(if: true)").join(" ");
  return `mutation { ${createSpace(slug)} { id ${fields} } }`;
}

/**
 * `count` root fields: one createSpace each (aliased, so `count` must stay
 * within the alias limit too), slugs `${prefix}0`, `${prefix}1`, ...
 */
export function rootFieldsMutation(count: number, prefix: string): string {
  const fields = Array.from({ length: count }, (_, i) => `s${i}: ${createSpace(`${prefix}${i}`)} { id }`).join(" ");
  return `mutation { ${fields} }`;
}

/** Lexical tokens as graphql-js's parser counts them against maxTokens (comments and <EOF> excluded). */
export function countTokens(document: string): number {
  const lexer = new Lexer(new Source(document));
  let count = 0;
  for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) count++;
  return count;
}

/**
 * A document of exactly `tokens` lexical tokens whose operation "Create"
 * creates a space. The padding is other small operations, not repeated
 * fields: graphql-js's OverlappingFieldsCanBeMerged rule compares same-named
 * fields pairwise and aborts validation past a budget, which ~2000 copies of
 * one field would exceed.
 */
export function tokensMutation(tokens: number, slug: string): { query: string; operationName: string } {
  const main = `mutation Create { ${createSpace(slug)} { id } }`;
  const missing = tokens - countTokens(main);
  if (missing < 0) throw new Error(`a createSpace mutation needs at least ${countTokens(main)} tokens`);
  // `query Pn { __typename }` is 5 tokens; the remainder pads the selection.
  const operations = Array.from({ length: Math.floor(missing / 5) }, (_, i) => `query P${i} { __typename }`);
  const query = `mutation Create { ${createSpace(slug)} { id${" id".repeat(missing % 5)} } } ${operations.join(" ")}`;
  return { query, operationName: "Create" };
}

/**
 * A createSpace mutation whose cost (src/http/cost.ts) is `4 + $todos`:
 * createSpace 1 + lists 1 + 1 × (nodes 1 + todos 1 + $todos × nodes 1).
 * The page size comes from a variable, so a cost check that only read literal
 * arguments would see 5. A new space has no lists, so todos never resolves
 * and an oversized `first` there never fails the operation itself.
 */
export function costMutation(slug: string): { query: string; variables: (cost: number) => Record<string, unknown> } {
  return {
    query: `mutation ($todos: Int!) { ${createSpace(slug)} { lists(first: 1) { nodes { todos(first: $todos) { nodes { id } } } } } }`,
    variables: (cost) => ({ todos: cost - 4 }),
  };
}

/**
 * The cost.ts header example, relying on the schema defaults (spaces 20,
 * lists 20, todos 50): 20 841 per copy.
 */
export function defaultsCostQuery(copies: number): string {
  const tree = "spaces { nodes { lists { nodes { todos { nodes { id } } } } } }";
  return `{ ${Array.from({ length: copies }, (_, i) => `c${i}: ${tree}`).join(" ")} }`;
}

export const DEFAULTS_COST_PER_COPY = 20_841;

// Seeded generators of malformed (and a few well-formed) HTTP requests and
// WebSocket frames for fuzz.test.ts. Same seed, same requests: a failure
// found in CI is replayed by running with its FUZZ_SEED.

/** mulberry32: small, fast, good enough to spread test inputs. */
export function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}

export type Random = ReturnType<typeof createRandom>;

export interface Fixture {
  /** Tokens: the owner of everything below, a stranger, and none. */
  ownerToken: string;
  strangerToken: string;
  spaceId: string;
  listId: string;
  todoId: string;
  memberId: string;
  userId: string;
  email: string;
}

export interface FuzzRequest {
  kind: string;
  method: string;
  /** Appended to the GraphQL path (a query string for GET). */
  search?: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

// ------------------------------------------------------------------ values

const UNICODE_SAMPLES = [
  "\u0000",
  "\u0007",
  "\ud800", // lone surrogate
  "\udfff",
  "\ufeff",
  "\u202e", // right-to-left override
  "\u200b",
  "ǅ",
  "𝕏",
  "😀",
  "👨‍👩‍👧‍👦",
  "ﷺ",
  "\u0301\u0301\u0301",
  "\\",
  '"',
  "'",
  "`",
  "${x}",
  "%s%n",
  "../../etc/passwd",
  "<script>",
  "' OR 1=1 --",
  "\r\n",
  "Ω",
  "中文",
];

export function unicodeGarbage(random: Random, maxLength = 40): string {
  let out = "";
  const length = random.int(0, maxLength);
  while (out.length < length) {
    out += random.chance(0.5) ? random.pick(UNICODE_SAMPLES) : String.fromCharCode(random.int(0, 0xffff));
  }
  return out;
}

function randomIdLike(random: Random, fixture: Fixture): string {
  return random.pick([
    fixture.spaceId,
    fixture.listId,
    fixture.todoId,
    fixture.memberId,
    fixture.userId,
    "",
    "0",
    "-1",
    "cmxxxxxxxxxxxxxxxxxxxxxxx",
    "x".repeat(random.int(1, 300)),
    unicodeGarbage(random, 30),
    `${fixture.spaceId}'`,
    fixture.listId.toUpperCase(),
    fixture.todoId.slice(0, -1),
  ]);
}

function randomCursor(random: Random): string {
  return random.pick([
    "",
    "zzz",
    "====",
    Buffer.from(unicodeGarbage(random, 20)).toString("base64"),
    Buffer.from(`${random.int(-1e15, 1e15)}|x`).toString("base64url"),
    Buffer.from(JSON.stringify({ t: "9999-99-99", id: "x" })).toString("base64"),
    Buffer.from("8640000000000001:abc").toString("base64url"),
    "a".repeat(random.int(1, 2000)),
    unicodeGarbage(random, 20),
  ]);
}

/** Any JSON value, mostly small, sometimes nested or odd. */
export function randomJson(random: Random, fixture: Fixture, depth = 0): unknown {
  const roll = random.int(0, depth > 2 ? 8 : 11);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick([0, -1, 1, 100, 101, 2 ** 31, -(2 ** 31) - 1, 1e308, 0.5, -0.0, Number.MAX_SAFE_INTEGER]);
    case 3:
      return unicodeGarbage(random);
    case 4:
      return randomIdLike(random, fixture);
    case 5:
      return randomCursor(random);
    case 6:
      return random.pick(["USER", "ADMIN", "OWNER", "user", ""]);
    case 7:
      return `${random.pick(["a", "", "x".repeat(70), "bad"])}@${random.pick(["example.com", "", "x", "ex ample.com"])}`;
    case 8:
      return random.pick(["true", "false", "null", "1", "[]", "{}"]);
    case 9:
      return Array.from({ length: random.int(0, 4) }, () => randomJson(random, fixture, depth + 1));
    default: {
      const keys = ["name", "slug", "title", "email", "password", "image", "completed", "private", "listId", "spaceId", "x", "__proto__", "constructor"];
      return Object.fromEntries(
        Array.from({ length: random.int(0, 4) }, () => [random.pick(keys), randomJson(random, fixture, depth + 1)]),
      );
    }
  }
}

// ------------------------------------------------------------- operations

interface Operation {
  query: string;
  variables: (random: Random, fixture: Fixture) => Record<string, unknown>;
}

const SPACE = "id name slug viewerRole owner { id } members { id role user { id email } }";
const LIST = "id title private owner { id } space { id }";
const TODO = "id title completed completedAt owner { id } list { id }";

/** The API's operations with variables that are plausible, wrong, or garbage. */
const OPERATIONS: Operation[] = [
  { query: "{ me { id email name image createdAt } }", variables: () => ({}) },
  { query: "query ($id: ID!) { user(id: $id) { id email } }", variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)) }) },
  {
    query: `query ($first: Int, $after: String) { spaces(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${SPACE} } } } }`,
    variables: (r, f) => ({ first: anyOr(r, f, r.int(-5, 120)), after: anyOr(r, f, randomCursor(r)) }),
  },
  {
    query: `query ($id: ID, $slug: String) { space(id: $id, slug: $slug) { ${SPACE} lists(first: 3) { nodes { ${LIST} } } } }`,
    variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)), slug: anyOr(r, f, unicodeGarbage(r, 20)) }),
  },
  {
    query: `query ($id: ID!, $first: Int, $after: String, $completed: Boolean) { list(id: $id) { ${LIST} todos(first: $first, after: $after, completed: $completed) { totalCount edges { cursor node { ${TODO} } } } } }`,
    variables: (r, f) => ({ id: anyOr(r, f, f.listId), first: anyOr(r, f, r.int(-2, 150)), after: anyOr(r, f, randomCursor(r)), completed: anyOr(r, f, r.chance(0.5)) }),
  },
  { query: `query ($id: ID!) { todo(id: $id) { ${TODO} } }`, variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)) }) },
  {
    query: "mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id } } }",
    variables: (r, f) => ({ input: anyOr(r, f, { email: randomJson(r, f), password: randomJson(r, f), name: randomJson(r, f) }) }),
  },
  {
    query: "mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { token } }",
    variables: (r, f) => ({ email: anyOr(r, f, f.email), password: anyOr(r, f, unicodeGarbage(r, 80)) }),
  },
  { query: "mutation ($input: UpdateMeInput!) { updateMe(input: $input) { id name image } }", variables: (r, f) => ({ input: anyOr(r, f, { name: randomJson(r, f), image: randomJson(r, f) }) }) },
  {
    query: `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { ${SPACE} } }`,
    variables: (r, f) => ({ input: anyOr(r, f, { name: anyOr(r, f, unicodeGarbage(r, 60)), slug: anyOr(r, f, unicodeGarbage(r, 20)) }) }),
  },
  {
    query: `mutation ($id: ID!, $input: UpdateSpaceInput!) { updateSpace(id: $id, input: $input) { ${SPACE} } }`,
    variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)), input: anyOr(r, f, { name: randomJson(r, f), slug: randomJson(r, f) }) }),
  },
  { query: "mutation ($id: ID!) { deleteSpace(id: $id) }", variables: (r, f) => ({ id: r.chance(0.9) ? randomIdLike(r, f).replace(f.spaceId, "nope") : randomJson(r, f) }) },
  {
    query: "mutation ($spaceId: ID!, $email: String!, $role: SpaceRole) { addSpaceMember(spaceId: $spaceId, email: $email, role: $role) { id role } }",
    variables: (r, f) => ({ spaceId: anyOr(r, f, randomIdLike(r, f)), email: anyOr(r, f, randomJson(r, f)), role: anyOr(r, f, r.pick(["USER", "ADMIN"])) }),
  },
  {
    query: "mutation ($id: ID!, $role: SpaceRole!) { updateSpaceMember(id: $id, role: $role) { id role } }",
    variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)), role: anyOr(r, f, r.pick(["USER", "ADMIN"])) }),
  },
  { query: "mutation ($id: ID!) { removeSpaceMember(id: $id) }", variables: (r, f) => ({ id: anyOr(r, f, randomIdLike(r, f)) }) },
  {
    query: `mutation ($input: CreateListInput!) { createList(input: $input) { ${LIST} } }`,
    variables: (r, f) => ({ input: anyOr(r, f, { spaceId: anyOr(r, f, f.spaceId), title: anyOr(r, f, unicodeGarbage(r, 120)), private: anyOr(r, f, r.chance(0.5)) }) }),
  },
  {
    query: `mutation ($id: ID!, $input: UpdateListInput!) { updateList(id: $id, input: $input) { ${LIST} } }`,
    variables: (r, f) => ({ id: anyOr(r, f, f.listId), input: anyOr(r, f, { title: randomJson(r, f), private: randomJson(r, f) }) }),
  },
  { query: "mutation ($id: ID!) { deleteList(id: $id) }", variables: (r, f) => ({ id: randomIdLike(r, f).replace(f.listId, "nope") }) },
  {
    query: `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { ${TODO} } }`,
    variables: (r, f) => ({ input: anyOr(r, f, { listId: anyOr(r, f, f.listId), title: anyOr(r, f, unicodeGarbage(r, 300)) }) }),
  },
  {
    query: `mutation ($id: ID!, $input: UpdateTodoInput!) { updateTodo(id: $id, input: $input) { ${TODO} } }`,
    variables: (r, f) => ({ id: anyOr(r, f, f.todoId), input: anyOr(r, f, { title: randomJson(r, f), completed: randomJson(r, f) }) }),
  },
  { query: "mutation ($id: ID!) { deleteTodo(id: $id) }", variables: (r, f) => ({ id: randomIdLike(r, f).replace(f.todoId, "nope") }) },
];

/** Usually `value`, sometimes any JSON value at all. */
function anyOr(random: Random, fixture: Fixture, value: unknown): unknown {
  return random.chance(0.25) ? randomJson(random, fixture) : value;
}

// ----------------------------------------------------------------- requests

/** encodeURIComponent, which throws on a lone surrogate: those become U+FFFD first. */
const encode = (value: string) => encodeURIComponent(value.replace(/[\ud800-\udfff]/g, "\ufffd"));

const GRAPHQL_WORDS = [
  "{", "}", "(", ")", "[", "]", ":", "=", "@", "$", "!", "...", "|", "&", ",",
  "query", "mutation", "subscription", "fragment", "on", "me", "id", "spaces", "nodes", "lists", "todos", "space",
  "user", "list", "todo", "createSpace", "input", "first", "after", "__typename", "__schema", "__type", "true", "null",
  '"s"', '"""block"""', "1", "-1", "1.5e10", "$x", "@include(if: true)", "@skip", "@deprecated", "#comment\n",
];

function randomDocument(random: Random): string {
  return Array.from({ length: random.int(0, 60) }, () => random.pick(GRAPHQL_WORDS)).join(random.pick([" ", "", "\n"]));
}

function jsonBody(query: unknown, variables?: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ query, ...(variables === undefined ? {} : { variables }), ...extra });
}

const JSON_HEADERS = { "content-type": "application/json" };

type Generator = (random: Random, fixture: Fixture) => FuzzRequest;

function operationRequest(random: Random, fixture: Fixture): { query: string; variables: Record<string, unknown> } {
  const operation = random.pick(OPERATIONS);
  return { query: operation.query, variables: operation.variables(random, fixture) };
}

const GENERATORS: [weight: number, kind: string, generate: Generator][] = [
  [
    10,
    "invalid JSON",
    (random, fixture) => {
      const valid = jsonBody(operationRequest(random, fixture).query);
      const body = random.pick([
        valid.slice(0, random.int(0, valid.length - 1)),
        valid.replace(/"/g, "'"),
        `${valid},`,
        `\ufeff${valid}`,
        `{"query": "{ me { id } }", }`,
        "{query: 1}",
        "NaN",
        "undefined",
        unicodeGarbage(random, 200),
        `{"query": "{ me { id } }"}{"query": "x"}`,
        "\u0000".repeat(random.int(1, 10)),
      ]);
      return { kind: "invalid JSON", method: "POST", headers: JSON_HEADERS, body };
    },
  ],
  [
    8,
    "wrong content type",
    (random, fixture) => {
      const contentType = random.pick([
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json;;;",
        "a/b/c",
        "json",
        "*/*",
        "",
        "application/graphql-response+json",
      ]);
      const body = random.chance(0.5) ? jsonBody(operationRequest(random, fixture).query) : "query=%7Bme%7Bid%7D%7D";
      const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
      return { kind: "wrong content type", method: "POST", headers, body };
    },
  ],
  [
    4,
    "empty body",
    (random) => ({
      kind: "empty body",
      method: "POST",
      headers: random.chance(0.7) ? JSON_HEADERS : {},
      body: random.pick(["", " ", "{}", "[]", "null", "\n\n", '""', '{"query": ""}', '{"query": null}']),
    }),
  ],
  [
    1,
    "huge body",
    (random) => ({
      kind: "huge body",
      method: "POST",
      headers: JSON_HEADERS,
      // Past the 2mb limit of the fuzzed server: refused unread (413).
      body: random.chance(0.5) ? " ".repeat(2_200_000) : jsonBody("{ me { id } }", { pad: "x".repeat(2_200_000) }),
    }),
  ],
  [
    5,
    "deep JSON",
    (random) => {
      const depth = random.int(100, 40_000);
      const [open, close] = random.pick([
        ["[", "]"],
        ['{"a":', "}"],
      ]);
      const nested = `${open.repeat(depth)}${open === "[" ? "" : "1"}${close.repeat(depth)}`;
      const body = random.pick([
        `{"query":"{ me { id } }","variables":{"x":${nested}}}`,
        `{"query":"query ($x: [ID]) { me { id } }","variables":{"x":${nested}}}`,
        `{"query":"{ me { id } }","extensions":${nested}}`,
        nested,
      ]);
      return { kind: "deep JSON", method: "POST", headers: JSON_HEADERS, body };
    },
  ],
  [
    6,
    "deep GraphQL",
    (random) => {
      const depth = random.int(5, 1200);
      const query = random.pick([
        `{ spaces { nodes { ${"members { space { ".repeat(depth)}id${" } }".repeat(depth)} } } }`,
        `${"{ me ".repeat(depth)}${"}".repeat(depth)}`,
        `{ user(id: ${"[".repeat(depth)}"x"${"]".repeat(depth)}) { id } }`,
        `{ user(id: ${'{a: '.repeat(depth)}1${"}".repeat(depth)}) { id } }`,
        `{ spaces { nodes { ${"... on Space { ".repeat(depth)}id${" }".repeat(depth)} } } }`,
      ]);
      return { kind: "deep GraphQL", method: "POST", headers: JSON_HEADERS, body: jsonBody(query) };
    },
  ],
  [
    6,
    "alias bomb",
    (random) => {
      const n = random.int(10, 3000);
      const levels = random.int(2, 30);
      const query = random.pick([
        `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(" ")} }`,
        `{ spaces { nodes { ${Array.from({ length: n }, (_, i) => `l${i}: lists(first: 100) { totalCount }`).join(" ")} } } }`,
        // Fragments spreading the next one twice: 2^levels fields if expanded.
        `{ ...F0 } ${Array.from({ length: levels }, (_, i) => (i === levels - 1 ? `fragment F${i} on Query { a: me { id } }` : `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`)).join(" ")}`,
        `{ spaces(first: 100) { nodes { ...L0 } } } ${Array.from({ length: levels }, (_, i) => (i === levels - 1 ? `fragment L${i} on Space { id }` : `fragment L${i} on Space { ...L${i + 1} lists(first: 100) { nodes { space { ...L${i + 1} } } } }`)).join(" ")}`,
        `{ ${"me @include(if: true) ".repeat(Math.min(n, 400))}{ id } }`,
        `fragment A on Query { ...B } fragment B on Query { ...A } { ...A }`,
      ]);
      return { kind: "alias bomb", method: "POST", headers: JSON_HEADERS, body: jsonBody(query) };
    },
  ],
  [
    12,
    "wrong variable types",
    (random, fixture) => {
      const { query } = operationRequest(random, fixture);
      const names = [...query.matchAll(/\$(\w+)/g)].map((m) => m[1]!);
      const variables = random.chance(0.1)
        ? randomJson(random, fixture)
        : Object.fromEntries(names.map((name) => [name, randomJson(random, fixture)]));
      return { kind: "wrong variable types", method: "POST", headers: JSON_HEADERS, body: jsonBody(query, variables) };
    },
  ],
  [
    6,
    "unicode garbage",
    (random, fixture) => {
      const { query, variables } = operationRequest(random, fixture);
      const garbled = random.chance(0.5)
        ? query.replace(/\b(id|title|name)\b/, unicodeGarbage(random, 8))
        : `${unicodeGarbage(random, 10)}${query}${unicodeGarbage(random, 10)}`;
      const body = random.chance(0.5)
        ? jsonBody(garbled, variables, { operationName: random.chance(0.3) ? unicodeGarbage(random, 10) : undefined })
        : jsonBody(query, Object.fromEntries(Object.keys(variables).map((k) => [k, unicodeGarbage(random, 200)])));
      return { kind: "unicode garbage", method: "POST", headers: { "content-type": random.pick(["application/json", "application/json; charset=utf-8"]) }, body };
    },
  ],
  [
    1,
    "megabyte string",
    (random, fixture) => {
      // 1–1.8 MB fits the 2mb body limit; 2.5 MB does not.
      const size = random.chance(0.75) ? random.int(1_000_000, 1_800_000) : 2_500_000;
      const big = random.pick(["x", "é", "😀"]).repeat(Math.floor(size / 4));
      const query = random.pick([
        "mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id } }",
        "mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }",
        "mutation ($input: UpdateMeInput!) { updateMe(input: $input) { id } }",
        "mutation ($input: SignUpInput!) { signUp(input: $input) { token } }",
        "query ($id: ID!) { list(id: $id) { id } }",
        "query ($after: String) { spaces(after: $after) { totalCount } }",
      ]);
      const variables = {
        input: { listId: fixture.listId, title: big, name: big, slug: big, image: big, email: `${big}@example.com`, password: big },
        id: big,
        after: big,
      };
      const picked: Record<string, unknown> = Object.fromEntries([...query.matchAll(/\$(\w+)/g)].map((m) => [m[1]!, variables[m[1] as keyof typeof variables]]));
      if ("input" in picked) picked.input = pickInputFields(query, variables.input);
      return { kind: "megabyte string", method: "POST", headers: JSON_HEADERS, body: jsonBody(query, picked) };
    },
  ],
  [
    10,
    "invalid ids and cursors",
    (random, fixture) => {
      const query = random.pick([
        `{ list(id: ${JSON.stringify(randomIdLike(random, fixture))}) { id todos(after: ${JSON.stringify(randomCursor(random))}) { totalCount } } }`,
        `{ spaces(after: ${JSON.stringify(randomCursor(random))}) { totalCount } }`,
        `{ space(id: ${JSON.stringify(randomIdLike(random, fixture))}) { id lists(after: ${JSON.stringify(randomCursor(random))}) { totalCount } } }`,
        `{ todo(id: ${JSON.stringify(randomIdLike(random, fixture))}) { id } }`,
        `{ user(id: ${JSON.stringify(randomIdLike(random, fixture))}) { id } }`,
        `{ space(slug: ${JSON.stringify(unicodeGarbage(random, 20))}) { id } }`,
        `{ space { id } }`,
        `{ space(id: "${fixture.spaceId}", slug: "x") { id } }`,
      ]);
      return { kind: "invalid ids and cursors", method: "POST", headers: JSON_HEADERS, body: jsonBody(query) };
    },
  ],
  [
    14,
    "random operation",
    (random, fixture) => {
      const { query, variables } = operationRequest(random, fixture);
      return { kind: "random operation", method: "POST", headers: JSON_HEADERS, body: jsonBody(query, variables) };
    },
  ],
  [
    5,
    "random document",
    (random) => ({ kind: "random document", method: "POST", headers: JSON_HEADERS, body: jsonBody(randomDocument(random)) }),
  ],
  [
    8,
    "odd GET",
    (random, fixture) => {
      const parts: string[] = [];
      const count = random.int(0, 5);
      for (let i = 0; i < count; i++) {
        const key = random.pick(["query", "variables", "operationName", "extensions", "query", "x", "", "query[]", "%zz", "variables"]);
        const value = random.pick([
          encode(operationRequest(random, fixture).query),
          encode(randomDocument(random)),
          encode(JSON.stringify(randomJson(random, fixture))),
          encode(unicodeGarbage(random, 30)),
          "%zz",
          "%",
          "%00",
          "%ed%a0%80", // an encoded lone surrogate
          "+",
          "",
          "{",
          "mutation%7BdeleteTodo(id:%22x%22)%7D",
          "x".repeat(random.int(1, 2000)),
        ]);
        parts.push(random.chance(0.1) ? key : `${key}=${value}`);
      }
      const headers: Record<string, string> = {};
      if (random.chance(0.6)) headers["apollo-require-preflight"] = "true";
      if (random.chance(0.3)) headers.accept = random.pick(["application/json", "application/graphql-response+json", "*/*", "text/plain"]);
      if (random.chance(0.2)) headers["content-type"] = random.pick(["application/json", "text/plain"]);
      return { kind: "odd GET", method: "GET", search: `?${parts.join(random.pick(["&", "&&", ";"]))}`, headers };
    },
  ],
  [
    6,
    "odd headers",
    (random, fixture) => {
      const headers: Record<string, string> = { ...JSON_HEADERS };
      const which = random.int(0, 4);
      if (which === 0) {
        headers.accept = random.pick([
          "application/xml",
          "*/*;q=0",
          "application/json;q=abc",
          "application/graphql-response+json;q=0, application/json;q=0",
          "application/*",
          ",,,",
          "text/event-stream",
          "multipart/mixed",
          unicodeGarbage(random, 20).replace(/[^\x20-\x7e]/g, "x"),
        ]);
      } else if (which === 1) {
        headers.authorization = random.pick([
          "Bearer",
          "Bearer ",
          "Bearer a.b.c",
          `Bearer ${fixture.ownerToken}x`,
          `Bearer ${fixture.ownerToken} ${fixture.ownerToken}`,
          `bearer ${fixture.strangerToken}`,
          `Basic ${Buffer.from("a:b").toString("base64")}`,
          `Bearer ${"x".repeat(random.int(100, 7000))}`,
          `Bearer ${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${Buffer.from("{}").toString("base64url")}.`,
        ]);
      } else if (which === 2) {
        headers["content-encoding"] = random.pick(["gzip", "deflate", "br", "identity", "x-unknown", "gzip, gzip"]);
      } else if (which === 3) {
        headers["content-type"] = random.pick(["application/json; charset=utf-8", "application/json; charset=UTF8", "application/json; charset=\"utf-8\"", "application/json; boundary=x"]);
      } else {
        headers["x-apollo-operation-name"] = unicodeGarbage(random, 10).replace(/[^\x20-\x7e]/g, "x");
      }
      return { kind: "odd headers", method: "POST", headers, body: jsonBody(operationRequest(random, fixture).query) };
    },
  ],
  [
    4,
    "other methods and batches",
    (random, fixture) => {
      if (random.chance(0.5)) {
        const method = random.pick(["PUT", "PATCH", "DELETE", "OPTIONS"]);
        return { kind: "other methods and batches", method, headers: JSON_HEADERS, body: method === "OPTIONS" ? undefined : jsonBody("{ me { id } }") };
      }
      const items = Array.from({ length: random.int(0, 20) }, () => ({ query: operationRequest(random, fixture).query }));
      return { kind: "other methods and batches", method: "POST", headers: JSON_HEADERS, body: JSON.stringify(items) };
    },
  ],
  [
    4,
    "odd request fields",
    (random, fixture) => {
      const { query, variables } = operationRequest(random, fixture);
      const body = random.pick([
        JSON.stringify({ query: randomJson(random, fixture) }),
        JSON.stringify({ query, variables: JSON.stringify(variables) }),
        JSON.stringify({ query, operationName: randomJson(random, fixture) }),
        JSON.stringify({ query, extensions: randomJson(random, fixture) }),
        JSON.stringify({ query, extensions: { persistedQuery: { version: random.pick([1, 2, "1"]), sha256Hash: random.pick(["abc", "0".repeat(64), randomJson(random, fixture)]) } } }),
        JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
        JSON.stringify({ queryId: "x", documentId: "y" }),
        JSON.stringify({ query: `${query} ${query}` }),
        JSON.stringify({ query: `query A { me { id } } query A { me { id } }`, operationName: "A" }),
        JSON.stringify({ query: `query A { me { id } } query B { me { id } }` }),
        JSON.stringify({ query: "query ($x: Int = 1) { me { id } }", variables: { x: "1" } }),
        JSON.stringify({ query: "query ($x: Undefined) { me { id } }" }),
        JSON.stringify({ query: "subscription { todoChanged(listId: \"x\") { kind } }" }),
        JSON.stringify({ query: `{ __schema { types { name } } }` }),
        JSON.stringify({ query: `{ __type(name: "Space") { fields { name } } }` }),
        JSON.stringify({ query: `{ me { id } } # ${"comment ".repeat(random.int(1, 8000))}` }),
      ]);
      return { kind: "odd request fields", method: "POST", headers: JSON_HEADERS, body };
    },
  ],
];

function pickInputFields(query: string, input: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, string[]> = {
    CreateTodoInput: ["listId", "title"],
    CreateSpaceInput: ["name", "slug"],
    UpdateMeInput: ["name", "image"],
    SignUpInput: ["email", "password", "name"],
  };
  const type = Object.keys(fields).find((name) => query.includes(name));
  return Object.fromEntries((type ? fields[type]! : []).map((key) => [key, input[key]]));
}

const TOTAL_WEIGHT = GENERATORS.reduce((sum, [weight]) => sum + weight, 0);

/** One random request; a token (owner, stranger, none, or garbage) is added to most. */
export function generateRequest(random: Random, fixture: Fixture): FuzzRequest {
  let roll = random.next() * TOTAL_WEIGHT;
  let generator = GENERATORS[0]![2];
  for (const [weight, , generate] of GENERATORS) {
    roll -= weight;
    if (roll < 0) {
      generator = generate;
      break;
    }
  }
  const request = generator(random, fixture);
  if (!("authorization" in request.headers)) {
    const token = random.pick([fixture.ownerToken, fixture.ownerToken, fixture.strangerToken, undefined, undefined]);
    if (token) request.headers.authorization = `Bearer ${token}`;
  }
  if (!("accept" in request.headers) && random.chance(0.5)) {
    request.headers.accept = random.pick(["application/json", "application/graphql-response+json", "application/graphql-response+json, application/json;q=0.9"]);
  }
  return request;
}

// -------------------------------------------------------------- WebSocket

/** A frame for a graphql-transport-ws socket: mostly broken, sometimes valid. */
export function generateFrame(random: Random, fixture: Fixture): { data: string | Buffer; binary?: boolean } {
  const { query, variables } = operationRequest(random, fixture);
  const id = random.pick(["1", "2", "", "x".repeat(200), unicodeGarbage(random, 5)]);
  const frames: (() => { data: string | Buffer; binary?: boolean })[] = [
    () => ({ data: unicodeGarbage(random, 100) }),
    () => ({ data: JSON.stringify(randomJson(random, fixture)) }),
    () => ({ data: JSON.stringify({ type: random.pick(["connection_init", "subscribe", "complete", "ping", "pong", "start", "stop", "connection_terminate", "next", "error"]), id, payload: randomJson(random, fixture) }) }),
    () => ({ data: JSON.stringify({ type: "subscribe", id, payload: { query, variables } }) }),
    () => ({ data: JSON.stringify(random.pick([{ type: "next", id, payload: { data: null } }, { type: "connection_ack" }, { type: "error", id, payload: [{ message: "x" }] }])) }),
    () => ({ data: JSON.stringify({ type: "subscribe", id, payload: { query: randomDocument(random) } }) }),
    () => ({ data: JSON.stringify({ type: "connection_init", payload: { authorization: random.pick([`Bearer ${fixture.ownerToken}`, "Bearer x", randomJson(random, fixture)]) } }) }),
    () => ({ data: Buffer.from(Array.from({ length: random.int(1, 200) }, () => random.int(0, 255))), binary: random.chance(0.5) }),
    () => ({ data: JSON.stringify({ type: "subscribe", id: "big", payload: { query: "{ me { id } }", variables: { pad: "x".repeat(random.int(50_000, 3_000_000)) } } }) }),
  ];
  return random.pick(frames)();
}

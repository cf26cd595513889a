// Operation limits (src/http/limits.ts, cost.ts) and the HTTP body limits
// (body size, batching), over HTTP and graphql-ws: an operation exactly at a
// limit runs; one past it is refused before anything executes, with
// GRAPHQL_VALIDATION_FAILED and a message naming the limit and its value
// (shared/api/ERRORS.md). Every over-limit operation here is a mutation that
// would create a space if it ran: the refusal must report no SQL statement
// (GRAPHQL_QUERY_STATS) and leave the caller's space count unchanged.
import { gzipSync } from "node:zlib";
import { parse, getOperationAST, type FragmentDefinitionNode, Kind } from "graphql";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { operationCost } from "../../src/http/cost.js";
import { byteSize } from "../../src/config.js";
import { loadTypeDefs } from "../../src/schema.js";
import { signUp, startTestServer, type GraphQLResult } from "../helpers/server.js";
import {
  aliasesMutation,
  costMutation,
  countTokens,
  defaultsCostQuery,
  DEFAULTS_COST_PER_COPY,
  depthMutation,
  directivesMutation,
  rootFieldsMutation,
  tokensMutation,
} from "./limits-documents.js";
import { RawSocket } from "./wsProtocol-raw.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

interface Request {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

interface LimitCase {
  limit: string;
  env: string;
  /** A request exactly at `value` (`tag` makes its slugs unique). */
  at(value: number, tag: string): Request;
  /** The same request one past `value`. */
  over(value: number, tag: string): Request;
  message(value: number): string;
}

const cost = (tag: string) => costMutation(`cost${tag}`);

const LIMITS: LimitCase[] = [
  {
    limit: "depth",
    env: "LIMIT_MAX_DEPTH",
    at: (n, tag) => ({ query: depthMutation(n, `dep${tag}`) }),
    over: (n, tag) => ({ query: depthMutation(n + 1, `dep${tag}`) }),
    message: (n) => `Query depth limit of ${n} exceeded, found ${n + 1}.`,
  },
  {
    limit: "aliases",
    env: "LIMIT_MAX_ALIASES",
    at: (n, tag) => ({ query: aliasesMutation(n, `ali${tag}`) }),
    over: (n, tag) => ({ query: aliasesMutation(n + 1, `ali${tag}`) }),
    message: (n) => `Aliases limit of ${n} exceeded, found ${n + 1}.`,
  },
  {
    limit: "root fields",
    env: "LIMIT_MAX_ROOT_FIELDS",
    at: (n, tag) => ({ query: rootFieldsMutation(n, `root${tag}x`) }),
    over: (n, tag) => ({ query: rootFieldsMutation(n + 1, `root${tag}y`) }),
    message: (n) => `Root fields limit of ${n} exceeded, found ${n + 1}.`,
  },
  {
    limit: "directives",
    env: "LIMIT_MAX_DIRECTIVES",
    at: (n, tag) => ({ query: directivesMutation(n, `dir${tag}`) }),
    over: (n, tag) => ({ query: directivesMutation(n + 1, `dir${tag}`) }),
    message: (n) => `Directives limit of ${n} exceeded, found ${n + 1}.`,
  },
  {
    limit: "tokens",
    env: "LIMIT_MAX_TOKENS",
    at: (n, tag) => tokensMutation(n, `tok${tag}`),
    over: (n, tag) => tokensMutation(n + 1, `tok${tag}`),
    message: (n) => `Token limit of ${n} exceeded.`,
  },
  {
    limit: "cost (first from a variable)",
    env: "LIMIT_MAX_COST",
    at: (n, tag) => ({ query: cost(tag).query, variables: cost(tag).variables(n) }),
    over: (n, tag) => ({ query: cost(tag).query, variables: cost(tag).variables(n + 1) }),
    message: (n) => `Query cost limit of ${n} exceeded, found ${n + 1}.`,
  },
];

const DEFAULTS: Record<string, number> = {
  LIMIT_MAX_DEPTH: 12,
  LIMIT_MAX_ALIASES: 30,
  LIMIT_MAX_ROOT_FIELDS: 20,
  LIMIT_MAX_DIRECTIVES: 50,
  LIMIT_MAX_TOKENS: 2000,
  LIMIT_MAX_COST: 50_000,
};

// Small enough that every document above still fits the other limits.
const CUSTOM: Record<string, number> = {
  LIMIT_MAX_DEPTH: 6,
  LIMIT_MAX_ALIASES: 3,
  LIMIT_MAX_ROOT_FIELDS: 2,
  LIMIT_MAX_DIRECTIVES: 2,
  LIMIT_MAX_TOKENS: 100,
  LIMIT_MAX_COST: 100,
};

const GRAPHQL_RESPONSE = "application/graphql-response+json";

interface Caller {
  server: Server;
  token: string;
}

async function post(caller: Caller, body: unknown, accept = `${GRAPHQL_RESPONSE}, application/json`) {
  const response = await fetch(caller.server.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept, authorization: `Bearer ${caller.token}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, contentType: response.headers.get("content-type"), body: (await response.json()) as unknown };
}

async function spaceCount(caller: Caller): Promise<number> {
  const result = await caller.server.gql<{ spaces: { totalCount: number } }>("{ spaces(first: 0) { totalCount } }", undefined, caller.token);
  expect(result.errors).toBeUndefined();
  return result.data!.spaces.totalCount;
}

async function setUp(env: Record<string, string> = {}): Promise<Caller> {
  const server = await startTestServer({ env });
  const { token } = await signUp(server);
  return { server, token };
}

/** An error without its locations (the root fields limit points at the operation). */
const publicPart = (error: { message: string; extensions?: unknown }) => ({ message: error.message, extensions: error.extensions });

/** The request ran: no errors, and it created the spaces it names. */
async function expectRuns(caller: Caller, request: Request) {
  const before = await spaceCount(caller);
  const result = (await post(caller, request)).body as GraphQLResult<Record<string, unknown>>;
  expect(result.errors).toBeUndefined();
  const created = Object.keys(result.data ?? {}).length;
  expect(created).toBeGreaterThan(0);
  expect(await spaceCount(caller)).toBe(before + created);
}

/** Refused before execution: 400, one limit error, no data, no SQL, nothing written. */
async function expectRefused(caller: Caller, request: Request, message: string) {
  const before = await spaceCount(caller);
  const { status, contentType, body } = await post(caller, request);
  const result = body as GraphQLResult<unknown>;
  expect(status).toBe(400);
  expect(contentType).toContain(GRAPHQL_RESPONSE);
  expect(result.errors?.map(publicPart)).toEqual([{ message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }]);
  expect(result).not.toHaveProperty("data");
  expect(result.extensions?.queryStats?.sqlStatements).toBe(0);
  expect(await spaceCount(caller)).toBe(before);
}

/** A body of exactly `bytes` bytes that creates one space if it runs. */
function bodyOfSize(bytes: number, slug: string): string {
  const base = JSON.stringify({ query: rootFieldsMutation(1, slug), variables: { pad: "" } });
  const pad = bytes - Buffer.byteLength(base);
  if (pad < 0) throw new Error("body too small for the mutation");
  return JSON.stringify({ query: rootFieldsMutation(1, slug), variables: { pad: "x".repeat(pad) } });
}

describe("default limits over HTTP", () => {
  let caller: Caller;
  beforeAll(async () => {
    caller = await setUp();
  });
  afterAll(async () => {
    await caller.server.close();
  });

  it("starts with the documented defaults", () => {
    const { limits } = caller.server.config;
    expect(limits).toEqual({
      maxDepth: 12,
      maxAliases: 30,
      maxRootFields: 20,
      maxDirectives: 50,
      maxTokens: 2000,
      maxCost: 50_000,
      bodySize: "100kb",
      bodySizeBytes: 102_400,
      allowBatchedRequests: false,
      maxBatchSize: 10,
    });
  });

  for (const [index, limit] of LIMITS.entries()) {
    const value = DEFAULTS[limit.env]!;
    it(`${limit.limit}: ${value} runs, ${value + 1} is refused before execution`, async () => {
      await expectRuns(caller, limit.at(value, `d${index}a`));
      await expectRefused(caller, limit.over(value, `d${index}b`), limit.message(value));
    });
  }

  it("the documents on the boundary measure what they claim", () => {
    for (const tokens of [100, 101, 2000, 2001, 20_000]) {
      expect(countTokens(tokensMutation(tokens, "toka").query)).toBe(tokens);
    }
    expect(countTokens(depthMutation(12, "x"))).toBeGreaterThan(0);
  });

  it("cost counts the schema defaults of an omitted `first` (20 spaces, 20 lists, 50 todos)", async () => {
    // Two copies (41 682) run; three (62 523) are refused. Counting an
    // omitted `first` as 1 would make all three cost 21.
    const two = await caller.server.gql(defaultsCostQuery(2), undefined, caller.token);
    expect(two.errors).toBeUndefined();
    const three = await caller.server.gql(defaultsCostQuery(3), undefined, caller.token);
    expect(three.status).toBe(400);
    expect(three.errors).toEqual([
      {
        message: `Query cost limit of 50000 exceeded, found ${3 * DEFAULTS_COST_PER_COPY}.`,
        extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
      },
    ]);
    expect(three.extensions?.queryStats?.sqlStatements).toBe(0);
  });

  it("cost reads `first` written as a literal as well", async () => {
    const query = (todos: number) =>
      `mutation { createSpace(input: { name: "Limit test", slug: "lit${todos}" }) { lists(first: 1) { nodes { todos(first: ${todos}) { nodes { id } } } } } }`;
    await expectRuns(caller, { query: query(49_996) });
    await expectRefused(caller, { query: query(49_997) }, "Query cost limit of 50000 exceeded, found 50001.");
  });

  it("an over-limit operation is a 200 for a client that accepts only application/json (GraphQL over HTTP)", async () => {
    const before = await spaceCount(caller);
    const { status, contentType, body } = await post(caller, LIMITS[0]!.over(12, "json"), "application/json");
    expect(status).toBe(200);
    expect(contentType).toContain("application/json");
    expect((body as GraphQLResult<unknown>).errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(await spaceCount(caller)).toBe(before);
  });

  it("reports every limit an operation breaks, still without running it", async () => {
    const before = await spaceCount(caller);
    const deepAndWide = `mutation { ${Array.from({ length: 21 }, (_, i) => `s${i}: createSpace(input: { name: "Limit test", slug: "many${i}" }) { ${"members { space { ".repeat(6)} id ${"} } ".repeat(6)} }`).join(" ")} }`;
    const { status, body } = await post(caller, { query: deepAndWide });
    const messages = ((body as GraphQLResult<unknown>).errors ?? []).map((e) => e.message);
    expect(status).toBe(400);
    expect(messages).toEqual(
      expect.arrayContaining(["Query depth limit of 12 exceeded, found 14.", "Root fields limit of 20 exceeded, found 21."]),
    );
    expect(await spaceCount(caller)).toBe(before);
  });

  it("body size: exactly 100kb (102 400 bytes) runs, one byte more is a 413 limit error", async () => {
    const before = await spaceCount(caller);
    const at = await post(caller, bodyOfSize(102_400, "bodyat"));
    expect((at.body as GraphQLResult<unknown>).errors).toBeUndefined();
    expect(await spaceCount(caller)).toBe(before + 1);

    const over = await post(caller, bodyOfSize(102_401, "bodyover"));
    expect(over.status).toBe(413);
    expect(over.body).toEqual({
      errors: [{ message: "Request body size limit of 100kb (102400 bytes) exceeded.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }],
    });
    expect(await spaceCount(caller)).toBe(before + 1);
  });

  it("body size counts the decompressed body: a 50 MB gzip bomb of ~50 kB is a 413", async () => {
    const body = gzipSync(JSON.stringify({ query: rootFieldsMutation(1, "gzipbomb"), variables: { pad: " ".repeat(50_000_000) } }));
    expect(body.length).toBeLessThan(102_400);
    const response = await fetch(caller.server.url, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${caller.token}` },
      body,
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as GraphQLResult<unknown>).errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    // A compressed body within the limit is served.
    const small = await fetch(caller.server.url, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify({ query: "{ __typename }" })),
    });
    expect(await small.json()).toMatchObject({ data: { __typename: "Query" } });
  });

  it("batching is off: a single operation runs, an array of two is refused and runs neither", async () => {
    const before = await spaceCount(caller);
    const single = await post(caller, { query: rootFieldsMutation(1, "batchone") });
    expect((single.body as GraphQLResult<unknown>).errors).toBeUndefined();
    const batch = await post(caller, [{ query: rootFieldsMutation(1, "batcha") }, { query: rootFieldsMutation(1, "batchb") }]);
    expect(batch.status).toBe(400);
    expect(batch.body).toEqual({
      errors: [
        {
          message: "Batching limit of 1 operation per request exceeded: batched requests are disabled (ALLOW_BATCHED_REQUESTS).",
          extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
        },
      ],
    });
    expect(await spaceCount(caller)).toBe(before + 1);
  });

  it("introspection is not limited by depth (GraphiQL's query is deeper than 12)", async () => {
    const result = await caller.server.gql(
      "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }",
    );
    expect(result.errors).toBeUndefined();
  });
});

describe("limits over graphql-ws (defaults)", () => {
  let caller: Caller;
  let socket: RawSocket;
  beforeAll(async () => {
    caller = await setUp();
    socket = await RawSocket.open(caller.server.wsUrl);
    expect(await socket.init({ authorization: `Bearer ${caller.token}` })).toMatchObject({ type: "connection_ack" });
  });
  afterAll(async () => {
    await socket.close();
    await caller.server.close();
  });

  for (const [index, limit] of LIMITS.entries()) {
    const value = DEFAULTS[limit.env]!;
    it(`${limit.limit}: ${value} runs, ${value + 1} gets an error message and writes nothing`, async () => {
      const at = limit.at(value, `w${index}a`);
      const before = await spaceCount(caller);
      const ran = await socket.operation(`at-${index}`, at.query, at.variables, at.operationName);
      expect(ran.errors).toBeUndefined();
      const created = Object.keys(ran.data ?? {}).length;
      expect(created).toBeGreaterThan(0);
      expect(await spaceCount(caller)).toBe(before + created);

      const over = limit.over(value, `w${index}b`);
      const refused = await socket.operation(`over-${index}`, over.query, over.variables, over.operationName);
      expect(refused.errors?.map(publicPart)).toEqual([{ message: limit.message(value), extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }]);
      expect(await spaceCount(caller)).toBe(before + created);
      expect(socket.isClosed).toBe(false);
    });
  }

  it("body size: a message within 100kb is served; a larger one closes the socket with 1009", async () => {
    const other = await RawSocket.open(caller.server.wsUrl);
    try {
      expect(await other.init({ authorization: `Bearer ${caller.token}` })).toMatchObject({ type: "connection_ack" });
      const before = await spaceCount(caller);
      const message = (pad: number) =>
        JSON.stringify({ id: `pad${pad}`, type: "subscribe", payload: { query: rootFieldsMutation(1, `wsbody${pad % 10}`), variables: { pad: "x".repeat(pad) } } });
      const fits = message(0).length;
      other.send(message(102_400 - fits - 10));
      expect(await other.waitFor((m) => m.id === `pad${102_400 - fits - 10}` && m.type === "complete")).toBeDefined();
      expect(await spaceCount(caller)).toBe(before + 1);
      other.send(message(102_400));
      expect((await other.closed).code).toBe(1009);
      expect(await spaceCount(caller)).toBe(before + 1);
    } finally {
      await other.close();
    }
  });
});

describe("custom limits from the environment", () => {
  let caller: Caller;
  beforeAll(async () => {
    caller = await setUp({
      ...Object.fromEntries(Object.entries(CUSTOM).map(([name, value]) => [name, String(value)])),
      LIMIT_BODY_SIZE: "2kb",
      ALLOW_BATCHED_REQUESTS: "true",
      LIMIT_MAX_BATCH_SIZE: "3",
    });
  });
  afterAll(async () => {
    await caller.server.close();
  });

  for (const [index, limit] of LIMITS.entries()) {
    const value = CUSTOM[limit.env]!;
    it(`${limit.env}=${value}: ${value} runs, ${value + 1} is refused`, async () => {
      await expectRuns(caller, limit.at(value, `c${index}a`));
      await expectRefused(caller, limit.over(value, `c${index}b`), limit.message(value));
    });
  }

  it("LIMIT_BODY_SIZE=2kb: 2048 bytes run, 2049 are a 413 naming 2kb", async () => {
    const before = await spaceCount(caller);
    expect((await post(caller, bodyOfSize(2048, "smallat"))).status).toBe(200);
    const over = await post(caller, bodyOfSize(2049, "smallover"));
    expect(over.status).toBe(413);
    expect(over.body).toEqual({
      errors: [{ message: "Request body size limit of 2kb (2048 bytes) exceeded.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }],
    });
    expect(await spaceCount(caller)).toBe(before + 1);
  });

  it("ALLOW_BATCHED_REQUESTS=true: an array runs every operation, each under the limits", async () => {
    const before = await spaceCount(caller);
    // Apollo gives a batch one status: a 400 of any operation in it would be
    // the batch's for application/graphql-response+json; application/json
    // keeps it a 200 (GraphQL over HTTP).
    const { status, body } = await post(
      caller,
      [{ query: rootFieldsMutation(1, "batchon1") }, { query: rootFieldsMutation(1, "batchon2") }, { query: depthMutation(7, "batchdeep") }],
      "application/json",
    );
    expect(status).toBe(200);
    const results = body as GraphQLResult<unknown>[];
    expect(results).toHaveLength(3);
    expect(results[0]!.errors).toBeUndefined();
    expect(results[1]!.errors).toBeUndefined();
    expect(results[2]!.errors?.[0]).toEqual({ message: "Query depth limit of 6 exceeded, found 7.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    expect(await spaceCount(caller)).toBe(before + 2);
  });

  it("LIMIT_MAX_BATCH_SIZE=3: an array of 3 runs, an array of 4 is refused whole and runs none", async () => {
    const before = await spaceCount(caller);
    const three = await post(caller, [1, 2, 3].map((i) => ({ query: rootFieldsMutation(1, `batchcap${i}`) })), "application/json");
    expect(three.status).toBe(200);
    expect((three.body as GraphQLResult<unknown>[]).map((result) => result.errors)).toEqual([undefined, undefined, undefined]);
    expect(await spaceCount(caller)).toBe(before + 3);
    const four = await post(caller, [1, 2, 3, 4].map((i) => ({ query: rootFieldsMutation(1, `batchover${i}`) })));
    expect(four.status).toBe(400);
    expect(four.body).toEqual({
      errors: [{ message: "Batching limit of 3 operations per request exceeded, found 4.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }],
    });
    expect(await spaceCount(caller)).toBe(before + 3);
  });

  it("applies the same custom limits over graphql-ws", async () => {
    const socket = await RawSocket.open(caller.server.wsUrl);
    try {
      await socket.init({ authorization: `Bearer ${caller.token}` });
      const before = await spaceCount(caller);
      const deep = await socket.operation("deep", depthMutation(7, "wsdeep"));
      expect(deep.errors?.[0]).toEqual({ message: "Query depth limit of 6 exceeded, found 7.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
      const costly = costMutation("wscost");
      const expensive = await socket.operation("cost", costly.query, costly.variables(101));
      expect(expensive.errors?.[0]).toEqual({ message: "Query cost limit of 100 exceeded, found 101.", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
      expect(await spaceCount(caller)).toBe(before);
      // 2kb applies to WebSocket messages too.
      socket.send({ id: "big", type: "subscribe", payload: { query: "{ me { id } }", variables: { pad: "x".repeat(2048) } } });
      expect((await socket.closed).code).toBe(1009);
    } finally {
      await socket.close();
    }
  });
});

describe("every count limit set to 0 (off)", () => {
  let caller: Caller;
  beforeAll(async () => {
    caller = await setUp({
      ...Object.fromEntries(Object.keys(DEFAULTS).map((name) => [name, "0"])),
      LIMIT_BODY_SIZE: "1mb",
    });
  });
  afterAll(async () => {
    await caller.server.close();
  });

  // Far past every default; each still a valid operation.
  const FAR: Record<string, number> = {
    LIMIT_MAX_DEPTH: 40,
    LIMIT_MAX_ALIASES: 200,
    LIMIT_MAX_ROOT_FIELDS: 25,
    LIMIT_MAX_DIRECTIVES: 300,
    LIMIT_MAX_TOKENS: 20_000,
    LIMIT_MAX_COST: 5_000_000,
  };

  for (const [index, limit] of LIMITS.entries()) {
    const value = FAR[limit.env]!;
    it(`${limit.env}=0: ${limit.limit} of ${value} runs over HTTP and graphql-ws`, async () => {
      await expectRuns(caller, limit.at(value, `o${index}h`));
      const socket = await RawSocket.open(caller.server.wsUrl);
      try {
        await socket.init({ authorization: `Bearer ${caller.token}` });
        const request = limit.at(value, `o${index}w`);
        const result = await socket.operation("off", request.query, request.variables, request.operationName);
        expect(result.errors).toBeUndefined();
      } finally {
        await socket.close();
      }
    });
  }
});

describe("cost.ts", () => {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs() });
  const costOf = (source: string, variables: Record<string, unknown> = {}) => {
    const document = parse(source);
    const operation = getOperationAST(document)!;
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    return operationCost(schema, operation, fragments, variables);
  };

  it("the header example: 20 841 with the schema defaults", () => {
    expect(costOf(defaultsCostQuery(1))).toBe(20_841);
  });

  it("scalars, __typename and introspection cost nothing; an object costs 1", () => {
    expect(costOf("{ __typename }")).toBe(0);
    expect(costOf("{ __schema { types { name fields { name } } } }")).toBe(0);
    expect(costOf("{ me { id email } }")).toBe(1);
  });

  it("`first` from a literal, a variable, a variable default and the schema default", () => {
    expect(costOf("{ spaces(first: 3) { nodes { id } } }")).toBe(1 + 3 * 1);
    expect(costOf("query ($n: Int) { spaces(first: $n) { nodes { id } } }", { n: 7 })).toBe(1 + 7);
    expect(costOf("query ($n: Int = 9) { spaces(first: $n) { nodes { id } } }", { n: 9 })).toBe(1 + 9);
    expect(costOf("{ spaces { nodes { id } } }")).toBe(1 + 20);
    expect(costOf("{ spaces(first: 0) { nodes { id } } }")).toBe(1);
    expect(costOf("{ spaces(first: -5) { nodes { id } } }")).toBe(1);
  });

  it("fragments and inline fragments count like the fields they stand for", () => {
    const inline = costOf("{ spaces { nodes { ... on Space { lists { nodes { id } } } } } }");
    const spread = costOf("{ spaces { nodes { ...F } } } fragment F on Space { lists { nodes { id } } }");
    const plain = costOf("{ spaces { nodes { lists { nodes { id } } } } }");
    expect(inline).toBe(plain);
    expect(spread).toBe(plain);
  });

  it("union members are added up (an over-estimate)", () => {
    const both = costOf(
      'subscription { spaceActivity(spaceId: "s") { ... on TodoEvent { todo { id } } ... on ListEvent { list { id } } } }',
    );
    expect(both).toBe(1 + 1 + 1);
  });

  it("fragments spread into fragments stay linear to compute, and the cost still multiplies", () => {
    // F0 spreads F1 twice, F1 spreads F2 twice, ...: 2^30 leaves if expanded.
    const depth = 30;
    const fragments = Array.from({ length: depth }, (_, i) =>
      i === depth - 1 ? `fragment F${i} on Space { owner { id } }` : `fragment F${i} on Space { ...F${i + 1} lists(first: 1) { nodes { space { ...F${i + 1} } } } }`,
    ).join("\n");
    const value = costOf(`{ spaces(first: 1) { nodes { ...F0 } } } ${fragments}`);
    expect(value).toBeGreaterThan(2 ** depth);
  });

  it("the byte size syntax of LIMIT_BODY_SIZE", () => {
    expect(byteSize("100kb")).toBe(102_400);
    expect(byteSize("1mb")).toBe(1_048_576);
    expect(byteSize("1.5KB")).toBe(1536);
    expect(byteSize("512")).toBe(512);
    expect(byteSize("lots")).toBeUndefined();
  });
});

// GraphQL over HTTP conformance: graphql-http's own server audits against the
// real server over real HTTP. MUST audits failing are errors, SHOULD audits
// warnings; both must be zero. MAY audits failing are notices: the only ones
// allowed are the GET requests CSRF prevention blocks on purpose (below).
import { createHash } from "node:crypto";
import { serverAudits, type AuditResult } from "graphql-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../helpers/server.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

// Apollo's CSRF prevention refuses a GET that a browser could send cross-site
// without a preflight (no content-type, no apollo-require-preflight or
// x-apollo-operation-name header): these MAY audits send exactly such GETs.
// Queries over GET work with either header (checked below).
const CSRF_BLOCKED_GET_AUDITS = new Set([
  "MAY accept application/x-www-form-urlencoded formatted GET requests",
  "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/graphql-response+json",
  "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/json",
]);

async function runAudits(url: string, fetchFn: typeof fetch = fetch) {
  const results: AuditResult[] = [];
  for (const audit of serverAudits({ url, fetchFn })) results.push(await audit.fn());
  const failing = results.filter((r) => r.status !== "ok");
  const describeFailure = async (r: AuditResult) =>
    r.status === "ok" ? r.name : `[${r.status}] ${r.name}: ${r.reason} (HTTP ${r.response.status} ${await r.response.clone().text().catch(() => "")})`;
  return {
    total: results.length,
    ok: results.length - failing.length,
    errors: await Promise.all(failing.filter((r) => r.status === "error").map(describeFailure)),
    warnings: await Promise.all(failing.filter((r) => r.status === "warn").map(describeFailure)),
    notices: failing.filter((r) => r.status === "notice").map((r) => r.name),
  };
}

describe("graphql-http server audits", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("passes every MUST and SHOULD audit", async () => {
    const report = await runAudits(server.url);
    console.log(
      `graphql-http ${report.total} audits: ${report.ok} ok, ${report.warnings.length} warnings, ${report.errors.length} errors, ` +
        `${report.notices.length} notices (${report.notices.join("; ")})`,
    );
    expect(report.errors, "failing MUST audits").toEqual([]);
    expect(report.warnings, "failing SHOULD audits").toEqual([]);
    expect(report.notices.filter((name) => !CSRF_BLOCKED_GET_AUDITS.has(name)), "failing MAY audits").toEqual([]);
    expect(report.total).toBeGreaterThan(50);
  });

  it("passes all of them, MAY included, for a client that sends apollo-require-preflight", async () => {
    const withPreflight: typeof fetch = (input, init) =>
      fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), "apollo-require-preflight": "true" } });
    const report = await runAudits(server.url, withPreflight);
    expect([...report.errors, ...report.warnings, ...report.notices]).toEqual([]);
    expect(report.ok).toBe(report.total);
  });

  it("the same in production mode (no landing page, no stack traces)", async () => {
    const production = await startTestServer({ env: { NODE_ENV: "production", METRICS_TOKEN: "audit-metrics-token", INTROSPECTION: "true" } });
    try {
      const report = await runAudits(production.url);
      expect(report.errors, "failing MUST audits").toEqual([]);
      expect(report.warnings, "failing SHOULD audits").toEqual([]);
    } finally {
      await production.close();
    }
  });
});

describe("GET and CSRF prevention", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  const get = (params: Record<string, string>, headers: Record<string, string> = {}) => {
    const url = new URL(server.url);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return fetch(url, { headers: { accept: "application/graphql-response+json", ...headers } });
  };

  it("runs a query over GET with apollo-require-preflight or x-apollo-operation-name", async () => {
    const query = "query Type($name: String!) { __type(name: $name) { name } }";
    const headers: Record<string, string>[] = [{ "apollo-require-preflight": "true" }, { "x-apollo-operation-name": "Type" }];
    for (const header of headers) {
      const response = await get({ query, variables: JSON.stringify({ name: "Space" }) }, header);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ data: { __type: { name: "Space" } } });
    }
  });

  it("refuses a simple (cross-site sendable) GET with 400 BAD_REQUEST and runs nothing", async () => {
    const response = await get({ query: "{ __typename }" });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe("BAD_REQUEST");
    expect(body.errors[0]?.message).toMatch(/Cross-Site Request Forgery/);
    expect(body).not.toHaveProperty("data");
  });

  it("never runs a mutation over GET (405)", async () => {
    const response = await get({ query: 'mutation { logIn(email: "a@b.cd", password: "x") { token } }' }, { "apollo-require-preflight": "true" });
    expect(response.status).toBe(405);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe("BAD_REQUEST");
  });
});

describe("status codes per Accept header", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  const post = async (body: unknown, accept?: string) => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(accept ? { accept } : {}) },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    return { status: response.status, type: response.headers.get("content-type")?.split(";")[0], code: json.errors?.[0]?.extensions?.code };
  };

  const GRAPHQL_RESPONSE = "application/graphql-response+json";
  const JSON_TYPE = "application/json";

  it.each([
    ["a parse error", { query: "{ me { id " }, "GRAPHQL_PARSE_FAILED"],
    ["a validation error", { query: "{ nope }" }, "GRAPHQL_VALIDATION_FAILED"],
    ["a limit error", { query: `{ ${Array.from({ length: 21 }, (_, i) => `m${i}: me { id }`).join(" ")} }` }, "GRAPHQL_VALIDATION_FAILED"],
    ["an operationName the document does not define", { query: "query A { me { id } }", operationName: "B" }, "GRAPHQL_VALIDATION_FAILED"],
    ["variables that do not coerce", { query: "query ($id: ID!) { user(id: $id) { id } }", variables: { id: {} } }, "BAD_USER_INPUT"],
  ])("%s: 400 for %s, 200 for application/json", async (_label, body, code) => {
    expect(await post(body, GRAPHQL_RESPONSE)).toEqual({ status: 400, type: GRAPHQL_RESPONSE, code });
    expect(await post(body, JSON_TYPE)).toEqual({ status: 200, type: JSON_TYPE, code });
    // No Accept header means application/json (GraphQL over HTTP, legacy).
    expect(await post(body)).toEqual({ status: 200, type: JSON_TYPE, code });
    // Preference follows q values, then order.
    expect(await post(body, `${JSON_TYPE};q=0.5, ${GRAPHQL_RESPONSE}`)).toMatchObject({ status: 400, type: GRAPHQL_RESPONSE });
    expect(await post(body, `${GRAPHQL_RESPONSE};q=0.5, ${JSON_TYPE}`)).toMatchObject({ status: 200, type: JSON_TYPE });
    expect(await post(body, "*/*")).toMatchObject({ status: 200, type: JSON_TYPE });
  });

  it("a field error is a 200 with data whatever the client accepts", async () => {
    for (const accept of [GRAPHQL_RESPONSE, JSON_TYPE]) {
      const result = await post({ query: '{ user(id: "nope") { id } }' }, accept);
      expect(result.status).toBe(200);
    }
  });

  it("406 when the client accepts no JSON type", async () => {
    expect(await post({ query: "{ me { id } }" }, "application/xml")).toMatchObject({ status: 406, code: "BAD_REQUEST" });
  });

  it("a subscription over HTTP is a 400 BAD_REQUEST pointing at WebSocket, not an internal error", async () => {
    const result = await post({ query: 'subscription { todoChanged(listId: "x") { kind } }' }, GRAPHQL_RESPONSE);
    expect(result).toEqual({ status: 400, type: GRAPHQL_RESPONSE, code: "BAD_REQUEST" });
  });
});

describe("automatic persisted queries", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  const post = async (body: unknown) => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    // The test servers add extensions.queryStats: only data and errors matter here.
    const { data, errors } = (await response.json()) as { data?: unknown; errors?: unknown[] };
    return { status: response.status, body: { ...(data === undefined ? {} : { data }), ...(errors ? { errors } : {}) } };
  };

  it("asks for an unknown hash with the protocol's message and an ERRORS.md code, then runs the query by its hash alone", async () => {
    const query = `query ApqProbe { __typename }`;
    const persistedQuery = { version: 1, sha256Hash: createHash("sha256").update(query).digest("hex") };

    const unknown = await post({ extensions: { persistedQuery } });
    expect(unknown.body).toEqual({ errors: [{ message: "PersistedQueryNotFound", extensions: { code: "BAD_REQUEST" } }] });

    const registered = await post({ query, extensions: { persistedQuery } });
    expect(registered).toEqual({ status: 200, body: { data: { __typename: "Query" } } });

    const byHash = await post({ extensions: { persistedQuery } });
    expect(byHash).toEqual({ status: 200, body: { data: { __typename: "Query" } } });
  });

  it("refuses a query whose hash does not match it with 400 BAD_REQUEST, and stores nothing", async () => {
    const query = `query ApqMismatch { __typename }`;
    const persistedQuery = { version: 1, sha256Hash: createHash("sha256").update("something else").digest("hex") };
    const mismatch = await post({ query, extensions: { persistedQuery } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors).toEqual([{ message: expect.stringMatching(/does not match/), extensions: { code: "BAD_REQUEST" } }]);
    const unknown = await post({ extensions: { persistedQuery } });
    expect(unknown.body).toEqual({ errors: [{ message: "PersistedQueryNotFound", extensions: { code: "BAD_REQUEST" } }] });
  });
});

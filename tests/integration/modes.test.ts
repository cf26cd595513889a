// What differs between development and production, and the CSRF prevention
// that is on in both: the explorer (the bundled GraphiQL, or Apollo Sandbox
// with EXPLORER=sandbox) and introspection are for development; production
// serves neither unless EXPLORER or INTROSPECTION say so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawSocket } from "../hardening/wsProtocol-raw.js";
import { errorCode, startTestServer, type TestServer } from "../helpers/server.js";

const INTROSPECTION_QUERY = `{ __schema { queryType { name } } }`;

let development: TestServer;
let production: TestServer;
let productionWithIntrospection: TestServer;
let developmentWithSandbox: TestServer;
beforeAll(async () => {
  development = await startTestServer({ env: { NODE_ENV: "development" } });
  developmentWithSandbox = await startTestServer({ env: { NODE_ENV: "development", EXPLORER: "sandbox" } });
  production = await startTestServer({ env: { NODE_ENV: "production", METRICS_TOKEN: "modes-metrics-token" } });
  productionWithIntrospection = await startTestServer({
    env: { NODE_ENV: "production", METRICS_TOKEN: "modes-metrics-token", INTROSPECTION: "true" },
  });
});
afterAll(async () => {
  await Promise.all([development?.close(), developmentWithSandbox?.close(), production?.close(), productionWithIntrospection?.close()]);
});

const browserGet = (server: TestServer) => fetch(server.url, { headers: { accept: "text/html" } });

describe("development", () => {
  it("serves the bundled GraphiQL explorer to a browser, from this server only", async () => {
    const response = await browserGet(development);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await response.text();
    expect(page).toContain('<script type="module" src="/explorer/explorer.js">');
    expect(page).not.toContain("embeddable-sandbox");
    expect(page).not.toMatch(/https?:\/\//);
    expect(response.headers.get("content-security-policy")).toMatch(/script-src 'self';/);
    const script = await fetch(`${development.baseUrl}/explorer/explorer.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
  });

  it("serves Apollo Sandbox instead with EXPLORER=sandbox", async () => {
    const response = await browserGet(developmentWithSandbox);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain("embeddable-sandbox");
    expect(page).toContain('"runTelemetry":false');
    expect((await fetch(`${developmentWithSandbox.baseUrl}/explorer/explorer.js`)).status).toBe(404);
  });

  it("answers introspection", async () => {
    const result = await development.gql<{ __schema: { queryType: { name: string } } }>(INTROSPECTION_QUERY);
    expect(result.data?.__schema.queryType.name).toBe("Query");
  });
});

describe("production", () => {
  it("serves no explorer", async () => {
    const response = await browserGet(production);
    const body = await response.text();
    expect(body).not.toContain("embeddable-sandbox");
    expect(body).not.toContain("/explorer/");
    expect((await fetch(`${production.baseUrl}/explorer/explorer.js`)).status).toBe(404);
  });

  it("refuses introspection, and does not suggest field names", async () => {
    const introspection = await production.gql(INTROSPECTION_QUERY);
    expect(errorCode(introspection)).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(introspection.data).toBeUndefined();
    const typo = await production.gql(`{ mee { id } }`);
    expect(errorCode(typo)).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(JSON.stringify(typo.errors)).not.toMatch(/Did you mean/);
  });

  it("refuses introspection and hides every schema hint over WebSocket too", async () => {
    const socket = await RawSocket.open(production.wsUrl);
    try {
      await socket.init();
      for (const [index, query] of [INTROSPECTION_QUERY, `{ __type(name: "Query") { name } }`, `{ me { id } a: __schema { types { name } } }`].entries()) {
        expect(await socket.operation(`intro${index}`, query), query).toEqual({
          errors: [{ message: "Introspection is disabled on this server.", locations: expect.any(Array), extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }],
        });
      }
      expect((await socket.operation("typename", "{ __typename }")).data).toEqual({ __typename: "Query" });
      const typo = await socket.operation("typo", "{ mee { id } }");
      expect(typo.errors?.[0]?.message).toBe('Cannot query field "mee" on type "Query".');
      expect(JSON.stringify(await socket.operation("enum", `mutation { updateSpaceMember(id: "x", role: ADMN) { id } }`))).not.toMatch(/Did you mean|ADMIN/);
    } finally {
      await socket.close();
    }
  });

  it("hides enum, argument and field hints over HTTP, with the same introspection message", async () => {
    const introspection = await production.gql(INTROSPECTION_QUERY);
    expect(introspection.errors?.[0]?.message).toBe("Introspection is disabled on this server.");
    expect(introspection.errors).toHaveLength(1);
    for (const query of [
      `mutation { updateSpaceMember(id: "x", role: ADMN) { id } }`,
      `mutation ($role: SpaceRole!) { updateSpaceMember(id: "x", role: $role) { id } }`,
      `{ spaces(frist: 2) { totalCount } }`,
      `{ me { emial } }`,
    ]) {
      const result = await production.gql(query, { role: "ADMN" });
      expect(result.errors?.length, query).toBeGreaterThan(0);
      expect(JSON.stringify(result.errors), query).not.toMatch(/Did you mean|ADMIN|"first"|"email"/);
    }
    // Development keeps the hints: they help while building a client.
    const hinted = await development.gql(`{ me { emial } }`);
    expect(hinted.errors?.[0]?.message).toMatch(/Did you mean "email"\?/);
  });

  it("answers introspection when INTROSPECTION=true, over WebSocket too", async () => {
    const socket = await RawSocket.open(productionWithIntrospection.wsUrl);
    try {
      await socket.init();
      expect((await socket.operation("intro", INTROSPECTION_QUERY)).data).toEqual({ __schema: { queryType: { name: "Query" } } });
    } finally {
      await socket.close();
    }
  });

  it("answers introspection when INTROSPECTION=true", async () => {
    const result = await productionWithIntrospection.gql<{ __schema: { queryType: { name: string } } }>(INTROSPECTION_QUERY);
    expect(result.data?.__schema.queryType.name).toBe("Query");
  });
});

describe("CSRF prevention", () => {
  it("refuses a simple cross-site POST (text/plain) and a GET without a preflight header", async () => {
    const post = await fetch(development.url, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ query: `mutation { signUp(input: { email: "csrf@example.com", password: "password-1" }) { token } } ` }),
    });
    expect(post.status).toBe(400);
    const body = (await post.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe("BAD_REQUEST");

    const get = await fetch(`${development.url}?query=${encodeURIComponent("{ me { id } }")}`);
    expect(get.status).toBe(400);

    // The refused sign-up did not happen.
    const again = await development.gql(`mutation { signUp(input: { email: "csrf@example.com", password: "password-1" }) { token } }`);
    expect(again.errors).toBeUndefined();
  });

  it("accepts a GET query that carries the preflight header", async () => {
    const response = await fetch(`${development.url}?query=${encodeURIComponent("{ me { id } }")}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ data: { me: null } });
  });
});

// CORS_ORIGINS as an HTTP client and a WebSocket client see it: preflights
// answered for the origins it lists and refused for others, the
// Access-Control headers on answers, CSRF prevention still refusing simple
// cross-site requests, and the Origin check at the WebSocket upgrade.
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawSocket, SUBPROTOCOL } from "../hardening/wsProtocol-raw.js";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";

const APP = "https://app.example.com";
const SUBDOMAIN_APP = "https://preview-42.apps.example.org";
const ELSEWHERE = "https://evil.example";

let server: TestServer;
let development: TestServer;
let production: TestServer;
beforeAll(async () => {
  [server, development, production] = await Promise.all([
    startTestServer({ env: { CORS_ORIGINS: `${APP},https://*.apps.example.org` } }),
    startTestServer({ env: { NODE_ENV: "development" } }),
    startTestServer({ env: { NODE_ENV: "production", METRICS_TOKEN: "cors-metrics-token" } }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.close(), development?.close(), production?.close()]);
});

const preflight = (target: TestServer, origin: string, requestHeaders = "authorization,content-type") =>
  fetch(target.url, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": requestHeaders },
  });

describe("preflight", () => {
  it.each([APP, SUBDOMAIN_APP])("answers one from %s with 204 and what the browser needs", async (origin) => {
    const response = await preflight(server, origin, "authorization,content-type,apollo-require-preflight,x-apollo-operation-name");
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    expect(response.headers.get("vary")).toMatch(/\bOrigin\b/);
    expect(response.headers.get("access-control-allow-methods")?.split(/,\s*/)).toEqual(expect.arrayContaining(["GET", "POST"]));
    expect(response.headers.get("access-control-allow-headers")?.split(/,\s*/)).toEqual(
      expect.arrayContaining(["authorization", "content-type", "apollo-require-preflight", "x-apollo-operation-name"]),
    );
    expect(response.headers.get("access-control-max-age")).toBe("7200");
    // Bearer tokens, not cookies: nothing asks the browser to send credentials.
    expect(response.headers.get("access-control-allow-credentials")).toBeNull();
    expect(await response.text()).toBe("");
  });

  it.each([ELSEWHERE, "https://app.example.com.evil.example", "http://app.example.com", "https://apps.example.org", "null"])(
    "refuses one from %s with 403 and no CORS header",
    async (origin) => {
      const response = await preflight(server, origin);
      expect(response.status).toBe(403);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
      expect(response.headers.get("vary")).toMatch(/\bOrigin\b/);
      expect(await response.json()).toEqual({
        errors: [{ message: `Origin ${origin} is not allowed to call this API (CORS_ORIGINS).`, extensions: { code: "FORBIDDEN" } }],
      });
    },
  );

  it("lets in any local dev server outside production by default, and nothing else", async () => {
    for (const origin of ["http://localhost:5173", "http://localhost:3000", "http://127.0.0.1:8080"]) {
      expect((await preflight(development, origin)).status, origin).toBe(204);
    }
    expect((await preflight(development, APP)).status).toBe(403);
    expect((await preflight(development, "https://localhost:5173")).status).toBe(403);
  });

  it("lets in no origin in production unless CORS_ORIGINS lists it", async () => {
    expect((await preflight(production, "http://localhost:5173")).status).toBe(403);
    expect((await preflight(production, APP)).status).toBe(403);
  });
});

describe("requests", () => {
  it("carry Access-Control-Allow-Origin for an allowed origin, and the token works", async () => {
    const user = await signUp(server);
    const response = await fetch(server.url, {
      method: "POST",
      headers: { origin: APP, "content-type": "application/json", authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: "{ me { email } }" }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(APP);
    expect(response.headers.get("access-control-expose-headers")).toMatch(/x-request-id/);
    expect(response.headers.get("vary")).toMatch(/\bOrigin\b/);
    expect(await response.json()).toMatchObject({ data: { me: { email: user.email } } });
  });

  it("carry no Access-Control-Allow-Origin for any other origin, nor without one", async () => {
    const cases: Record<string, string>[] = [{ origin: ELSEWHERE }, {}];
    for (const headers of cases) {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ query: "{ me { id } }" }),
      });
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  it("still meet CSRF prevention: a simple POST or a bare GET from an allowed origin is refused, and does nothing", async () => {
    const email = `csrf-cors-${Date.now()}@example.com`;
    const signUpMutation = `mutation { signUp(input: { email: "${email}", password: "password-1" }) { token } }`;
    const post = await fetch(server.url, {
      method: "POST",
      headers: { origin: APP, "content-type": "text/plain" },
      body: JSON.stringify({ query: signUpMutation }),
    });
    expect(post.status).toBe(400);
    expect(await post.json()).toMatchObject({ errors: [{ extensions: { code: "BAD_REQUEST" } }] });
    const get = await fetch(`${server.url}?query=${encodeURIComponent("{ me { id } }")}`, { headers: { origin: APP } });
    expect(get.status).toBe(400);
    // The refused sign-up did not happen: the email is still free.
    const again = await server.gql(signUpMutation);
    expect(again.errors).toBeUndefined();
  });
});

/** An upgrade the server refuses: its status and body; rejects if the socket opens. */
function refusedUpgrade(target: TestServer, headers: Record<string, string>) {
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const socket = new WebSocket(target.wsUrl, SUBPROTOCOL, { headers });
    socket.on("open", () => {
      socket.close();
      reject(new Error("the upgrade was accepted"));
    });
    socket.on("error", () => undefined);
    socket.on("unexpected-response", (_request, response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
  });
}

/** A socket that gets through the upgrade and connection_init with a token. */
async function acknowledgedWith(target: TestServer, headers: Record<string, string>, token: string) {
  const socket = await RawSocket.open(target.wsUrl, SUBPROTOCOL, { headers });
  try {
    expect(socket.isClosed, "the upgrade was refused").toBe(false);
    expect(await socket.init({ authorization: `Bearer ${token}` })).toMatchObject({ type: "connection_ack" });
    return (await socket.operation("me", "{ me { email } }")).data;
  } finally {
    await socket.close();
  }
}

describe("WebSocket Origin", () => {
  it("opens for an allowed origin, for the server's own pages, and for clients that send no Origin", async () => {
    const user = await signUp(server);
    const ownOrigin = new URL(server.baseUrl).origin;
    const cases: Record<string, string>[] = [{ origin: APP }, { origin: SUBDOMAIN_APP }, { origin: ownOrigin }, {}];
    for (const headers of cases) {
      expect(await acknowledgedWith(server, headers, user.token), JSON.stringify(headers)).toEqual({ me: { email: user.email } });
    }
  });

  it.each([ELSEWHERE, "http://app.example.com", "null", "http://localhost:5173"])("refuses %s with 403 at the upgrade", async (origin) => {
    expect(await refusedUpgrade(server, { origin })).toEqual({
      status: 403,
      body: { errors: [{ message: "This origin is not allowed to open a WebSocket to this API (CORS_ORIGINS).", extensions: { code: "FORBIDDEN" } }] },
    });
  });

  it("follows the same defaults as CORS: local dev servers outside production, none in production", async () => {
    const user = await signUp(development);
    expect(await acknowledgedWith(development, { origin: "http://localhost:5173" }, user.token)).toEqual({ me: { email: user.email } });
    expect((await refusedUpgrade(development, { origin: APP })).status).toBe(403);
    expect((await refusedUpgrade(production, { origin: "http://localhost:5173" })).status).toBe(403);
  });
});

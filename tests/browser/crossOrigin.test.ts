// A web app on another origin, in a real browser: a page served by this test
// on ports of its own calls the API over HTTP (fetch with an Authorization
// header, so the browser sends a preflight first) and over WebSocket
// (graphql-ws's browser bundle). From the origin CORS_ORIGINS lists, both
// work with the user's token; from another, the browser gets nothing and the
// server does nothing.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signUp, startTestServer, type TestServer } from "../helpers/server.js";
import { describeInBrowser, launchChromium, serveSite, type StaticSite } from "./support.js";

const require = createRequire(import.meta.url);
const GRAPHQL_WS_BUNDLE = readFileSync(path.join(path.dirname(require.resolve("graphql-ws/package.json")), "umd", "graphql-ws.min.js"));

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><script src="/graphql-ws.js"></script></head><body>web app</body></html>`;
const siteFiles = {
  "/": { type: "text/html; charset=utf-8", body: PAGE },
  "/graphql-ws.js": { type: "text/javascript", body: GRAPHQL_WS_BUNDLE },
};

let allowedSite: StaticSite;
let otherSite: StaticSite;
let server: TestServer;
let browser: Browser;
let user: Awaited<ReturnType<typeof signUp>>;

beforeAll(async () => {
  // First: without a browser there is nothing to test (and under CI that fails at once).
  browser = await launchChromium();
  [allowedSite, otherSite] = await Promise.all([serveSite(siteFiles), serveSite(siteFiles)]);
  // Only the first site: the other one is a local port too, which the development default would let in.
  server = await startTestServer({ env: { CORS_ORIGINS: allowedSite.origin } });
  user = await signUp(server);
});
afterAll(async () => {
  await browser?.close();
  await Promise.all([server?.close(), allowedSite?.close(), otherSite?.close()]);
});

async function openPage(site: StaticSite): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${site.origin}/`);
  return page;
}

type HttpOutcome = { status: number; body: unknown } | { failed: string };

/** fetch() from the page, as a web app would, with the user's token. */
const fetchFromPage = (page: Page, query: string, variables: Record<string, unknown> = {}) =>
  page.evaluate(
    async ({ url, token, query, variables }): Promise<HttpOutcome> => {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ query, variables }),
        });
        return { status: response.status, body: await response.json() };
      } catch (error) {
        return { failed: String(error) };
      }
    },
    { url: server.url, token: user.token, query, variables },
  );

type SocketOutcome = { connected: boolean; result?: unknown; closeCode?: number; error?: string };

/** One operation over graphql-ws from the page, with the user's token in connectionParams. */
const operationOverWebSocket = (page: Page, query: string) =>
  page.evaluate(
    ({ url, token, query }) =>
      new Promise<SocketOutcome>((resolve) => {
        type Client = { subscribe(payload: { query: string }, sink: object): () => void; dispose(): void };
        const { createClient } = (globalThis as unknown as { graphqlWs: { createClient(options: object): Client } }).graphqlWs;
        const outcome: SocketOutcome = { connected: false };
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          client.dispose();
          resolve(outcome);
        };
        const client = createClient({
          url,
          connectionParams: { authorization: `Bearer ${token}` },
          retryAttempts: 0,
          on: {
            connected: () => (outcome.connected = true),
            closed: (event: { code: number }) => {
              outcome.closeCode = event.code;
              finish();
            },
          },
        });
        client.subscribe(
          { query },
          {
            next: (result: unknown) => {
              outcome.result = result;
              finish();
            },
            // The socket's "error" event (a refused upgrade), then "closed" above.
            error: (error: { type: string }) => (outcome.error = error.type),
            complete: () => undefined,
          },
        );
      }),
    { url: server.wsUrl, token: user.token, query },
  );

describeInBrowser("a web app on an allowed origin", () => {
  it("calls the API over HTTP with its token, after a preflight", async () => {
    const page = await openPage(allowedSite);
    try {
      expect(await fetchFromPage(page, "{ me { email } }")).toMatchObject({ status: 200, body: { data: { me: { email: user.email } } } });
    } finally {
      await page.close();
    }
  });

  it("uses the API over WebSocket with its token", async () => {
    const page = await openPage(allowedSite);
    try {
      expect(await operationOverWebSocket(page, "{ me { email } }")).toEqual({ connected: true, result: { data: { me: { email: user.email } } } });
    } finally {
      await page.close();
    }
  });
});

describeInBrowser("a web app on an origin CORS_ORIGINS does not list", () => {
  it("cannot call the API over HTTP, and its mutation is never run", async () => {
    const page = await openPage(otherSite);
    try {
      // A valid mutation: were the request sent, it would create the space.
      const slug = `re${Date.now().toString(36)}`;
      const outcome = await fetchFromPage(page, `mutation ($slug: String!) { createSpace(input: { name: "Refused", slug: $slug }) { id } }`, { slug });
      expect(outcome).toEqual({ failed: expect.stringMatching(/Failed to fetch/) });
      const spaces = await server.gql<{ spaces: { totalCount: number } }>(`{ spaces { totalCount } }`, {}, user.token);
      expect(spaces.data?.spaces.totalCount).toBe(0);
    } finally {
      await page.close();
    }
  });

  it("cannot open a WebSocket: refused at the upgrade, before connection_init", async () => {
    const page = await openPage(otherSite);
    try {
      // A browser sees a refused upgrade as an abnormal close (1006), never as a connection.
      expect(await operationOverWebSocket(page, "{ me { email } }")).toEqual({ connected: false, error: "error", closeCode: 1006 });
    } finally {
      await page.close();
    }
  });
});

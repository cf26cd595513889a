// The explorer's routes as an HTTP client sees them (the browser tests show
// it working): which requests get the page, the headers its page and assets
// carry, and what a server whose explorer was never built answers.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import express from "express";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explorerContentSecurityPolicy, explorerRoutes } from "../../src/http/explorer.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let emptyDir: string;
beforeAll(async () => {
  server = await startTestServer();
  emptyDir = await mkdtemp(path.join(os.tmpdir(), "explorer-unbuilt-"));
});
afterAll(async () => {
  await server?.close();
  await rm(emptyDir, { recursive: true, force: true });
});

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe("the page", () => {
  it("is served to a browser, with the query in the address left to the page", async () => {
    const response = await fetch(`${server.url}?query=${encodeURIComponent("{ me { id } }")}`, { headers: { accept: BROWSER_ACCEPT } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const host = new URL(server.url).host;
    expect(response.headers.get("content-security-policy")).toBe(explorerContentSecurityPolicy(host));
    expect(response.headers.get("content-security-policy")).toContain(`connect-src 'self' ws://${host} wss://${host}`);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("vary")).toMatch(/Accept/);
    expect(await response.text()).toContain('<div id="root">');
  });

  it("is not served to a GraphQL client: its GET runs as GraphQL", async () => {
    for (const accept of ["application/json", "application/graphql-response+json", "*/*"]) {
      const response = await fetch(`${server.url}?query=${encodeURIComponent("{ me { id } }")}`, {
        headers: { accept, "apollo-require-preflight": "true" },
      });
      expect(response.status, accept).toBe(200);
      expect(await response.json(), accept).toMatchObject({ data: { me: null } });
    }
  });
});

describe("the assets", () => {
  it.each(["explorer.js", "explorer.css", "editor.worker.js", "json.worker.js", "graphql.worker.js"])("serves %s with the policy and nosniff", async (name) => {
    const response = await fetch(`${server.baseUrl}/explorer/${name}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(name.endsWith(".css") ? /^text\/css/ : /javascript/);
    expect(response.headers.get("content-security-policy")).toMatch(/^default-src 'none'; script-src 'self';/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("etag")).toBeTruthy();
  });

  it("answers an unknown one like any unknown path", async () => {
    const response = await fetch(`${server.baseUrl}/explorer/nothing.js`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: "NOT_FOUND" } }] });
  });
});

describe("an explorer that was never built", () => {
  it("answers 503 with how to build it, and the server says so at start", async () => {
    const lines: { msg?: string }[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg?: string }) });
    const app = express().use(explorerRoutes({ graphqlPath: "/graphql", logger, buildDir: emptyDir }));
    expect(lines.map((line) => line.msg)).toEqual(["EXPLORER=graphiql but the explorer is not built: run npm run build:explorer"]);
    const listener = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => listener.once("listening", resolve));
    try {
      const { port } = listener.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
      expect(response.status).toBe(503);
      expect(await response.text()).toContain("npm run build:explorer");
    } finally {
      listener.closeAllConnections();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

describe("explorerContentSecurityPolicy", () => {
  it("allows the WebSocket on the page's own host only, and nothing for a Host that is not a plain host", () => {
    expect(explorerContentSecurityPolicy("localhost:4000")).toContain("connect-src 'self' ws://localhost:4000 wss://localhost:4000;");
    expect(explorerContentSecurityPolicy("[::1]:4000")).toContain("connect-src 'self' ws://[::1]:4000 wss://[::1]:4000;");
    for (const host of [undefined, "", "evil.example; script-src *", "a b", "host/path"]) {
      expect(explorerContentSecurityPolicy(host), String(host)).toContain("connect-src 'self';");
    }
  });
});

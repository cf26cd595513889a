// The explorer (EXPLORER=graphiql, the default outside production) in a
// real browser that may reach nothing but this machine: every request to
// another host is blocked and recorded. It loads, runs a query with a pasted
// token, and runs a subscription over graphql-ws that receives an event
// caused by a mutation this test sends; the page asked for nothing
// elsewhere and broke no rule of its Content-Security-Policy.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, afterEach, expect, it } from "vitest";
import { signUp, startTestServer, uniqueEmail, type TestServer } from "../helpers/server.js";
import { describeInBrowser, isLocalUrl, launchChromium } from "./support.js";

let server: TestServer;
let browser: Browser;
let user: Awaited<ReturnType<typeof signUp>>;
let listId: string;

beforeAll(async () => {
  // First: without a browser there is nothing to test (and under CI that fails at once).
  browser = await launchChromium();
  server = await startTestServer();
  user = await signUp(server, uniqueEmail("explorer"));
  const space = await server.gql<{ createSpace: { id: string } }>(
    `mutation ($slug: String!) { createSpace(input: { name: "Explored", slug: $slug }) { id } }`,
    { slug: `ex${Date.now().toString(36)}` },
    user.token,
  );
  const list = await server.gql<{ createList: { id: string } }>(
    `mutation ($spaceId: ID!) { createList(input: { spaceId: $spaceId, title: "Things" }) { id } }`,
    { spaceId: space.data?.createSpace.id },
    user.token,
  );
  listId = list.data?.createList.id ?? "";
  expect(listId).not.toBe("");
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

let context: BrowserContext;
let page: Page;
/** Every URL the page (or one of its workers) asked for that is not on this machine. */
let elsewhere: string[];
/** Console errors and uncaught exceptions (a CSP violation is logged as one). */
let problems: string[];

beforeEach(async () => {
  context = await browser.newContext();
  elsewhere = [];
  problems = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLocalUrl(url)) return route.continue();
    elsewhere.push(url);
    return route.abort("blockedbyclient");
  });
  page = await context.newPage();
  page.on("websocket", (socket) => {
    if (!isLocalUrl(socket.url().replace(/^ws/, "http"))) elsewhere.push(socket.url());
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
});
afterEach(async () => {
  await context?.close();
});

const explorerUrl = (query: string) => `${server.url}?query=${encodeURIComponent(query)}`;

/** Opens the explorer on a query, pastes the user's token and waits until the editor shows the query. */
async function openExplorer(query: string, firstLine: string) {
  const response = await page.goto(explorerUrl(query));
  expect(response?.status()).toBe(200);
  expect(response?.headers()["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self';/);
  await page.locator(".graphiql-query-editor").getByText(firstLine).first().waitFor();
  await page.fill("#explorer-token", `Bearer ${user.token}`);
  await expect.poll(() => page.textContent("#explorer-token-status")).toBe("requests carry this token");
}

const run = () => page.click(".graphiql-execute-button");
/** The response pane's text (Monaco renders spaces as no-break spaces). */
const responseText = async () => (await page.locator(".graphiql-response").innerText()).replace(/\u00a0/g, " ");

describeInBrowser("the explorer, with every other host unreachable", () => {
  it("runs a query with the pasted token", async () => {
    await openExplorer(`query Me { me { email } }`, "query Me");
    await run();
    await expect.poll(responseText, { timeout: 15_000 }).toContain(user.email);
    // The schema came through introspection, for the docs and the explorer plugin.
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page.locator(".graphiql-doc-explorer").getByText("Query", { exact: true }).first().waitFor();
    await page.click('button[aria-label="Show GraphiQL Explorer"]');
    await page.locator(".graphiql-plugin").getByText("spaces", { exact: true }).first().waitFor();

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  });

  it("runs a subscription over graphql-ws that receives the event of a mutation", async () => {
    const subscribed = new Promise<void>((resolve) => {
      page.on("websocket", (socket) =>
        socket.on("framesent", (frame) => {
          if (String(frame.payload).includes('"type":"subscribe"')) resolve();
        }),
      );
    });
    await openExplorer(`subscription Changes { todoChanged(listId: "${listId}") { kind todo { title } } }`, "subscription Changes");
    await run();
    await subscribed;

    // The socket is open and the subscription sent; the server starts its
    // stream right after. Until the first event shows, each new todo is
    // another chance (a todo created before the stream began is not one).
    const title = `seen in the explorer ${Date.now()}`;
    await expect
      .poll(
        async () => {
          const created = await server.gql(`mutation ($listId: ID!, $title: String!) { createTodo(input: { listId: $listId, title: $title }) { id } }`, { listId, title }, user.token);
          expect(created.errors).toBeUndefined();
          return responseText();
        },
        { timeout: 15_000, interval: 500 },
      )
      .toContain(title);
    expect(await responseText()).toContain("CREATED");

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  });

  it("would see a page that reaches elsewhere: Apollo Sandbox (EXPLORER=sandbox) asks its CDN", async () => {
    const sandbox = await startTestServer({ env: { EXPLORER: "sandbox" } });
    try {
      await page.goto(sandbox.url, { waitUntil: "domcontentloaded" });
      await expect.poll(() => elsewhere.some((url) => new URL(url).hostname.endsWith("apollographql.com"))).toBe(true);
    } finally {
      // The page's keep-alive connections first, or the server's close waits for them.
      await page.close();
      await sandbox.close();
    }
  });
});

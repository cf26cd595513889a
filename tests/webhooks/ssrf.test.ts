// WEBHOOKS.md, "Accepted URLs": no request reaches a loopback, private,
// link-local, unique-local or metadata address. Written-out ones are refused
// at createWebhook/updateWebhook; a name that resolves to one is refused at
// every attempt, on the addresses the lookup returned (the test's own lookup
// stands in for DNS here); redirects are never followed.
import dns from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { isPrivateAddress, type LookupFunction } from "../../src/webhooks/urlGuard.js";
import { errorCode, startTestServer, type TestServer } from "../helpers/server.js";
import { adminWithSpace, createTodo, createWebhook, deliveriesOf, eventually, startReceiver, webhookEnv, type Receiver } from "./support.js";

/** Names the test resolves itself; everything else goes to the system resolver. */
const NAMES: Record<string, { address: string; family: number }[]> = {
  "receiver.test": [{ address: "127.0.0.1", family: 4 }],
  "metadata.test": [{ address: "169.254.169.254", family: 4 }],
  "mixed.test": [
    { address: "93.184.216.34", family: 4 },
    { address: "10.1.2.3", family: 4 },
  ],
  "v6.test": [{ address: "::1", family: 6 }],
};
const lookups: string[] = [];
const testLookup: LookupFunction = (hostname, options, callback) => {
  lookups.push(hostname);
  const entries = NAMES[hostname];
  if (!entries) {
    return dns.lookup(hostname, { ...options, all: true }, (error, addresses) =>
      options.all ? callback(error, addresses) : callback(error, addresses[0]?.address ?? "", addresses[0]?.family),
    );
  }
  if (options.all) return callback(null, entries);
  return callback(null, entries[0]!.address, entries[0]!.family);
};

let server: TestServer;
let prisma: RawPrismaClient;
let receiver: Receiver;
beforeAll(async () => {
  // Private networks are NOT allowed here (the default).
  server = await startTestServer({
    env: { JOBS_POLL_INTERVAL: "500ms", EVENT_POLL_INTERVAL: "200ms", WEBHOOK_MAX_ATTEMPTS: "1" },
    webhooks: { lookup: testLookup },
  });
  prisma = server.database.prisma;
  receiver = await startReceiver();
});
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

const CREATE = `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } secret } }`;

describe("at createWebhook and updateWebhook", () => {
  it.each([
    "http://127.0.0.1:8080/hook",
    "http://127.1.2.3/hook",
    "http://localhost:8080/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://172.31.255.255/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[fc00::abcd]/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "https://user:secret@example.com/hook",
    "not a url",
    `https://example.com/${"a".repeat(2000)}`,
  ])("refuses %s with BAD_USER_INPUT on url, creating nothing", async (url) => {
    const admin = await adminWithSpace(server);
    const result = await server.gql(CREATE, { input: { spaceId: admin.spaceId, url } }, admin.token);
    expect(errorCode(result), JSON.stringify(result.errors)).toBe("BAD_USER_INPUT");
    expect(result.errors?.[0]?.extensions?.field).toBe("url");
    expect(await prisma.webhook.count({ where: { spaceId: admin.spaceId } })).toBe(0);
  });

  it("accepts public https and (outside production) http URLs, and names it cannot judge yet", async () => {
    const admin = await adminWithSpace(server);
    for (const url of ["https://example.com/hook", "http://example.com:8080/hook", "http://172.32.0.1/hook", "http://receiver.test/hook"]) {
      const result = await server.gql(CREATE, { input: { spaceId: admin.spaceId, url } }, admin.token);
      expect(result.errors, url).toBeUndefined();
    }
  });

  it("refuses an update to a private address and leaves the webhook as it was", async () => {
    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, "https://example.com/hook");
    const result = await server.gql(`mutation ($id: ID!) { updateWebhook(id: $id, input: { url: "http://192.168.0.10/x" }) { id } }`, { id: hook.id }, admin.token);
    expect(errorCode(result)).toBe("BAD_USER_INPUT");
    expect(result.errors?.[0]?.extensions?.field).toBe("url");
    expect((await prisma.webhook.findUniqueOrThrow({ where: { id: hook.id } })).url).toBe("https://example.com/hook");
  });
});

describe("at every attempt", () => {
  it.each([
    ["receiver.test", "127.0.0.1"],
    ["metadata.test", "169.254.169.254"],
    ["mixed.test", "10.1.2.3"],
    ["v6.test", "::1"],
  ])("refuses a name that resolves to a private address (%s -> %s): no request is made", async (host, address) => {
    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, `http://${host}:${receiver.port}/hook`);
    const before = receiver.requests.length;
    await createTodo(server, admin.token, admin.listId, "Never sent");
    const [delivery] = await eventually(async () => {
      const rows = await deliveriesOf(prisma, hook.id);
      return rows[0]?.status === "FAILED" ? rows : undefined;
    }, "the attempt to fail");
    expect(delivery!.attempts).toBe(1);
    expect(delivery!.lastStatusCode).toBeNull();
    expect(delivery!.lastError).toBe(`Refused to connect to ${address}: a loopback, private, link-local or metadata address.`);
    expect(lookups).toContain(host);
    expect(receiver.requests.length).toBe(before);
  });

  it("refuses a private address written out, even when it was accepted earlier (a stored URL)", async () => {
    const admin = await adminWithSpace(server);
    const hook = await createWebhook(server, admin.token, admin.spaceId, "https://example.com/hook");
    // As if written while WEBHOOK_ALLOW_PRIVATE_NETWORKS was true.
    await prisma.webhook.update({ where: { id: hook.id }, data: { url: receiver.url } });
    const before = receiver.requests.length;
    await createTodo(server, admin.token, admin.listId, "Never sent either");
    const [delivery] = await eventually(async () => {
      const rows = await deliveriesOf(prisma, hook.id);
      return rows[0]?.status === "FAILED" ? rows : undefined;
    }, "the attempt to fail");
    expect(delivery!.lastError).toMatch(/^Refused to connect to 127\.0\.0\.1/);
    expect(receiver.requests.length).toBe(before);
  });
});

describe("redirects", () => {
  let open: TestServer;
  beforeAll(async () => {
    open = await startTestServer({ env: webhookEnv({ WEBHOOK_MAX_ATTEMPTS: "1" }) });
  });
  afterAll(() => open?.close());

  it("are not followed: a 3xx is a failed attempt and its Location is never requested", async () => {
    const redirecting = await startReceiver((request) => (request.path === "/start" ? { redirectTo: "/elsewhere" } : 200));
    try {
      const admin = await adminWithSpace(open);
      const hook = await createWebhook(open, admin.token, admin.spaceId, `http://127.0.0.1:${redirecting.port}/start`);
      await createTodo(open, admin.token, admin.listId, "Redirected");
      const [delivery] = await eventually(async () => {
        const rows = await deliveriesOf(open.database.prisma, hook.id);
        return rows[0]?.status === "FAILED" ? rows : undefined;
      }, "the attempt to fail");
      expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 302, lastError: "HTTP 302: redirects are not followed." });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(redirecting.requests.map((r) => r.path)).toEqual(["/start"]);
    } finally {
      await redirecting.close();
    }
  });
});

describe("isPrivateAddress", () => {
  it.each([
    ["127.0.0.1", true], ["0.0.0.0", true], ["10.255.0.1", true], ["172.16.0.1", true], ["172.31.1.1", true],
    ["192.168.0.1", true], ["169.254.169.254", true], ["100.64.0.1", true], ["::1", true], ["::", true],
    ["fe80::1", true], ["fd12:3456::1", true], ["fc00::1", true], ["::ffff:10.0.0.1", true], ["::ffff:7f00:1", true],
    ["172.32.0.1", false], ["8.8.8.8", false], ["93.184.216.34", false], ["2606:4700::1111", false], ["::ffff:8.8.8.8", false],
  ])("%s -> %s", (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});

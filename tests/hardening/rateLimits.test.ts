// Rate limits on credentials, end to end: failed log-ins per (account, client
// address) pair, per account across addresses and per address across
// accounts, sign-ups per address, X-Forwarded-For only behind a trusted proxy,
// counters shared through Redis, and the in-memory fallback when Redis is down
// or stops answering. Small limits keep the tests fast.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { signUp, startTestServer, uniqueEmail, type GraphQLResult, type TestServer } from "../helpers/server.js";
import { PrivateRedis } from "../helpers/redis.js";
import { post } from "./ops-support.js";

const LOG_IN = `mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { token user { id } } }`;
const SIGN_UP = `mutation ($input: SignUpInput!) { signUp(input: $input) { token } }`;
const PASSWORD = "correct-horse-1";

let address = 0;
/** A fresh client address (TEST-NET-3), so tests do not share per-address counters. */
const newAddress = () => `203.0.113.${++address}`;

const logIn = (server: Pick<TestServer, "url">, email: string, password: string, from?: string) =>
  post<{ logIn: { token: string } }>(server.url, LOG_IN, { email, password }, from ? { "x-forwarded-for": from } : {});

const code = (result: GraphQLResult<unknown>) => result.errors?.[0]?.extensions?.code;

function expectRateLimited(result: GraphQLResult<unknown>, windowSeconds: number) {
  expect(code(result), JSON.stringify(result.errors)).toBe("RATE_LIMITED");
  const retry = result.errors?.[0]?.extensions?.retryAfterSeconds;
  expect(Number.isInteger(retry)).toBe(true);
  expect(retry as number).toBeGreaterThan(0);
  expect(retry as number).toBeLessThanOrEqual(windowSeconds);
  expect(result.data ?? null).toBeNull();
  expect(JSON.stringify(result)).not.toMatch(/"token"/);
}

describe("log-in and sign-up limits (memory, TRUST_PROXY=true)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: {
        TRUST_PROXY: "true",
        RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: "3",
        RATE_LIMIT_LOGIN_PER_ADDRESS: "5",
        RATE_LIMIT_LOGIN_WINDOW: "60s",
        RATE_LIMIT_LOGIN_PER_ACCOUNT: "6",
        RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: "120s",
      },
    });
  });
  afterAll(() => server?.close());

  it("locks out an attacker's address for an account, while the owner signs in from another address", async () => {
    const user = await signUp(server);
    const attacker = newAddress();
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", attacker))).toBe("UNAUTHENTICATED");
    }
    // Case and surrounding spaces do not make a new account key.
    expectRateLimited(await logIn(server, `  ${user.email.toUpperCase()} `, PASSWORD, attacker), 60);
    const owner = newAddress();
    expect((await logIn(server, user.email, PASSWORD, owner)).data?.logIn.token).toBeTruthy();
    // The owner's success clears the owner's failures only: the attacker stays
    // locked out (five attempts from that address: under its own limit).
    expectRateLimited(await logIn(server, user.email, PASSWORD, attacker), 60);
  });

  it("locks an account after its failed attempts from many addresses, with an integer retryAfterSeconds", async () => {
    const user = await signUp(server);
    for (let attempt = 0; attempt < 6; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, user.email, "wrong-password", newAddress()), 120);
    expectRateLimited(await logIn(server, user.email, PASSWORD, newAddress()), 120);
    expectRateLimited(await logIn(server, `  ${user.email.toUpperCase()} `, PASSWORD, newAddress()), 120);
  });

  it("refuses even the right password while locked, and the answer does not tell them apart", async () => {
    const shape = (result: GraphQLResult<unknown>) => ({
      status: result.status,
      data: result.data ?? null,
      errors: result.errors?.map((error) => ({
        ...error,
        message: error.message.replace(/\d+/g, "N"),
        extensions: { ...error.extensions, retryAfterSeconds: "N" },
      })),
    });
    // Locked for one address.
    const user = await signUp(server);
    const from = newAddress();
    for (let attempt = 0; attempt < 3; attempt++) await logIn(server, user.email, "wrong-password", from);
    const right = await logIn(server, user.email, PASSWORD, from);
    const wrong = await logIn(server, user.email, "wrong-password", from);
    expectRateLimited(right, 60);
    expectRateLimited(wrong, 60);
    expect(shape(right)).toEqual(shape(wrong));
    // A locked account that does not exist answers the same: locks reveal no accounts.
    const ghost = uniqueEmail("ghost");
    const ghostFrom = newAddress();
    for (let attempt = 0; attempt < 3; attempt++) await logIn(server, ghost, "wrong-password", ghostFrom);
    expect(shape(await logIn(server, ghost, "wrong-password", ghostFrom))).toEqual(shape(wrong));
    // Locked from everywhere, by many addresses: the same again.
    const target = await signUp(server);
    for (let attempt = 0; attempt < 6; attempt++) await logIn(server, target.email, "wrong-password", newAddress());
    const rightEverywhere = await logIn(server, target.email, PASSWORD, newAddress());
    expectRateLimited(rightEverywhere, 120);
    expect(shape(rightEverywhere)).toEqual(shape(wrong));
    const spread = uniqueEmail("ghost");
    for (let attempt = 0; attempt < 6; attempt++) await logIn(server, spread, "wrong-password", newAddress());
    expect(shape(await logIn(server, spread, "wrong-password", newAddress()))).toEqual(shape(wrong));
    // Other accounts are not affected.
    const other = await signUp(server);
    expect((await logIn(server, other.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
  });

  it("forgets an address's failures for an account after a successful log-in from it", async () => {
    const user = await signUp(server);
    const from = newAddress();
    expect(code(await logIn(server, user.email, "wrong-password", from))).toBe("UNAUTHENTICATED");
    expect((await logIn(server, user.email, PASSWORD, from)).data?.logIn.token).toBeTruthy();
    // (Five attempts from one address in all: the per-address limit stays out of the way.)
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", from))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, user.email, PASSWORD, from), 60);
  });

  it("does not forget the account's failures from other addresses after a successful log-in", async () => {
    const user = await signUp(server);
    for (let attempt = 0; attempt < 4; attempt++) await logIn(server, user.email, "wrong-password", newAddress());
    // The owner signing in neither counts nor wipes out what the attackers did.
    expect((await logIn(server, user.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, user.email, PASSWORD, newAddress()), 120);
  });

  it("counts concurrent attempts atomically: a burst cannot slip past the account limit", async () => {
    const user = await signUp(server);
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => logIn(server, user.email, "wrong-password", newAddress())),
    );
    const codes = burst.map(code);
    expect(codes.filter((c) => c === "UNAUTHENTICATED")).toHaveLength(6);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(6);
  });

  it("counts concurrent attempts atomically: a burst from one address cannot slip past its limit for the account", async () => {
    const user = await signUp(server);
    const from = newAddress();
    const burst = await Promise.all(Array.from({ length: 12 }, () => logIn(server, user.email, "wrong-password", from)));
    const codes = burst.map(code);
    expect(codes.filter((c) => c === "UNAUTHENTICATED")).toHaveLength(3);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(9);
    // Refused attempts did not use up the account's allowance: three more addresses may still try.
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, user.email, "wrong-password", newAddress()), 120);
  });

  it("limits failed log-ins per client address, across accounts, taken from X-Forwarded-For", async () => {
    const from = newAddress();
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(code(await logIn(server, uniqueEmail("nobody"), "wrong-password", from))).toBe("UNAUTHENTICATED");
    }
    const user = await signUp(server);
    expectRateLimited(await logIn(server, user.email, PASSWORD, from), 60);
    // The same account from another address still works: the address was limited, not the account.
    expect((await logIn(server, user.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
  });

  it("takes the address the proxy saw: entries a client puts in front of it do not make a new address", async () => {
    const from = newAddress();
    for (let attempt = 0; attempt < 5; attempt++) {
      const spoofed = `${newAddress()}, ${from}`;
      expect(code(await logIn(server, uniqueEmail("nobody"), "wrong-password", spoofed))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, uniqueEmail("nobody"), "wrong-password", `198.51.100.7, ${from}`), 60);
  });

  it("does not count successful log-ins against the address", async () => {
    const from = newAddress();
    const user = await signUp(server);
    for (let attempt = 0; attempt < 8; attempt++) {
      expect((await logIn(server, user.email, PASSWORD, from)).data?.logIn.token).toBeTruthy();
    }
  });

  it("limits sign-ups per address at the default of 100 per hour", async () => {
    expect(server.config.rateLimits.signUpPerAddress).toBe(100);
    expect(server.config.rateLimits.signUpWindowMs).toBe(3_600_000);
    const from = newAddress();
    const signUpFrom = (at: string) =>
      post(server.url, SIGN_UP, { input: { email: uniqueEmail("bulk"), password: PASSWORD } }, { "x-forwarded-for": at });
    // Four at a time: argon2 hashing is the slow part.
    for (let batch = 0; batch < 25; batch++) {
      const results = await Promise.all(Array.from({ length: 4 }, () => signUpFrom(from)));
      for (const result of results) expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    }
    expectRateLimited(await signUpFrom(from), 3600);
    expect((await signUpFrom(newAddress())).errors).toBeUndefined();
  }, 120_000);
});

describe("configuration of the sign-up limit", () => {
  it("defaults to 100 per hour and refuses anything lower than 100", () => {
    expect(loadConfig({}).rateLimits.signUpPerAddress).toBe(100);
    expect(loadConfig({ RATE_LIMIT_SIGNUP_PER_ADDRESS: "500" }).rateLimits.signUpPerAddress).toBe(500);
    expect(() => loadConfig({ RATE_LIMIT_SIGNUP_PER_ADDRESS: "99" })).toThrow(ConfigError);
    expect(() => loadConfig({ RATE_LIMIT_SIGNUP_PER_ADDRESS: "99" })).toThrow(/RATE_LIMIT_SIGNUP_PER_ADDRESS/);
  });

  it("defaults log-in limits to 10 per account and address and 100 per address per 15 minutes, 100 per account per hour", () => {
    expect(loadConfig({}).rateLimits).toMatchObject({
      loginPerAccountAddress: 10,
      loginPerAddress: 100,
      loginWindowMs: 900_000,
      loginPerAccount: 100,
      loginAccountWindowMs: 3_600_000,
    });
  });
});

describe("log-in limits at their defaults (TRUST_PROXY=true)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TRUST_PROXY: "true" } });
  });
  afterAll(() => server?.close());

  it("an attacker at one address cannot lock the owner out: ten failures lock that address out of the account only", async () => {
    const user = await signUp(server);
    const attacker = newAddress();
    for (let attempt = 0; attempt < 10; attempt++) {
      expect(code(await logIn(server, user.email, "wrong-password", attacker))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, user.email, PASSWORD, attacker), 900);
    const owner = await logIn(server, user.email, PASSWORD, newAddress());
    expect(owner.errors, JSON.stringify(owner.errors)).toBeUndefined();
    expect(owner.data?.logIn.token).toBeTruthy();
  });
});

describe("client address without a trusted proxy (TRUST_PROXY=false)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: { TRUST_PROXY: "false", RATE_LIMIT_LOGIN_PER_ACCOUNT: "50", RATE_LIMIT_LOGIN_PER_ADDRESS: "3" },
    });
  });
  afterAll(() => server?.close());

  it("ignores X-Forwarded-For: changing it does not escape the per-address limit", async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(code(await logIn(server, uniqueEmail("nobody"), "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(server, uniqueEmail("nobody"), "wrong-password", newAddress()), 900);
    expectRateLimited(await logIn(server, uniqueEmail("nobody"), "wrong-password"), 900);
  });
});

describe("limits shared through Redis", () => {
  let redis: PrivateRedis;
  let first: TestServer;
  let second: TestServer;
  let database: TestDatabase;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    const env = {
      REDIS_URL: redis.url,
      TRUST_PROXY: "true",
      RATE_LIMIT_LOGIN_PER_ACCOUNT_ADDRESS: "3",
      RATE_LIMIT_LOGIN_PER_ADDRESS: "4",
      RATE_LIMIT_LOGIN_WINDOW: "60s",
      RATE_LIMIT_LOGIN_PER_ACCOUNT: "5",
      RATE_LIMIT_LOGIN_ACCOUNT_WINDOW: "120s",
    };
    // Two instances of one deployment: same database, same Redis.
    database = await createTestDatabase();
    first = await startTestServer({ env, database });
    second = await startTestServer({ env, database });
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await database?.drop();
    await redis?.stop();
  });

  it("counts an account's failures from one address across instances, and the owner at another address signs in", async () => {
    // On PGlite each instance has a database of its own, so the account lives on `first`.
    const user = await signUp(first);
    const attacker = newAddress();
    for (const server of [second, first, second]) {
      expect(code(await logIn(server, user.email, "wrong-password", attacker))).toBe("UNAUTHENTICATED");
    }
    // `first` saw one failure from this address, so only the shared count can lock it.
    expectRateLimited(await logIn(first, user.email, PASSWORD, attacker), 60);
    const owner = await logIn(first, user.email, PASSWORD, newAddress());
    expect(owner.errors, JSON.stringify(owner.errors)).toBeUndefined();
    expect(owner.data?.logIn.token).toBeTruthy();
  });

  it("counts an account's failures from many addresses across instances", async () => {
    const email = uniqueEmail("shared");
    for (const server of [first, second, first, second, first]) {
      expect(code(await logIn(server, email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(second, email, "wrong-password", newAddress()), 120);
    expectRateLimited(await logIn(first, email, "wrong-password", newAddress()), 120);
  });

  it("counts an address's failures across instances", async () => {
    const from = newAddress();
    for (const server of [first, second, first, second]) {
      expect(code(await logIn(server, uniqueEmail("nobody"), "wrong-password", from))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(first, uniqueEmail("nobody"), "wrong-password", from), 60);
  });

  it("keeps limiting in memory while Redis does not answer, without hanging", async () => {
    const user = await signUp(first);
    redis.pause();
    try {
      const started = Date.now();
      const attacker = newAddress();
      for (let attempt = 0; attempt < 3; attempt++) {
        expect(code(await logIn(first, user.email, "wrong-password", attacker))).toBe("UNAUTHENTICATED");
      }
      expectRateLimited(await logIn(first, user.email, PASSWORD, attacker), 60);
      expect((await logIn(first, user.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
      const email = uniqueEmail("paused");
      for (let attempt = 0; attempt < 5; attempt++) {
        expect(code(await logIn(first, email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
      }
      expectRateLimited(await logIn(first, email, "wrong-password", newAddress()), 120);
      // Each attempt waits for Redis at most a moment per counter; generous bound for a busy machine.
      expect(Date.now() - started).toBeLessThan(40_000);
    } finally {
      redis.resume();
    }
  }, 60_000);

  it("keeps limiting in memory when Redis is down: no crash, no open door", async () => {
    const user = await signUp(second);
    await redis.stop();
    const attacker = newAddress();
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(code(await logIn(second, user.email, "wrong-password", attacker))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(second, user.email, PASSWORD, attacker), 60);
    expect((await logIn(second, user.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
    const email = uniqueEmail("down");
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(code(await logIn(second, email, "wrong-password", newAddress()))).toBe("UNAUTHENTICATED");
    }
    expectRateLimited(await logIn(second, email, "wrong-password", newAddress()), 120);
    const other = await signUp(second);
    expect((await logIn(second, other.email, PASSWORD, newAddress())).data?.logIn.token).toBeTruthy();
    expect((await fetch(`${second.baseUrl}/health`)).status).toBe(200);
  });
});

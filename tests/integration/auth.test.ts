import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, signUp, startTestServer, TEST_JWT_SECRET, uniqueEmail, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.close());

const ME = `{ me { id email name image createdAt } }`;
const SIGN_UP = `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id email name } } }`;
const LOG_IN = `mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { token user { id email } } }`;

async function userCount(): Promise<number> {
  return server.database.prisma.user.count();
}

describe("sign-up, log-in and me over HTTP", () => {
  it("signs up, logs in and reads me with the bearer token", async () => {
    const email = uniqueEmail("Flow");
    const signed = await server.gql<{ signUp: { token: string; user: { id: string; email: string; name: string } } }>(
      SIGN_UP,
      { input: { email: `  ${email.toUpperCase()} `, password: "longenough1", name: "Ada" } },
    );
    expect(signed.errors).toBeUndefined();
    expect(signed.data?.signUp.user).toMatchObject({ email: email.toLowerCase(), name: "Ada" });

    const logged = await server.gql<{ logIn: { token: string; user: { id: string } } }>(LOG_IN, {
      email: email.toUpperCase(),
      password: "longenough1",
    });
    expect(logged.data?.logIn.user.id).toBe(signed.data?.signUp.user.id);

    const me = await server.gql<{ me: { id: string; email: string; createdAt: string } }>(ME, {}, logged.data?.logIn.token);
    expect(me.data?.me.id).toBe(signed.data?.signUp.user.id);
    expect(me.data?.me.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("returns null for me when anonymous", async () => {
    const me = await server.gql(ME);
    expect(me.status).toBe(200);
    expect(me.data).toEqual({ me: null });
  });

  it("never exposes the password hash", async () => {
    const result = await server.gql(`{ me { passwordHash } }`);
    expect(errorCode(result)).toBe("GRAPHQL_VALIDATION_FAILED");
  });

  it("updates the signed-in user's profile", async () => {
    const { token } = await signUp(server);
    const result = await server.gql<{ updateMe: { name: string; image: string } }>(
      `mutation { updateMe(input: { name: "  Grace ", image: "https://example.com/a.png" }) { name image } }`,
      {},
      token,
    );
    expect(result.data?.updateMe).toEqual({ name: "Grace", image: "https://example.com/a.png" });
  });
});

describe("auth errors", () => {
  it.each([
    [{ email: "not-an-email", password: "longenough1" }, "email"],
    [{ email: uniqueEmail(), password: "short" }, "password"],
    [{ email: uniqueEmail(), password: "x".repeat(300) }, "password"],
    [{ email: uniqueEmail(), password: "longenough1", name: "n".repeat(101) }, "name"],
  ])("rejects bad sign-up input %j with BAD_USER_INPUT on %s and creates nothing", async (input, field) => {
    const before = await userCount();
    const result = await server.gql(SIGN_UP, { input });
    expect(errorCode(result)).toBe("BAD_USER_INPUT");
    expect(result.errors?.[0]?.extensions?.field).toBe(field);
    expect(await userCount()).toBe(before);
  });

  it("rejects a second sign-up with the same email (any case) with CONFLICT", async () => {
    const { email } = await signUp(server);
    const before = await userCount();
    const result = await server.gql(SIGN_UP, { input: { email: email.toUpperCase(), password: "longenough1" } });
    expect(errorCode(result)).toBe("CONFLICT");
    expect(result.errors?.[0]?.extensions?.field).toBe("email");
    expect(await userCount()).toBe(before);
  });

  it("answers a wrong password and an unknown email with the same UNAUTHENTICATED message", async () => {
    const { email } = await signUp(server);
    const wrongPassword = await server.gql(LOG_IN, { email, password: "wrong-password" });
    const unknownEmail = await server.gql(LOG_IN, { email: uniqueEmail("nobody"), password: "wrong-password" });
    expect(errorCode(wrongPassword)).toBe("UNAUTHENTICATED");
    expect(errorCode(unknownEmail)).toBe("UNAUTHENTICATED");
    expect(wrongPassword.errors?.[0]?.message).toBe(unknownEmail.errors?.[0]?.message);
  });

  it("rejects operations other than signUp, logIn and me when anonymous", async () => {
    for (const query of [
      `{ spaces { totalCount } }`,
      `{ user(id: "x") { id } }`,
      `mutation { updateMe(input: { name: "x" }) { id } }`,
      `mutation { createSpace(input: { name: "Team", slug: "team" }) { id } }`,
    ]) {
      expect(errorCode(await server.gql(query)), query).toBe("UNAUTHENTICATED");
    }
  });
});

describe("bearer tokens", () => {
  const sign = (claims: { sub: string; exp: number; iss?: string }, secret = TEST_JWT_SECRET) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(claims.sub)
      .setIssuer(claims.iss ?? "todo-graphql-server")
      .setIssuedAt()
      .setExpirationTime(claims.exp)
      .sign(new TextEncoder().encode(secret));

  it("rejects an expired token with 401 UNAUTHENTICATED", async () => {
    const { user } = await signUp(server);
    const token = await sign({ sub: user.id, exp: Math.floor(Date.now() / 1000) - 10 });
    const result = await server.gql(ME, {}, token);
    expect(result.status).toBe(401);
    expect(errorCode(result)).toBe("UNAUTHENTICATED");
    expect(result.errors?.[0]?.message).toMatch(/expired/);
  });

  it("rejects a token signed with another secret", async () => {
    const { user } = await signUp(server);
    const token = await sign({ sub: user.id, exp: Math.floor(Date.now() / 1000) + 60 }, "another-secret-another-secret-another-secret");
    const result = await server.gql(ME, {}, token);
    expect(result.status).toBe(401);
    expect(errorCode(result)).toBe("UNAUTHENTICATED");
  });

  it("rejects a tampered token", async () => {
    const { token } = await signUp(server);
    const [header, payload, signature] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: "someone-else" })).toString("base64url");
    const result = await server.gql(ME, {}, `${header}.${forged}.${signature}`);
    expect(errorCode(result)).toBe("UNAUTHENTICATED");
  });

  it.each(["Bearer", "Basic abc", "Bearer a b", "garbage"])("rejects a malformed Authorization header %j", async (header) => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: header },
      body: JSON.stringify({ query: ME }),
    });
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(response.status).toBe(401);
    expect(body.errors[0]?.extensions.code).toBe("UNAUTHENTICATED");
  });
});

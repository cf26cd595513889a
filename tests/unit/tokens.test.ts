// The token service remembers tokens it has checked (src/modules/auth/tokens.ts):
// a remembered token must still expire on time, and only the exact token text
// is remembered, so a forged variant of an accepted token is checked in full.
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { createTokenService } from "../../src/modules/auth/tokens.js";

const secret = new TextEncoder().encode("a-test-secret-a-test-secret-a-test-secret");
const tokens = createTokenService(secret, 60_000);

const sign = (exp: number, key = secret) =>
  new SignJWT({ sid: "s1" }).setProtectedHeader({ alg: "HS256" }).setSubject("u1").setIssuer("todo-graphql-server").setIssuedAt().setExpirationTime(exp).sign(key);

const refusal = async (token: string) => {
  try {
    await tokens.verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).message;
  }
  throw new Error("the token was accepted");
};

describe("token service", () => {
  it("refuses a token it accepted before, once the token has expired", async () => {
    // exp is in whole seconds: two from now leaves the token at least one
    // second to live (one from now could leave it a few milliseconds, and a
    // busy machine expired it before the first check).
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const token = await sign(expiresAt);
    expect((await tokens.verify(token)).viewer).toEqual({ id: "u1", sessionId: "s1" });
    expect((await tokens.verify(token)).viewer).toEqual({ id: "u1", sessionId: "s1" });
    await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 - Date.now() + 100));
    expect(await refusal(token)).toMatch(/expired/);
  });

  it("checks in full any token that differs from an accepted one", async () => {
    const token = await sign(Math.floor(Date.now() / 1000) + 60);
    expect((await tokens.verify(token)).viewer).toEqual({ id: "u1", sessionId: "s1" });
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.at(-2) === "A" ? "B" : "A"}${signature.at(-1)}`;
    expect(await refusal(`${header}.${payload}.${flipped}`)).toMatch(/not valid/);
    const otherKey = await sign(Math.floor(Date.now() / 1000) + 60, new TextEncoder().encode("another-secret-another-secret-another"));
    expect(await refusal(otherKey)).toMatch(/not valid/);
    // The accepted token itself still is.
    expect((await tokens.verify(token)).viewer).toEqual({ id: "u1", sessionId: "s1" });
  });

  it("issues tokens it accepts", async () => {
    const { token } = await tokens.issue("u2", "s2");
    expect((await tokens.verify(token)).viewer).toEqual({ id: "u2", sessionId: "s2" });
  });
});

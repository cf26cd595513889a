// Access tokens: short-lived (JWT_TTL) HS256 JWTs carrying the user id (sub)
// and the session they belong to (sid); sessionCheck.ts refuses them once
// that session has ended. The secret comes from
// JWT_SECRET; outside production, when it is unset, one is generated on first
// start and kept in DATA_DIR so tokens survive restarts.
import { randomBytes, webcrypto } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { errors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import type { Config } from "../../config.js";
import { unauthenticated } from "../../errors.js";
import type { Viewer } from "../../policy/viewer.js";

const ISSUER = "todo-graphql-server";

// Tokens whose signature and claims were checked, with their claims: a
// token's validity depends only on its text, the secret and the clock, so a
// token seen again needs only its expiry checked against the clock (its
// signature check, a WebCrypto job, was a tenth of the CPU of a small read).
// Whether its session is still active is not a property of the token:
// sessionCheck.ts asks that of every request. Bounded: the oldest entry makes
// way for a new one.
const VERIFIED_TOKENS_MAX = 10_000;

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export interface VerifiedToken {
  viewer: Viewer & { sessionId: string };
  expiresAt: Date;
}

export interface TokenService {
  issue(userId: string, sessionId: string): Promise<IssuedToken>;
  /**
   * The viewer and session a token names; throws UNAUTHENTICATED for any bad
   * token. It does not say whether the session is still active (sessionCheck.ts does).
   */
  verify(token: string): Promise<VerifiedToken>;
}

/** Tokens from before sessions carry no sid: they cannot be ended, so they are refused. */
export const SESSIONLESS_TOKEN_MESSAGE = "This token was issued before sessions existed and is no longer accepted. Sign in again.";

export async function resolveJwtSecret(config: Pick<Config, "jwt" | "dataDir">): Promise<Uint8Array> {
  if (config.jwt.secret) return new TextEncoder().encode(config.jwt.secret);
  const file = path.join(config.dataDir, "jwt-secret");
  try {
    return new TextEncoder().encode((await readFile(file, "utf8")).trim());
  } catch {
    const secret = randomBytes(48).toString("base64url");
    await mkdir(config.dataDir, { recursive: true });
    // wx: if another process wrote one first, fall back to reading theirs.
    await writeFile(file, secret, { mode: 0o600, flag: "wx" }).catch(() => undefined);
    return new TextEncoder().encode((await readFile(file, "utf8")).trim());
  }
}

export function createTokenService(secret: Uint8Array, ttlMs: number): TokenService {
  // Imported once: given the raw bytes, jose imports the key again for every token it signs or checks.
  let key: Promise<webcrypto.CryptoKey> | undefined;
  const hmacKey = () =>
    (key ??= webcrypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]));
  const verified = new Map<string, JWTPayload>();
  const checkedClaims = async (token: string): Promise<JWTPayload> => {
    const known = verified.get(token);
    // Expired as jose counts it (exp <= now, in whole seconds): checked in full again, which says so.
    if (known && typeof known.exp === "number" && known.exp > Math.floor(Date.now() / 1000)) return known;
    verified.delete(token);
    const { payload } = await jwtVerify(token, await hmacKey(), { issuer: ISSUER, algorithms: ["HS256"] });
    if (verified.size >= VERIFIED_TOKENS_MAX) verified.delete(verified.keys().next().value!);
    verified.set(token, payload);
    return payload;
  };
  return {
    async issue(userId, sessionId) {
      // Whole seconds, as the exp claim holds it: tokenExpiresAt is exactly when it stops working.
      const expiresAt = new Date(Math.floor((Date.now() + ttlMs) / 1000) * 1000);
      const token = await new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(expiresAt)
        .sign(await hmacKey());
      return { token, expiresAt };
    },
    async verify(token) {
      let payload;
      try {
        payload = await checkedClaims(token);
      } catch (error) {
        if (error instanceof errors.JWTExpired) throw unauthenticated("Your token has expired. Refresh the session or sign in again.");
        throw unauthenticated("The bearer token is not valid.");
      }
      if (typeof payload.sub !== "string" || typeof payload.exp !== "number") throw unauthenticated("The bearer token is not valid.");
      if (typeof payload.sid !== "string" || payload.sid === "") throw unauthenticated(SESSIONLESS_TOKEN_MESSAGE);
      return { viewer: { id: payload.sub, sessionId: payload.sid }, expiresAt: new Date(payload.exp * 1000) };
    },
  };
}

/** Reads "Bearer <token>"; undefined when there is no header at all. */
export function bearerToken(authorization: unknown): string | undefined {
  if (authorization === undefined || authorization === null || authorization === "") return undefined;
  if (typeof authorization !== "string") throw unauthenticated("The Authorization header must be 'Bearer <token>'.");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match?.[1]) throw unauthenticated("The Authorization header must be 'Bearer <token>'.");
  return match[1];
}

// Rate limits on credentials, against credential stuffing and sign-up spam:
//   log-in   failed attempts per (account, client address) pair: the tight
//            limit, so one address guessing at an account locks out only
//            itself, never the owner signing in from elsewhere;
//            per account across all addresses: far looser, only a
//            distributed attack reaches it;
//            per client address across accounts;
//   sign-up  attempts per client address.
// Counters live in memory, or in Redis when REDIS_URL is set so the limits hold
// across instances; if Redis fails or stops answering, an in-memory limiter
// takes over rather than letting every attempt through or locking everyone out.
//
// A log-in attempt takes its points before the password is checked, atomically
// (consume), and gives them back when it succeeds. Checking first and counting
// after the (slow, argon2) verification would let a burst of concurrent
// attempts all pass the check before any of them was counted.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  RLWrapperTimeouts,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";
import type { Config } from "../../config.js";
import { rateLimited } from "../../errors.js";

/** How long a Redis round trip may take before the in-memory limiter answers instead. */
const REDIS_TIMEOUT_MS = 500;
/** Longer keys (no account has such an email) are hashed, so keys stay small. */
const MAX_KEY_LENGTH = 254;

export interface LogInAttempt {
  /**
   * The password was right: this address's failures for the account are
   * forgotten; the account's and the address's points for this attempt are
   * returned. Other addresses' failures stay counted, so an attacker's
   * budget is not refilled each time the owner signs in.
   */
  succeeded(): Promise<void>;
  /** The attempt ended without checking a password (e.g. the database was down): points returned. */
  abandoned(): Promise<void>;
}

export interface AuthRateLimiter {
  /**
   * Counts one sign-up from the address; throws RATE_LIMITED over the limit.
   * The attempt can be given back when it failed for the server's reasons.
   */
  consumeSignUp(clientAddress: string): Promise<{ refund(): Promise<void> }>;
  /**
   * Counts one log-in attempt against the address, the (account, address)
   * pair and the account; throws RATE_LIMITED when any is locked out, before
   * any password is checked. A failed attempt needs nothing more: its points
   * stay taken.
   */
  startLogIn(email: string, clientAddress: string): Promise<LogInAttempt>;
}

type Limiter = RateLimiterAbstract | RLWrapperTimeouts;

function limiter(keyPrefix: string, points: number, windowMs: number, redis: Redis | undefined): Limiter {
  const duration = Math.max(1, Math.ceil(windowMs / 1000));
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (!redis) return memory;
  const shared = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `rl:${keyPrefix}`,
    points,
    duration,
    insuranceLimiter: memory,
    // While ioredis is reconnecting, go straight to the insurance limiter.
    rejectIfRedisNotReady: true,
  });
  // A Redis that accepts the connection but does not answer would otherwise
  // hold every log-in until it came back.
  return new RLWrapperTimeouts({ limiter: shared, timeoutMs: REDIS_TIMEOUT_MS, insuranceLimiter: memory });
}

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

const keyOf = (value: string) =>
  value.length <= MAX_KEY_LENGTH ? value : `sha256:${createHash("sha256").update(value).digest("hex")}`;

async function consume(limit: Limiter, key: string): Promise<void> {
  try {
    await limit.consume(key);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) throw rateLimited(retryAfter(rejection));
    throw rejection;
  }
}

export function createAuthRateLimiter(settings: Config["rateLimits"], redis?: Redis): AuthRateLimiter {
  const perPair = limiter("login-account-address", settings.loginPerAccountAddress, settings.loginWindowMs, redis);
  const perAccount = limiter("login-account", settings.loginPerAccount, settings.loginAccountWindowMs, redis);
  const perAddress = limiter("login-address", settings.loginPerAddress, settings.loginWindowMs, redis);
  const signUps = limiter("signup-address", settings.signUpPerAddress, settings.signUpWindowMs, redis);
  return {
    async consumeSignUp(address) {
      const key = keyOf(address);
      await consume(signUps, key);
      return {
        async refund() {
          await signUps.reward(key);
        },
      };
    },
    async startLogIn(email, address) {
      const accountKey = keyOf(email);
      const addressKey = keyOf(address);
      // JSON keeps the pair unambiguous whatever either part holds.
      const pairKey = keyOf(JSON.stringify([email, address]));
      // In this order, one at a time: an attempt refused by one limit takes no
      // point from the limits after it. So an address locked out of an account
      // can keep trying without using up the account's allowance, which would
      // lock the owner out everywhere.
      await consume(perAddress, addressKey);
      await consume(perPair, pairKey);
      await consume(perAccount, accountKey);
      return {
        async succeeded() {
          await Promise.all([perPair.delete(pairKey), perAccount.reward(accountKey), perAddress.reward(addressKey)]);
        },
        async abandoned() {
          await Promise.all([perPair.reward(pairKey), perAccount.reward(accountKey), perAddress.reward(addressKey)]);
        },
      };
    },
  };
}

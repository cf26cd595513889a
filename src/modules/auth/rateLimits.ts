// Rate limits on credentials, against credential stuffing and sign-up spam:
//   log-in   failed attempts per account and per client address;
//   sign-up  attempts per client address.
// Counters live in memory, or in Redis when REDIS_URL is set so the limits hold
// across instances; if Redis fails, an in-memory limiter takes over rather
// than letting every attempt through or locking everyone out.
import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Config } from "../../config.js";
import { rateLimited } from "../../errors.js";

export interface AuthRateLimiter {
  consumeSignUp(clientAddress: string): Promise<void>;
  /** Throws RATE_LIMITED when the account or the address is locked out. */
  checkLogIn(email: string, clientAddress: string): Promise<void>;
  recordFailedLogIn(email: string, clientAddress: string): Promise<void>;
  recordSuccessfulLogIn(email: string, clientAddress: string): Promise<void>;
}

function limiter(keyPrefix: string, points: number, windowMs: number, redis: Redis | undefined): RateLimiterAbstract {
  const duration = Math.max(1, Math.ceil(windowMs / 1000));
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (!redis) return memory;
  return new RateLimiterRedis({ storeClient: redis, keyPrefix: `rl:${keyPrefix}`, points, duration, insuranceLimiter: memory });
}

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

async function consume(limit: RateLimiterAbstract, key: string): Promise<void> {
  try {
    await limit.consume(key);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) throw rateLimited(retryAfter(rejection));
    throw rejection;
  }
}

async function ensureNotExhausted(limit: RateLimiterAbstract, key: string, points: number): Promise<void> {
  const state = await limit.get(key);
  if (state && state.consumedPoints >= points) throw rateLimited(retryAfter(state));
}

export function createAuthRateLimiter(settings: Config["rateLimits"], redis?: Redis): AuthRateLimiter {
  const perAccount = limiter("login-account", settings.loginPerAccount, settings.loginWindowMs, redis);
  const perAddress = limiter("login-address", settings.loginPerAddress, settings.loginWindowMs, redis);
  const signUps = limiter("signup-address", settings.signUpPerAddress, settings.signUpWindowMs, redis);
  return {
    consumeSignUp: (address) => consume(signUps, address),
    async checkLogIn(email, address) {
      await ensureNotExhausted(perAccount, email, settings.loginPerAccount);
      await ensureNotExhausted(perAddress, address, settings.loginPerAddress);
    },
    async recordFailedLogIn(email, address) {
      // Counting never throws here: the caller already answers "wrong password".
      await Promise.all([perAccount.penalty(email), perAddress.penalty(address)]);
    },
    async recordSuccessfulLogIn(email) {
      await perAccount.delete(email);
    },
  };
}

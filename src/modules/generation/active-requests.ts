// Per-app concurrent generation limit (apps spec §3.5): app.max_active_requests, else
// APP_MAX_ACTIVE_REQUESTS (0 = unlimited). Counted in Redis so the limit holds across API
// processes; entries expire after 10 minutes so a crashed process cannot leak slots forever.
import { randomUUID } from "node:crypto";
import { Errors } from "../../lib/errors.js";
import type { Redis } from "../../lib/redis.js";

const ENTRY_TTL_MS = 10 * 60 * 1000;

// Atomically: drop expired entries, refuse when full, else add ours.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export function createActiveRequestLimiter(redis: Redis, prefix: string, defaultMax: number) {
  const key = (appId: string) => `${prefix}:app:${appId}:active-requests`;
  return {
    /** A release function, or Dify's 429 when the app is at its limit. */
    async acquire(app: { id: string; max_active_requests: number | null }): Promise<() => Promise<void>> {
      const max = app.max_active_requests ?? defaultMax;
      if (!max || max <= 0) return async () => undefined;
      const id = randomUUID();
      const now = Date.now();
      const ok = await redis.eval(ACQUIRE, 1, key(app.id), String(now - ENTRY_TTL_MS), String(max), String(now), id, String(ENTRY_TTL_MS));
      if (ok !== 1) {
        // Safe to retry: nothing was created. Retry-After lets clients that honour it back off.
        throw Errors.tooManyRequests(
          `Too many requests. Please try again later. The current maximum concurrent requests allowed for ${app.id} is ${max}.`,
          1,
        );
      }
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await redis.zrem(key(app.id), id).catch(() => undefined);
      };
    },
  };
}
export type ActiveRequestLimiter = ReturnType<typeof createActiveRequestLimiter>;

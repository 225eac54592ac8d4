import { Redis } from "ioredis";

export type { Redis };

/**
 * maxRetriesPerRequest: null is what BullMQ requires for its blocking connections; we use the
 * same options everywhere so one factory serves the API, the workers and the event streams.
 */
export function createRedis(url: string, opts: { lazyConnect?: boolean } = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: opts.lazyConnect ?? false });
}

// Run events (DESIGN §3): one Redis Stream per task carries every event of a run from the worker
// that produces it to whichever API process relays it. Streams, not pub/sub: pub/sub drops what is
// published before the subscriber arrives or during a reconnect; a stream is read from any offset,
// so a late subscriber (blocking mode, a reconnecting client) still sees every event.
//
//   publish(taskId, frame)   XADD <prefix>:task:<id>:events MAXLEN ~ 10000 * f <json>
//   end(taskId)              XADD the end marker, then EXPIRE the stream (10 min)
//   subscribe(taskId, from)  async iterator of frames until the end marker
//   stop(taskId)             SET the stop flag + PUBLISH on the stop channel
//   stopSignal(taskId)       AbortSignal in the worker, aborted within ms of stop() on any instance
//
// One blocking XREAD connection per process serves every subscription (the hub below), so 5,000
// open streams cost 5,000 map entries, not 5,000 Redis connections.
import { randomUUID } from "node:crypto";
import type { Logger } from "../lib/logger.js";
import type { Redis } from "../lib/redis.js";

export type Frame = Record<string, unknown>;

const END = "__end__";
const STREAM_MAXLEN = 10000;
const TTL_AFTER_END_S = 600;
const STOP_TTL_S = 600;
const OWNER_TTL_S = 1800;

interface Subscription {
  key: string;
  lastId: string;
  queue: Array<Frame | typeof END>;
  wake: (() => void) | null;
}

export function createRunEvents(deps: { redis: Redis; prefix: string; logger: Logger }) {
  const { prefix, logger } = deps;
  // Our own connection with auto-pipelining: the XADDs of many concurrent runs issued in the same
  // tick leave in one write (one syscall instead of one per frame). Not shared with BullMQ, whose
  // blocking commands must not be pipelined.
  const redis = deps.redis.duplicate({ enableAutoPipelining: true });
  const k = {
    events: (taskId: string) => `${prefix}:task:${taskId}:events`,
    stop: (taskId: string) => `${prefix}:task:${taskId}:stop`,
    owner: (taskId: string) => `${prefix}:task:${taskId}:owner`,
    stopChannel: `${prefix}:stop`,
  };

  // ---------------------------------------------------------------- hub (shared XREAD loop)
  const hubId = randomUUID();
  const wakeKey = `${prefix}:hub:${hubId}:wake`;
  const subs = new Set<Subscription>();
  let reader: Redis | null = null;
  let loopRunning = false;
  let closed = false;

  async function hubLoop(): Promise<void> {
    loopRunning = true;
    // Concrete ids (not "$"), so a wake written between two XREADs is still seen.
    let wakeId = "0";
    try {
      while (!closed && subs.size > 0) {
        const list = [...subs];
        const keys = [wakeKey, ...list.map((s) => s.key)];
        const ids = [wakeId, ...list.map((s) => s.lastId)];
        let res: Array<[string, Array<[string, string[]]>]> | null;
        try {
          res = (await reader!.xread("COUNT", 500, "BLOCK", 5000, "STREAMS", ...keys, ...ids)) as typeof res;
        } catch (err) {
          if (closed) break;
          logger.warn({ err }, "run-events: XREAD failed, retrying");
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (!res) continue;
        for (const [key, entries] of res) {
          if (key === wakeKey) {
            wakeId = entries.at(-1)?.[0] ?? wakeId;
            continue;
          }
          for (const sub of list) {
            if (sub.key !== key) continue;
            for (const [id, fields] of entries) {
              sub.lastId = id;
              const raw = fields[1];
              if (raw === undefined) continue;
              sub.queue.push(raw === END ? END : (JSON.parse(raw) as Frame));
            }
            sub.wake?.();
          }
        }
      }
    } finally {
      loopRunning = false;
      // A subscription added while the loop was deciding to exit must not be stranded.
      if (!closed && subs.size > 0) void hubLoop();
    }
  }

  function ensureLoop(): void {
    if (!reader) reader = redis.duplicate();
    if (!loopRunning) void hubLoop();
    // Interrupt a blocking XREAD so the new key is included at once.
    else void redis.xadd(wakeKey, "MAXLEN", "~", 100, "*", "w", "1").then(() => redis.expire(wakeKey, 3600)).catch(() => undefined);
  }

  // ---------------------------------------------------------------- stop watching (worker side)
  const controllers = new Map<string, Set<AbortController>>();
  let stopSub: Redis | null = null;

  async function ensureStopSubscriber(): Promise<void> {
    if (stopSub) return;
    stopSub = redis.duplicate();
    stopSub.on("message", (_channel: string, taskId: string) => {
      for (const c of controllers.get(taskId) ?? []) c.abort(new Error("Stopped by user."));
    });
    await stopSub.subscribe(k.stopChannel);
  }

  return {
    keys: k,

    async publish(taskId: string, frame: Frame): Promise<void> {
      await redis.xadd(k.events(taskId), "MAXLEN", "~", STREAM_MAXLEN, "*", "f", JSON.stringify(frame));
    },

    /** Marks the end of the run; the stream expires a while later (late readers still finish). */
    async end(taskId: string): Promise<void> {
      await redis.multi().xadd(k.events(taskId), "*", "f", END).expire(k.events(taskId), TTL_AFTER_END_S).exec();
    },

    /** Frames from `fromId` (exclusive; "0" = from the start) until the end marker. */
    async *subscribe(taskId: string, fromId = "0", signal?: AbortSignal): AsyncGenerator<Frame, void, undefined> {
      const sub: Subscription = { key: k.events(taskId), lastId: fromId, queue: [], wake: null };
      subs.add(sub);
      ensureLoop();
      const onAbort = () => sub.wake?.();
      signal?.addEventListener("abort", onAbort);
      try {
        for (;;) {
          while (sub.queue.length === 0) {
            if (closed || signal?.aborted) return;
            await new Promise<void>((resolve) => (sub.wake = resolve));
            sub.wake = null;
          }
          const item = sub.queue.shift()!;
          if (item === END) return;
          yield item;
        }
      } finally {
        subs.delete(sub);
        signal?.removeEventListener("abort", onAbort);
      }
    },

    /** Who may stop the task (apps spec §5.8: remembered for 30 minutes). */
    async registerOwner(taskId: string, owner: string): Promise<void> {
      await redis.set(k.owner(taskId), owner, "EX", OWNER_TTL_S);
    },

    async owner(taskId: string): Promise<string | null> {
      return redis.get(k.owner(taskId));
    },

    async stop(taskId: string): Promise<void> {
      await redis.multi().set(k.stop(taskId), "1", "EX", STOP_TTL_S).publish(k.stopChannel, taskId).exec();
    },

    async isStopped(taskId: string): Promise<boolean> {
      return (await redis.exists(k.stop(taskId))) === 1;
    },

    /**
     * An AbortSignal for the worker running `taskId`: aborted by a stop from any process (pub/sub
     * for millisecond latency, plus a 1 s poll of the flag in case a message was lost).
     */
    async stopSignal(taskId: string): Promise<{ signal: AbortSignal; release(): void }> {
      await ensureStopSubscriber();
      const c = new AbortController();
      const set = controllers.get(taskId) ?? new Set<AbortController>();
      set.add(c);
      controllers.set(taskId, set);
      const check = async () => {
        if (!c.signal.aborted && (await this.isStopped(taskId).catch(() => false))) c.abort(new Error("Stopped by user."));
      };
      await check();
      const timer = setInterval(() => void check(), 1000);
      timer.unref();
      return {
        signal: c.signal,
        release() {
          clearInterval(timer);
          set.delete(c);
          if (set.size === 0) controllers.delete(taskId);
        },
      };
    },

    async close(): Promise<void> {
      closed = true;
      redis.disconnect();
      for (const s of subs) s.wake?.();
      reader?.disconnect();
      if (stopSub) stopSub.disconnect();
    },
  };
}
export type RunEvents = ReturnType<typeof createRunEvents>;

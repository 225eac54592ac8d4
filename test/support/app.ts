// Builds the real app against the real Postgres and Redis that scripts/test.ts started
// (DATABASE_URL / REDIS_URL). Nothing of ours is mocked; the model provider is the fake server.
// Each test app gets its own queue prefix, so its jobs are run by its own in-process workers
// (which talk to its own fake model server) even when test files run in parallel.
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, type Config } from "../../src/config/index.js";
import { buildApp } from "../../src/http/app.js";
import { createLogger } from "../../src/lib/logger.js";
import { createPrisma } from "../../src/lib/prisma.js";
import { createRedis } from "../../src/lib/redis.js";
import { LocalStorage } from "../../src/lib/storage.js";
import { createRuntime } from "../../src/runtime.js";
import { startWorkers, type RunningWorkers } from "../../workers/index.js";

export const ADMIN_KEY = "test-admin-key-0123456789";

export type TestApp = Awaited<ReturnType<typeof buildTestApp>>;

export async function buildTestApp(overrides: Partial<Config> = {}, opts: { workers?: boolean } = {}) {
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL) {
    throw new Error("DATABASE_URL and REDIS_URL must be set: run the suite with `npm test`.");
  }
  const storageDir = mkdtempSync(path.join(tmpdir(), "servify-test-storage-"));
  const config = loadConfig(
    { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent" },
    {
      ADMIN_API_KEY: ADMIN_KEY,
      STORAGE_DIR: storageDir,
      FILES_URL: "http://127.0.0.1:5001",
      QUEUE_PREFIX: `test-${randomUUID().slice(0, 8)}`,
      OUTBOUND_POLICY: "loopback",
      ...overrides,
    },
  );
  const logger = createLogger({ level: config.LOG_LEVEL });
  const prisma = createPrisma(config.DATABASE_URL, { max: 5 });
  const redis = createRedis(config.REDIS_URL);
  const storage = new LocalStorage(config.STORAGE_DIR);
  const runtime = createRuntime({ config, logger, prisma, redis, storage });
  const app = await buildApp(runtime);
  await app.ready();
  let workers: RunningWorkers | null = null;
  if (opts.workers) workers = await startWorkers(runtime);
  return {
    app,
    config,
    prisma,
    redis,
    storage,
    runtime,
    async close() {
      await app.close();
      await workers?.close();
      await runtime.close();
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}

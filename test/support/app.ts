// Builds the real app against the real Postgres and Redis that scripts/test.ts started
// (DATABASE_URL / REDIS_URL). Nothing of ours is mocked; the model provider is the fake server.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, type Config } from "../../src/config/index.js";
import { buildApp } from "../../src/http/app.js";
import { createLogger } from "../../src/lib/logger.js";
import { createPrisma } from "../../src/lib/prisma.js";
import { createRedis } from "../../src/lib/redis.js";
import { LocalStorage } from "../../src/lib/storage.js";

export const ADMIN_KEY = "test-admin-key-0123456789";

export type TestApp = Awaited<ReturnType<typeof buildTestApp>>;

export async function buildTestApp(overrides: Partial<Config> = {}) {
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL) {
    throw new Error("DATABASE_URL and REDIS_URL must be set: run the suite with `npm test`.");
  }
  const storageDir = mkdtempSync(path.join(tmpdir(), "servify-test-storage-"));
  const config = loadConfig(
    { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent" },
    { ADMIN_API_KEY: ADMIN_KEY, STORAGE_DIR: storageDir, FILES_URL: "http://127.0.0.1:5001", ...overrides },
  );
  const logger = createLogger({ level: config.LOG_LEVEL });
  const prisma = createPrisma(config.DATABASE_URL, { max: 5 });
  const redis = createRedis(config.REDIS_URL);
  const storage = new LocalStorage(config.STORAGE_DIR);
  const app = await buildApp({ config, logger, prisma, redis, storage });
  await app.ready();
  return {
    app,
    config,
    prisma,
    redis,
    storage,
    async close() {
      await app.close();
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}

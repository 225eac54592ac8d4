// Run modes (DESIGN §2): `api` serves HTTP, `worker` runs the BullMQ consumers, `all` does both.
// Shutdown is ordered: stop accepting, let in-flight requests and streams finish (bounded by
// SHUTDOWN_TIMEOUT_MS), close workers, then Redis and Prisma.
import type { Config } from "../config/index.js";
import { buildApp } from "../http/app.js";
import { createLogger } from "../lib/logger.js";
import { createPrisma } from "../lib/prisma.js";
import { createRedis } from "../lib/redis.js";
import { LocalStorage } from "../lib/storage.js";
import { startWorkers } from "../../workers/index.js";
import { createRuntime } from "../runtime.js";

export async function startServer(config: Config, mode: "api" | "worker" | "all"): Promise<void> {
  const logger = createLogger({ level: config.LOG_LEVEL, pretty: config.LOG_PRETTY });
  const prisma = createPrisma(config.DATABASE_URL);
  const redis = createRedis(config.REDIS_URL);
  const storage = new LocalStorage(config.STORAGE_DIR);
  const deps = createRuntime({ config, logger, prisma, redis, storage });

  const closers: Array<() => Promise<void>> = [];
  if (mode === "api" || mode === "all") {
    const app = await buildApp(deps);
    await app.listen({ port: config.PORT, host: config.HOST });
    closers.push(() => app.close());
  }
  if (mode === "worker" || mode === "all") {
    const workers = await startWorkers(deps);
    closers.push(() => workers.close());
  }
  logger.info({ mode, port: config.PORT }, "servify started");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error("shutdown timed out");
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    for (const close of closers) await close().catch((err: unknown) => logger.error({ err }, "close failed"));
    await deps.close().catch(() => undefined);
    await redis.quit().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

// What the HTTP layer is built from. buildApp(deps) never creates connections itself, so tests
// and the CLI decide what is real (DESIGN §6).
import type { Config } from "../config/index.js";
import type { Logger } from "../lib/logger.js";
import type { PrismaClient } from "../lib/prisma.js";
import type { Redis } from "../lib/redis.js";
import type { Storage } from "../lib/storage.js";

export interface AppDeps {
  config: Config;
  logger: Logger;
  prisma: PrismaClient;
  redis: Redis;
  storage: Storage;
}

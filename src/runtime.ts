// The shared runtime of a process: connections plus the few long-lived services that both the
// API and the workers use (run events, the queue producer, the models module). Built once by the
// CLI (or a test) and handed to buildApp() and startWorkers().
import type { Config } from "./config/index.js";
import type { Logger } from "./lib/logger.js";
import type { PrismaClient } from "./lib/prisma.js";
import type { Redis } from "./lib/redis.js";
import type { Storage } from "./lib/storage.js";
import { createAppService } from "./modules/apps/service.js";
import { createModels } from "./modules/models/index.js";
import { createProducer } from "./queue/producer.js";
import { createRunEvents } from "./queue/run-events.js";
import { createKnowledgeRetriever } from "./modules/retrieval/search.js";
import { createWorkflowTextExtractor } from "./modules/indexing/extract/workflow.js";
import { createCodeSandbox } from "./modules/workflow/sandbox/index.js";

export interface BaseDeps {
  config: Config;
  logger: Logger;
  prisma: PrismaClient;
  redis: Redis;
  storage: Storage;
}

export function createRuntime(base: BaseDeps) {
  const events = createRunEvents({ redis: base.redis, prefix: base.config.QUEUE_PREFIX, logger: base.logger });
  const producer = createProducer(base.redis, base.config.QUEUE_PREFIX);
  const models = createModels(base.config, { logger: base.logger });
  const apps = createAppService(base.prisma);
  // The sandbox starts its interpreters lazily, on the first code node that runs.
  const sandbox = createCodeSandbox({
    logger: base.logger,
    memoryMb: base.config.CODE_SANDBOX_MEMORY_MB,
    pythonWarm: base.config.CODE_SANDBOX_PYTHON_WARM,
    maxConcurrency: base.config.CODE_SANDBOX_MAX_CONCURRENCY,
  });
  return {
    ...base,
    events,
    producer,
    models,
    apps,
    retrieval: createKnowledgeRetriever({ prisma: base.prisma, models, logger: base.logger }),
    extractText: createWorkflowTextExtractor(base),
    sandbox,
    async close(): Promise<void> {
      await producer.close();
      await events.close();
      await sandbox.close();
    },
  };
}
export type Runtime = ReturnType<typeof createRuntime>;
export type WorkerDeps = Runtime;

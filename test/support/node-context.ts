// A NodeContext for running one model-using node against the fake model server: real models
// module, real variable pool; prisma only when a test needs conversation memory.
import { loadConfig, type Config } from "../../src/config/index.js";
import { createLogger } from "../../src/lib/logger.js";
import type { PrismaClient } from "../../src/lib/prisma.js";
import type { Storage } from "../../src/lib/storage.js";
import { createModels, type Models } from "../../src/modules/models/index.js";
import type { KnowledgeRetriever, NodeChunk, NodeContext, RunInfo, VariablePool } from "../../src/modules/workflow/types.js";
import { createVariablePool } from "../../src/modules/workflow/variable-pool.js";

export const logger = createLogger({ level: "silent" });

export function modelsFor(baseURL: string): { config: Config; models: Models } {
  const config = loadConfig({ ...process.env, OPENAI_BASE_URL: baseURL, OPENAI_API_KEY: "sk-test", MODELS_FILE: "" });
  return { config, models: createModels(config, { logger, maxRetries: 0 }) };
}

export function poolWith(init: { system?: Record<string, unknown>; nodes?: Record<string, Record<string, unknown>> } = {}) {
  const pool = createVariablePool({ system: { files: [], ...(init.system ?? {}) }, environment: {}, conversation: {} });
  for (const [nodeId, vars] of Object.entries(init.nodes ?? {})) for (const [k, v] of Object.entries(vars)) pool.set([nodeId, k], v);
  return pool;
}

export function makeCtx(opts: {
  models: Models;
  config: Config;
  pool: VariablePool;
  prisma?: PrismaClient;
  retrieval?: KnowledgeRetriever | null;
  run?: Partial<RunInfo>;
  signal?: AbortSignal;
}): { ctx: NodeContext; chunks: NodeChunk[] } {
  const chunks: NodeChunk[] = [];
  const ctx: NodeContext = {
    run: {
      workflowRunId: "00000000-0000-4000-8000-000000000001",
      workflowId: "00000000-0000-4000-8000-000000000002",
      appId: "00000000-0000-4000-8000-000000000003",
      tenantId: "00000000-0000-4000-8000-000000000004",
      mode: "workflow",
      taskId: "task",
      endUserId: "00000000-0000-4000-8000-000000000005",
      userId: "user-1",
      conversationId: null,
      messageId: null,
      ...opts.run,
    },
    pool: opts.pool,
    signal: opts.signal ?? new AbortController().signal,
    services: {
      models: opts.models,
      // Only touched for conversation memory / uploaded images; tests without them pass none.
      prisma: (opts.prisma ?? null) as unknown as PrismaClient,
      storage: null as unknown as Storage,
      config: opts.config,
      logger,
      retrieval: opts.retrieval ?? null,
      extractText: null,
      sandbox: null,
    },
    async emitChunk(c) {
      chunks.push(c);
    },
  };
  return { ctx, chunks };
}

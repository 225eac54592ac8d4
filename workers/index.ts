// Registration of the BullMQ consumers for `servify worker` / `servify all` (DESIGN §2).
// Processors are plain functions in this folder; each queue adds itself here.
import { Worker } from "bullmq";
import { QUEUES } from "../src/queue/contract.js";
import type { WorkerDeps } from "../src/runtime.js";
import { appRunsProcessor } from "./app-runs.js";
import { documentIndexingProcessor } from "./document-indexing.js";

export interface RunningWorkers {
  close(): Promise<void>;
}

export async function startWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  const connection = deps.redis.duplicate();
  const prefix = deps.config.QUEUE_PREFIX;
  const workers = [
    // Generations are I/O-bound (model streams): many run at once per process.
    new Worker(QUEUES.appRuns, appRunsProcessor(deps), { connection, prefix, concurrency: deps.config.APP_RUN_CONCURRENCY, maxStalledCount: 1 }),
    // Indexing is CPU-bound (extraction, splitting) between embedding calls: a few at once.
    new Worker(QUEUES.documentIndexing, documentIndexingProcessor(deps), { connection, prefix, concurrency: deps.config.DOCUMENT_INDEXING_CONCURRENCY }),
  ];
  for (const w of workers) {
    w.on("failed", (job, err) => deps.logger.error({ err, queue: w.name, jobId: job?.id }, "job failed"));
    w.on("error", (err) => deps.logger.error({ err, queue: w.name }, "worker error"));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  deps.logger.info({ queues: workers.map((w) => w.name) }, "workers started");
  return {
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}

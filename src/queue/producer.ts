// Enqueueing, for any process (DESIGN §2). Jobs are added after the rows they name are committed.
import { Queue } from "bullmq";
import type { Redis } from "../lib/redis.js";
import {
  APP_RUN_JOB_OPTIONS,
  DOCUMENT_INDEXING_JOB_OPTIONS,
  QUEUES,
  appRunJob,
  documentIndexingJob,
  type AppRunJob,
  type DocumentIndexingJob,
} from "./contract.js";

export function createProducer(redis: Redis, prefix: string) {
  const appRuns = new Queue(QUEUES.appRuns, { connection: redis, prefix });
  const indexing = new Queue(QUEUES.documentIndexing, { connection: redis, prefix });
  return {
    /** Job id = document id + a nonce: a document re-queued while a job runs gets a fresh job. */
    async enqueueDocumentIndexing(job: DocumentIndexingJob, opts: { delayMs?: number } = {}): Promise<void> {
      const payload = documentIndexingJob.parse(job);
      await indexing.add(payload.action, payload, { ...DOCUMENT_INDEXING_JOB_OPTIONS, ...(opts.delayMs ? { delay: opts.delayMs } : {}) });
    },
    async enqueueAppRun(job: AppRunJob): Promise<void> {
      const payload = appRunJob.parse(job);
      await appRuns.add(payload.kind, payload, { ...APP_RUN_JOB_OPTIONS, jobId: payload.taskId });
    },
    async close(): Promise<void> {
      await appRuns.close();
      await indexing.close();
    },
  };
}
export type Producer = ReturnType<typeof createProducer>;

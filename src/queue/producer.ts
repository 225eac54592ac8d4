// Enqueueing, for any process (DESIGN §2). Jobs are added after the rows they name are committed.
import { Queue } from "bullmq";
import type { Redis } from "../lib/redis.js";
import { APP_RUN_JOB_OPTIONS, QUEUES, appRunJob, type AppRunJob } from "./contract.js";

export function createProducer(redis: Redis, prefix: string) {
  const appRuns = new Queue(QUEUES.appRuns, { connection: redis, prefix });
  return {
    async enqueueAppRun(job: AppRunJob): Promise<void> {
      const payload = appRunJob.parse(job);
      await appRuns.add(payload.kind, payload, { ...APP_RUN_JOB_OPTIONS, jobId: payload.taskId });
    },
    async close(): Promise<void> {
      await appRuns.close();
    },
  };
}
export type Producer = ReturnType<typeof createProducer>;

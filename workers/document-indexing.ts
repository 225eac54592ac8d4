// The `document-indexing` processor: one job per document to (re)index (queue contract in
// src/queue/contract.ts, pipeline in src/modules/indexing/pipeline.ts, datasets spec §11).
import { UnrecoverableError, type Job } from "bullmq";
import { documentIndexingJob } from "../src/queue/contract.js";
import { runIndexingPipeline, type PipelineDeps, type PipelineOptions } from "../src/modules/indexing/pipeline.js";

export function documentIndexingProcessor(deps: PipelineDeps, hooks: Pick<PipelineOptions, "onStep"> = {}) {
  return async (job: Job): Promise<void> => {
    const parsed = documentIndexingJob.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid document-indexing payload: ${parsed.error.message}`);
    const attempts = job.opts.attempts ?? 1;
    // Transient model errors are rethrown while BullMQ still has attempts left; on the last one
    // the document ends in `error` (§11.1).
    await runIndexingPipeline(deps, parsed.data, { lastAttempt: job.attemptsMade + 1 >= attempts, ...hooks });
  };
}

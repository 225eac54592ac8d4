// The `app-runs` processor: one job per generation (queue contract in src/queue/contract.ts).
import { UnrecoverableError, type Job } from "bullmq";
import { appRunJob } from "../src/queue/contract.js";
import { runBasicApp, type RunnerDeps } from "../src/modules/generation/basic-runner.js";
import { runGraphApp } from "../src/modules/workflow/runner.js";

export function appRunsProcessor(deps: RunnerDeps) {
  return async (job: Job): Promise<void> => {
    const parsed = appRunJob.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid app-runs payload: ${parsed.error.message}`);
    const payload = parsed.data;
    switch (payload.kind) {
      case "completion":
      case "chat":
        await runBasicApp(deps, payload);
        return;
      case "workflow":
      case "advanced-chat":
        await runGraphApp(deps, payload);
        return;
      default:
        // Refused at the route; a job of another kind can only come from a newer producer.
        throw new UnrecoverableError(`app-runs: kind ${payload.kind} is not supported by this worker`);
    }
  };
}

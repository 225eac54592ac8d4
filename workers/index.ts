// Registration of the BullMQ consumers for `servify worker` / `servify all` (DESIGN §2).
// Processors are plain functions in this folder; each later queue (app runs, document indexing,
// annotation jobs) adds itself here. As of the foundation there are no queues yet.
import type { AppDeps } from "../src/http/deps.js";

export interface RunningWorkers {
  close(): Promise<void>;
}

export async function startWorkers(deps: AppDeps): Promise<RunningWorkers> {
  const workers: Array<{ close(): Promise<void> }> = [];
  deps.logger.info({ queues: workers.length }, "workers started");
  return {
    async close() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}

// The one queue contract (DESIGN §3, §7): queue names and job payload schemas. Payloads carry
// ids only; the worker loads everything else from Postgres. Any process may enqueue; the run mode
// decides which processes consume.
import { z } from "zod";

export const QUEUES = {
  /** Every generation: completion, chat, agent-chat, advanced-chat, workflow. */
  appRuns: "app-runs",
  /** Knowledge base: extract → clean → split → index one document (datasets spec §11). */
  documentIndexing: "document-indexing",
} as const;

export const appRunJob = z.object({
  /** The `task_id` clients see in every event; also the BullMQ job id (one job per task). */
  taskId: z.uuid(),
  kind: z.enum(["completion", "chat", "agent-chat", "advanced-chat", "workflow"]),
  tenantId: z.uuid(),
  appId: z.uuid(),
  endUserId: z.uuid(),
  messageId: z.uuid().nullable(),
  conversationId: z.uuid().nullable(),
  /** Graph apps (workflow, advanced-chat): the workflow_runs row created by the route. */
  workflowRunId: z.uuid().nullable().optional(),
  /** First message of a new conversation that asked for a generated title (apps spec §8.7). */
  autoGenerateName: z.boolean().default(false),
  /** Milliseconds since epoch when the route accepted the request (latency is measured from here). */
  acceptedAt: z.number(),
});
export type AppRunJob = z.infer<typeof appRunJob>;

/** App runs are not retried: a model call is not idempotent (a retry would bill twice and
 * could duplicate streamed text). A run whose worker died is re-delivered once by BullMQ's
 * stalled-job check and ends with an error event if it cannot finish. */
export const APP_RUN_JOB_OPTIONS = { attempts: 1, removeOnComplete: { age: 3600, count: 10000 }, removeOnFail: { age: 24 * 3600 } } as const;

/** One document to (re)index. Idempotent: re-running replaces the document's segments and index
 * entries instead of adding to them (datasets spec §11.8). Transient model errors retry. */
export const documentIndexingJob = z.object({
  tenantId: z.uuid(),
  datasetId: z.uuid(),
  documentId: z.uuid(),
  /** "index" = full pipeline from the source; "reindex" = re-embed existing segments only. */
  action: z.enum(["index", "reindex"]).default("index"),
});
export type DocumentIndexingJob = z.infer<typeof documentIndexingJob>;

export const DOCUMENT_INDEXING_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: { age: 3600, count: 10000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

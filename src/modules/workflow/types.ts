// The contract between the graph engine (engine.ts) and the node implementations (nodes/*.ts)
// (dsl-and-workflow §3–§4). The engine owns scheduling, the variable pool, events, persistence,
// error strategies, retries, containers (iteration/loop) and answer/end streaming; a node only
// turns its inputs into a NodeResult.
import type { Config } from "../../config/index.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import type { Models } from "../models/index.js";

/** `[node_id, key, ...path]`, or `["sys", "query"]`, `["env", "x"]`, `["conversation", "x"]`. */
export type Selector = string[];

/** A file value inside the pool (Dify's File object, apps spec §6.8). */
export interface WorkflowFile {
  dify_model_identity: "__dify__file__";
  id: string | null;
  tenant_id: string;
  type: "image" | "document" | "audio" | "video" | "custom";
  transfer_method: "local_file" | "remote_url" | "tool_file";
  remote_url: string | null;
  related_id: string | null;
  filename: string | null;
  extension: string | null;
  mime_type: string | null;
  size: number;
  url?: string | null;
}

export interface VariablePool {
  /** The value at the selector (nested keys walk objects), or undefined when absent. */
  get(selector: Selector): unknown;
  /** Writes `node_id.key` (node outputs are written by the engine after a node succeeds). */
  set(selector: Selector, value: unknown): void;
  /** Renders `{{#node.key#}}` references as Dify renders values in text (dsl-and-workflow §3.4.2, §3.5). */
  renderTemplate(template: string): string;
  /** Dify's text rendering of one value (strings as-is, objects as JSON, files as their URL/markdown …). */
  toText(value: unknown): string;
  /** The `markdown` rendering of §3.4.2 (answer nodes); same lookup rules as renderTemplate. */
  renderMarkdown?(template: string): string;
  /** The `markdown` rendering of one value (§3.4.2). */
  toMarkdown?(value: unknown): string;
}

export interface RunInfo {
  workflowRunId: string;
  workflowId: string;
  appId: string;
  tenantId: string;
  mode: "workflow" | "advanced-chat";
  taskId: string;
  endUserId: string;
  /** The external `user` string (sys.user_id). */
  userId: string;
  conversationId: string | null;
  messageId: string | null;
}

/** Streamed text from inside a node (LLM deltas): the engine routes it to answer/end streaming. */
export interface NodeChunk {
  selector: Selector; // e.g. [llmNodeId, "text"]
  text: string;
}

/** Services a node may use; everything else it needs is in the pool or its data. */
export interface NodeServices {
  models: Models;
  prisma: PrismaClient;
  storage: Storage;
  config: Config;
  logger: Logger;
  /** Knowledge retrieval (datasets spec §12) for knowledge-retrieval nodes; null until the KB lands. */
  retrieval: KnowledgeRetriever | null;
  /** Text of an uploaded/remote file for document-extractor nodes; null until the KB extractors land. */
  extractText: ((file: WorkflowFile) => Promise<string>) | null;
  /** Runs code in the sandbox (code nodes). */
  sandbox: CodeSandbox | null;
}

export interface NodeContext {
  run: RunInfo;
  pool: VariablePool;
  /** Aborted when the run is stopped or times out. */
  signal: AbortSignal;
  services: NodeServices;
  /** Stream a text delta produced by this node (only LLM-like nodes do). */
  emitChunk(chunk: NodeChunk): Promise<void>;
}

export type NodeStatus = "succeeded" | "failed" | "exception";

export interface NodeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  /** Dify usage object (models.usage(...)); the engine sums these into the run's totals. */
  usage?: Record<string, unknown>;
}

export interface NodeResult {
  status: NodeStatus;
  inputs?: Record<string, unknown> | null;
  process_data?: Record<string, unknown> | null;
  outputs?: Record<string, unknown> | null;
  /** execution_metadata (total_tokens, total_price, currency, …). */
  metadata?: Record<string, unknown>;
  /** Which outgoing handle to follow: "source" (default), an if-else case id, a classifier class id … */
  edgeSourceHandle?: string;
  error?: string | null;
  errorType?: string | null;
  usage?: NodeUsage;
  /**
   * Citation objects (apps spec §7.3, `buildCitations` shape) this node retrieved; the engine
   * collects them over the run and advanced-chat puts them in `message_end.metadata.retriever_resources`
   * when the `retriever_resource` feature is on (only from succeeded nodes).
   */
  citations?: Record<string, unknown>[];
}

export interface GraphNode {
  id: string;
  type?: string;
  parentId?: string;
  data: Record<string, unknown> & { type: string; title?: string };
}

export interface NodeImplementation {
  /** `data.type` values it serves (e.g. ["variable-aggregator", "variable-assigner"]). */
  types: string[];
  run(node: GraphNode, ctx: NodeContext): Promise<NodeResult>;
}

/** Node failures that are the node's fault (bad config, bad input): status failed, message kept. */
export class NodeError extends Error {
  readonly errorType: string;
  constructor(message: string, errorType = "NodeError") {
    super(message);
    this.name = "NodeError";
    this.errorType = errorType;
  }
}

// ---------------------------------------------------------------- external services

export interface RetrievalRequest {
  tenantId: string;
  datasetIds: string[];
  query: string;
  /** Dify retrieval model (datasets spec §3.2) / node config: method, top_k, score_threshold, rerank, weights. */
  retrievalModel: Record<string, unknown>;
  /** Node `metadata_filtering_conditions` already resolved to values. */
  metadataFilter?: Record<string, unknown> | null;
  signal?: AbortSignal;
}

export interface RetrievedChunk {
  /** What the node outputs in `result` (Dify's knowledge-retrieval result item). */
  content: string;
  title: string;
  metadata: Record<string, unknown>;
  score: number;
}

export interface KnowledgeRetriever {
  retrieve(req: RetrievalRequest): Promise<{ chunks: RetrievedChunk[]; citations: Record<string, unknown>[] }>;
}

export interface CodeSandbox {
  run(req: { language: "python3" | "javascript"; code: string; inputs: Record<string, unknown>; timeoutMs: number; signal?: AbortSignal }): Promise<Record<string, unknown>>;
}

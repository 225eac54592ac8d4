// The `knowledge-retrieval` node (dsl-and-workflow §4.5, §2.7): reads the query, hands the
// node's retrieval config and resolved metadata filter to the KnowledgeRetriever service seam
// (types.ts) and outputs Dify's `result` items, best score first.
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult } from "../types.js";
import { parseTemplate } from "../variable-pool.js";
import { asRec, asSelector, asStr, failed, type Rec } from "./llm-common.js";

/**
 * One condition value (Dify `_process_metadata_filter_func`, manual mode): a string template
 * resolves to its FIRST segment — a referenced number stays a number, text has CR/LF/tab runs
 * turned into a space and is trimmed; a selector list reads the pool; `empty`/`not empty` take none.
 */
function resolveConditionValue(ctx: NodeContext, operator: string, value: unknown): unknown {
  if (value === null || value === undefined || operator === "empty" || operator === "not empty") return value ?? null;
  const clean = (s: string) => s.replace(/[\r\n\t]+/g, " ").trim();
  const selector = asSelector(value);
  if (selector) {
    const v = ctx.pool.get(selector);
    return typeof v === "string" ? clean(v) : (v ?? null);
  }
  if (typeof value !== "string") return value;
  const first = parseTemplate(value)[0];
  if (!first) return "";
  if (first.kind === "text") return clean(first.text);
  const v = ctx.pool.get(first.selector!);
  if (typeof v === "number") return v;
  return clean(v === undefined ? first.text : ctx.pool.toText(v));
}

function metadataFilter(ctx: NodeContext, data: Rec): Rec | null {
  const mode = asStr(data.metadata_filtering_mode) || "disabled";
  if (mode === "disabled") return null;
  if (mode === "automatic") {
    // The retriever derives conditions from the query with this model (§2.7).
    return { mode, model: asRec(data.metadata_model_config) };
  }
  const c = asRec(data.metadata_filtering_conditions);
  const conditions = ((c.conditions as unknown[] | undefined) ?? []).map((raw) => {
    const r = asRec(raw);
    const op = asStr(r.comparison_operator);
    return { name: asStr(r.name), comparison_operator: op, value: resolveConditionValue(ctx, op, r.value) };
  });
  return { mode, logical_operator: c.logical_operator === "or" ? "or" : "and", conditions };
}

/** The retrieval config the retriever needs: mode plus the matching block of the node. */
function retrievalModel(data: Rec): Rec {
  const mode = data.retrieval_mode === "single" ? "single" : "multiple";
  if (mode === "single") return { retrieval_mode: mode, ...asRec(data.single_retrieval_config) };
  return { retrieval_mode: mode, ...asRec(data.multiple_retrieval_config) };
}

export const knowledgeRetrievalNode: NodeImplementation = {
  types: ["knowledge-retrieval"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as Rec;
    const selector = asSelector(data.query_variable_selector);
    const v = selector ? ctx.pool.get(selector) : undefined;
    if (typeof v !== "string") return { status: "failed", inputs: {}, error: "Query variable is not string type.", errorType: "KnowledgeRetrievalNodeError" };
    const inputs = { query: v };
    if (!v) return { status: "failed", inputs, error: "Query is required.", errorType: "KnowledgeRetrievalNodeError" };
    const retriever = ctx.services.retrieval;
    if (!retriever) {
      return {
        status: "failed",
        inputs,
        error: "Knowledge retrieval is not available: no knowledge base service is configured on this server.",
        errorType: "KnowledgeRetrievalNodeError",
      };
    }
    try {
      const datasetIds = ((data.dataset_ids as unknown[] | undefined) ?? []).filter((d): d is string => typeof d === "string" && d !== "");
      if (datasetIds.length === 0) return { status: "succeeded", inputs, process_data: null, outputs: { result: [] } };
      const { chunks, citations } = await retriever.retrieve({
        tenantId: ctx.run.tenantId,
        datasetIds,
        query: v,
        retrievalModel: retrievalModel(data),
        metadataFilter: metadataFilter(ctx, data),
        signal: ctx.signal,
      });
      ctx.signal.throwIfAborted();
      // §4.5: sorted by score (stable), each item `{content, title, metadata{_source: knowledge,
      // position, …, retriever_from: workflow, score, …}, files?, summary?}`.
      const sorted = chunks.map((c, i) => ({ c, i })).sort((a, b) => b.c.score - a.c.score || a.i - b.i);
      const result = sorted.map(({ c }, i) => {
        const extra = c as unknown as Rec;
        const md: Rec = { _source: "knowledge", position: i + 1, ...c.metadata };
        md.retriever_from ??= "workflow";
        md.score ??= c.score;
        const item: Rec = { content: c.content, title: c.title, metadata: md };
        if (extra.files !== undefined) item.files = extra.files;
        if (extra.summary !== undefined) item.summary = extra.summary;
        return item;
      });
      // Citations (apps spec §7.3) follow the result order when they pair up with the chunks;
      // the runner renumbers positions when it merges them into message_end.
      const cites = citations ?? [];
      const ordered = cites.length === chunks.length ? sorted.map(({ i }) => cites[i]!) : cites;
      return { status: "succeeded", inputs, process_data: null, outputs: { result }, citations: ordered };
    } catch (err) {
      if (!(err instanceof NodeError)) ctx.services.logger.warn({ nodeId: node.id, err: (err as Error).message }, "knowledge retrieval failed");
      return failed(err, { inputs });
    }
  },
};

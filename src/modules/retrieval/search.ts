// Knowledge retrieval (datasets spec §12; dsl-and-workflow §2.7, §4.5): semantic, full-text,
// hybrid and keyword search over the Postgres tables the indexing pipeline fills, Dify's
// post-processing (rerank model or weighted score, thresholds, top_k), child→parent collapse
// (§12.3), metadata filtering (§12.6) and hit counting (§11.10).
//
// Scores:
// - semantic: 1 − cosine distance (pgvector `<=>`), kept when `score > threshold` (§12.1, §12.5);
// - full-text: Postgres `ts_rank` over `search_vector`, every query word must match (Dify's
//   pgvector store uses plainto_tsquery);
// - keyword: 0.0 (§12.1), ranked by the number of matching query keywords;
// - weighted: vector_weight × cosine + keyword_weight × TF-IDF cosine over the candidate set;
// - rerank: the rerank model's relevance score.
import { Errors } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { ChatMessage, ModelConfig, Models } from "../models/index.js";
import type { KnowledgeRetriever, RetrievalRequest } from "../workflow/types.js";
import { buildCitations, buildNodeResult, type CitationSource } from "./format.js";
import { buildMetadataPredicate, type MetadataFilter } from "./metadata-filter.js";
import { toSearchQuery } from "../indexing/fulltext.js";
import { extractKeywords, keywordScores } from "./terms.js";
import { vectorLiteral } from "./vector-store.js";

export interface RetrievalDeps {
  prisma: PrismaClient;
  models: Models;
  logger?: Logger | undefined;
}

export type SearchMethod = "semantic_search" | "full_text_search" | "hybrid_search" | "keyword_search";
export type RerankingMode = "reranking_model" | "weighted_score";

export interface EffectiveRetrievalConfig {
  searchMethod: SearchMethod;
  topK: number;
  /** 0 when `score_threshold_enabled` is false (§7 effective values). */
  scoreThreshold: number;
  /** null unless reranking is enabled and a model is named. */
  rerankingModel: { provider: string; name: string } | null;
  rerankingMode: RerankingMode;
  weights: { vectorWeight: number; keywordWeight: number } | null;
}

type Row = Record<string, unknown>;
type DatasetRow = Awaited<ReturnType<PrismaClient["dataset"]["findMany"]>>[number];
type DocumentRow = Awaited<ReturnType<PrismaClient["document"]["findMany"]>>[number];
type SegmentRow = Awaited<ReturnType<PrismaClient["documentSegment"]["findMany"]>>[number];

/** One matched index node (a segment, or a child chunk of a hierarchical document). */
export interface Hit {
  datasetId: string;
  documentId: string;
  segmentId: string;
  childChunkId: string | null;
  nodeId: string;
  content: string;
  score: number;
  /** Cosine similarity when the hit came from the vector channel. */
  vectorScore?: number | undefined;
}

export interface RetrievedChildChunk {
  id: string;
  content: string;
  position: number;
  score: number;
}

/** One record per segment (§12.3), best first. */
export interface RetrievalRecord {
  segment: SegmentRow;
  document: DocumentRow;
  dataset: DatasetRow;
  score: number;
  childChunks: RetrievedChildChunk[];
}

export interface RetrieveRequest {
  tenantId: string;
  datasetIds: string[];
  query: string;
  /** §3.2 retrieval model; for strategy "multiple" also the app/node keys (reranking_enable, …). */
  retrievalModel?: Record<string, unknown> | null | undefined;
  metadataFilter?: MetadataFilter | null | undefined;
  /**
   * "dataset" (default for one dataset): search with `retrievalModel` (hit-testing, §7).
   * "multiple" (apps/nodes, dsl §2.7): each dataset with its own stored settings and the request's
   * top_k, then the merged list is post-processed with the request's rerank/weights/threshold.
   */
  strategy?: "dataset" | "multiple" | undefined;
  /** Increment `hit_count` of the returned segments (§11.10: app and workflow retrieval only). */
  countHits?: boolean | undefined;
  /** `dataset_queries.source` of the log row(s) written per dataset; null = no log. */
  querySource?: string | null | undefined;
  signal?: AbortSignal | undefined;
}

const DEFAULT_TOP_K = 4;

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : null);
const isObj = (v: unknown): v is Row => typeof v === "object" && v !== null && !Array.isArray(v);

function rerankModelOf(v: unknown): { provider: string; name: string } | null {
  if (!isObj(v)) return null;
  // Datasets/app shape {reranking_provider_name, reranking_model_name}; workflow node shape {provider, model}.
  const name = v.reranking_model_name ?? v.model;
  const provider = v.reranking_provider_name ?? v.provider;
  return typeof name === "string" && name ? { provider: typeof provider === "string" ? provider : "", name } : null;
}

function weightsOf(v: unknown): EffectiveRetrievalConfig["weights"] {
  if (!isObj(v)) return null;
  const vw = isObj(v.vector_setting) ? num(v.vector_setting.vector_weight) : null;
  const kw = isObj(v.keyword_setting) ? num(v.keyword_setting.keyword_weight) : null;
  if (vw === null && kw === null) return null;
  return { vectorWeight: vw ?? 0, keywordWeight: kw ?? 0 };
}

/**
 * §7 effective values: request model ▸ dataset's stored model ▸ semantic/top_k 4; threshold only
 * when enabled; rerank model only when `reranking_enable`; mode defaults to reranking_model.
 */
export function effectiveConfig(model: Row | null | undefined): EffectiveRetrievalConfig {
  const m = model ?? {};
  const method = m.search_method;
  const searchMethod: SearchMethod =
    method === "full_text_search" || method === "hybrid_search" || method === "keyword_search" ? method : "semantic_search";
  const topK = num(m.top_k);
  const threshold = num(m.score_threshold);
  return {
    searchMethod,
    topK: topK !== null && topK > 0 ? Math.floor(topK) : DEFAULT_TOP_K,
    scoreThreshold: m.score_threshold_enabled === true && threshold !== null ? threshold : 0,
    rerankingModel: m.reranking_enable === true ? rerankModelOf(m.reranking_model) : null,
    rerankingMode: m.reranking_mode === "weighted_score" ? "weighted_score" : "reranking_model",
    weights: weightsOf(m.weights),
  };
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/** Documents and segments a search may return (§12.3 step 2, §12.6 candidate documents). */
const VALID = `d.enabled AND NOT d.archived AND d.indexing_status = 'completed' AND s.enabled AND s.status = 'completed'`;

/** The cast the per-dimension HNSW indexes are built on (init migration): vector(d) ≤ 2,000, halfvec(d) above. */
function castFor(dim: number): string {
  if (!Number.isInteger(dim) || dim <= 0 || dim > 16000) throw Errors.invalidParam(`Unsupported embedding dimension ${dim}`);
  return dim <= 2000 ? `vector(${dim})` : `halfvec(${dim})`;
}

let iterativeScan: Promise<boolean> | null = null;
/** pgvector ≥ 0.8 can keep scanning the HNSW graph until the filtered LIMIT is met. */
function supportsIterativeScan(prisma: PrismaClient): Promise<boolean> {
  iterativeScan ??= prisma
    .$queryRawUnsafe<Row[]>(`SELECT extversion FROM pg_extension WHERE extname = 'vector'`)
    .then((rows) => {
      const [maj, min] = String(rows[0]?.extversion ?? "0.0").split(".").map(Number);
      return (maj ?? 0) > 0 || (min ?? 0) >= 8;
    })
    .catch(() => false);
  return iterativeScan;
}

function docFilterSql(docIds: string[] | null, paramIndex: number): string {
  return docIds ? ` AND d.id = ANY($${paramIndex}::uuid[])` : "";
}

async function vectorSearch(
  deps: RetrievalDeps,
  datasetId: string,
  queryVector: number[],
  limit: number,
  docIds: string[] | null,
): Promise<Hit[]> {
  const cast = castFor(queryVector.length);
  const dim = queryVector.length;
  // `WHERE dimension = d` plus the exact cast expression make the partial HNSW index usable.
  const sql = `SELECT e.segment_id::text AS segment_id, e.child_chunk_id::text AS child_chunk_id, e.index_node_id, e.document_id::text AS document_id,
      COALESCE(c.content, s.content) AS content, (e.embedding::${cast} <=> $1::${cast})::float8 AS distance
    FROM embeddings e
    JOIN document_segments s ON s.id = e.segment_id
    JOIN documents d ON d.id = e.document_id
    LEFT JOIN child_chunks c ON c.id = e.child_chunk_id
    WHERE e.dimension = ${dim} AND e.dataset_id = $2::uuid AND ${VALID}${docFilterSql(docIds, 4)}
    ORDER BY e.embedding::${cast} <=> $1::${cast}
    LIMIT $3`;
  const params: unknown[] = [vectorLiteral(queryVector), datasetId, limit, ...(docIds ? [docIds] : [])];
  const rows = (await supportsIterativeScan(deps.prisma))
    ? await deps.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`SET LOCAL hnsw.iterative_scan = relaxed_order`);
        return tx.$queryRawUnsafe<Row[]>(sql, ...params);
      })
    : await deps.prisma.$queryRawUnsafe<Row[]>(sql, ...params);
  return rows
    .map((r) => {
      const score = 1 - Number(r.distance);
      return {
        datasetId,
        documentId: String(r.document_id),
        segmentId: String(r.segment_id),
        childChunkId: (r.child_chunk_id as string | null) ?? null,
        nodeId: String(r.index_node_id),
        content: String(r.content ?? ""),
        score,
        vectorScore: score,
      };
    })
    .sort((a, b) => b.score - a.score);
}

/** Cosine similarity of the query with the stored vectors of some nodes (weighted score, §12.1). */
async function vectorScoresFor(deps: RetrievalDeps, datasetId: string, queryVector: number[], nodeIds: string[]): Promise<Map<string, number>> {
  if (nodeIds.length === 0) return new Map();
  const cast = castFor(queryVector.length);
  const rows = await deps.prisma.$queryRawUnsafe<Row[]>(
    `SELECT index_node_id, (1 - (embedding::${cast} <=> $1::${cast}))::float8 AS score FROM embeddings
     WHERE dimension = ${queryVector.length} AND dataset_id = $2::uuid AND index_node_id = ANY($3::text[])`,
    vectorLiteral(queryVector),
    datasetId,
    nodeIds,
  );
  return new Map(rows.map((r) => [String(r.index_node_id), Number(r.score)]));
}

async function fullTextSearch(deps: RetrievalDeps, datasetId: string, query: string, limit: number, docIds: string[] | null): Promise<Hit[]> {
  const text = toSearchQuery(query);
  if (!text) return [];
  // Hierarchical documents are searched through their child chunks (what Dify's vector store
  // holds for them, §11.7); other documents through their segments.
  const rows = await deps.prisma.$queryRawUnsafe<Row[]>(
    `WITH q AS (SELECT plainto_tsquery('simple', $1) AS q)
     SELECT * FROM (
       SELECT s.id::text AS segment_id, NULL::text AS child_chunk_id, COALESCE(s.index_node_id, s.id::text) AS node_id, s.document_id::text AS document_id,
              s.content, ts_rank(s.search_vector, q.q)::float8 AS score, s.position AS pos, 0 AS cpos
       FROM document_segments s JOIN documents d ON d.id = s.document_id, q
       WHERE s.dataset_id = $2::uuid AND d.doc_form <> 'hierarchical_model' AND s.search_vector @@ q.q AND ${VALID}${docFilterSql(docIds, 4)}
       UNION ALL
       SELECT c.segment_id::text, c.id::text, COALESCE(c.index_node_id, c.id::text), c.document_id::text,
              c.content, ts_rank(c.search_vector, q.q)::float8, s.position, c.position
       FROM child_chunks c JOIN document_segments s ON s.id = c.segment_id JOIN documents d ON d.id = c.document_id, q
       WHERE c.dataset_id = $2::uuid AND d.doc_form = 'hierarchical_model' AND c.search_vector @@ q.q AND ${VALID}${docFilterSql(docIds, 4)}
     ) x ORDER BY score DESC, document_id, pos, cpos LIMIT $3`,
    text,
    datasetId,
    limit,
    ...(docIds ? [docIds] : []),
  );
  return rows.map((r) => ({
    datasetId,
    documentId: String(r.document_id),
    segmentId: String(r.segment_id),
    childChunkId: (r.child_chunk_id as string | null) ?? null,
    nodeId: String(r.node_id),
    content: String(r.content ?? ""),
    score: Number(r.score),
  }));
}

/**
 * keyword_search (§12.1): up to 10 query keywords, segments ranked by how many they contain —
 * in the segment's `keywords` (economy indexing, §11.6), else in its full-text vector. Score 0.0.
 */
async function keywordSearch(deps: RetrievalDeps, datasetId: string, query: string, topK: number, docIds: string[] | null): Promise<Hit[]> {
  const kws = extractKeywords(query, 10);
  if (kws.length === 0) return [];
  const rows = await deps.prisma.$queryRawUnsafe<Row[]>(
    `SELECT s.id::text AS segment_id, COALESCE(s.index_node_id, s.id::text) AS node_id, s.document_id::text AS document_id, s.content, x.n
     FROM document_segments s JOIN documents d ON d.id = s.document_id
     CROSS JOIN LATERAL (SELECT CASE
         WHEN jsonb_typeof(s.keywords) = 'array' AND jsonb_array_length(s.keywords) > 0
           THEN (SELECT count(DISTINCT lower(k))::int FROM jsonb_array_elements_text(s.keywords) k WHERE lower(k) = ANY($3::text[]))
         ELSE (SELECT count(*)::int FROM unnest($3::text[]) t WHERE s.search_vector @@ plainto_tsquery('simple', t))
       END AS n) x
     WHERE s.dataset_id = $1::uuid AND d.doc_form <> 'hierarchical_model' AND ${VALID}${docFilterSql(docIds, 4)} AND x.n > 0
     ORDER BY x.n DESC, s.document_id, s.position LIMIT $2`,
    datasetId,
    topK,
    kws,
    ...(docIds ? [docIds] : []),
  );
  return rows.map((r) => ({
    datasetId,
    documentId: String(r.document_id),
    segmentId: String(r.segment_id),
    childChunkId: null,
    nodeId: String(r.node_id),
    content: String(r.content ?? ""),
    score: 0,
  }));
}

// ---------------------------------------------------------------------------------------------
// Post-processing (Dify's DataPostProcessor)
// ---------------------------------------------------------------------------------------------

class QueryVectors {
  private cache = new Map<string, Promise<number[]>>();
  constructor(
    private deps: RetrievalDeps,
    private query: string,
    private signal?: AbortSignal,
  ) {}
  for(dataset: DatasetRow): Promise<number[]> {
    if (!dataset.embedding_model) return Promise.reject(Errors.datasetNotInitialized());
    const key = `${dataset.embedding_model_provider ?? ""}\u0000${dataset.embedding_model}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.deps.models
        .embed({ provider: dataset.embedding_model_provider ?? undefined, name: dataset.embedding_model }, [this.query], { signal: this.signal })
        .then((r) => r.vectors[0]!);
      this.cache.set(key, p);
    }
    return p;
  }
}

async function rerankHits(deps: RetrievalDeps, model: { provider: string; name: string }, query: string, hits: Hit[], threshold: number, topN: number, signal?: AbortSignal): Promise<Hit[]> {
  if (hits.length === 0) return [];
  const results = await deps.models.rerank({ provider: model.provider || undefined, name: model.name }, query, hits.map((h) => h.content), hits.length, { ...(signal ? { signal } : {}) });
  const out: Hit[] = [];
  for (const r of results) {
    const h = hits[r.index];
    if (!h) continue;
    if (threshold > 0 && r.score < threshold) continue;
    out.push({ ...h, score: r.score });
  }
  return out.sort((a, b) => b.score - a.score).slice(0, topN);
}

async function weightedHits(
  deps: RetrievalDeps,
  datasets: Map<string, DatasetRow>,
  vectors: QueryVectors,
  weights: { vectorWeight: number; keywordWeight: number },
  query: string,
  hits: Hit[],
  threshold: number,
  topN: number,
): Promise<Hit[]> {
  if (hits.length === 0) return [];
  // Candidates found only by full-text get the cosine of their stored vector (a ts_rank is not a
  // similarity); those without a vector (economy) count 0 on the vector side.
  const missing = new Map<string, string[]>();
  for (const h of hits) if (h.vectorScore === undefined) missing.set(h.datasetId, [...(missing.get(h.datasetId) ?? []), h.nodeId]);
  const computed = new Map<string, number>();
  for (const [datasetId, nodeIds] of missing) {
    const ds = datasets.get(datasetId);
    if (!ds?.embedding_model) continue;
    const scores = await vectorScoresFor(deps, datasetId, await vectors.for(ds), nodeIds);
    for (const [k, v] of scores) computed.set(`${datasetId}/${k}`, v);
  }
  const kw = keywordScores(query, hits.map((h) => h.content));
  const out = hits.map((h, i) => {
    const vs = h.vectorScore ?? computed.get(`${h.datasetId}/${h.nodeId}`) ?? 0;
    return { ...h, score: weights.vectorWeight * vs + weights.keywordWeight * kw[i]! };
  });
  return out
    .filter((h) => !(threshold > 0 && h.score < threshold))
    .sort((a, b) => b.score - a.score)
    .slice(0, topN);
}

interface PostProcess {
  mode: RerankingMode;
  rerankingModel: { provider: string; name: string } | null;
  weights: EffectiveRetrievalConfig["weights"];
  threshold: number;
  topK: number;
}

/** DataPostProcessor.invoke: a runner when one applies, else the hits unchanged (no truncation). */
async function postProcess(deps: RetrievalDeps, ctx: Ctx, query: string, hits: Hit[], p: PostProcess): Promise<Hit[] | null> {
  if (p.mode === "weighted_score" && p.weights) return weightedHits(deps, ctx.datasets, ctx.vectors, p.weights, query, hits, p.threshold, p.topK);
  if (p.mode === "reranking_model" && p.rerankingModel) return rerankHits(deps, p.rerankingModel, query, hits, p.threshold, p.topK, ctx.signal);
  return null;
}

interface Ctx {
  datasets: Map<string, DatasetRow>;
  vectors: QueryVectors;
  signal?: AbortSignal | undefined;
}

function dedupeByNode(hits: Hit[]): Hit[] {
  const best = new Map<string, Hit>();
  for (const h of hits) {
    const key = `${h.datasetId}/${h.nodeId}`;
    const prev = best.get(key);
    if (!prev) best.set(key, h);
    else {
      const vectorScore = prev.vectorScore ?? h.vectorScore;
      best.set(key, { ...(h.score > prev.score ? h : prev), vectorScore });
    }
  }
  return [...best.values()];
}

/** RetrievalService.retrieve for one dataset (§12.1), hits not yet collapsed. */
async function searchDataset(deps: RetrievalDeps, ctx: Ctx, dataset: DatasetRow, query: string, cfg: EffectiveRetrievalConfig, docIds: string[] | null): Promise<Hit[]> {
  const threshold = cfg.scoreThreshold;
  const rerankSingle = async (hits: Hit[]) =>
    cfg.rerankingModel ? rerankHits(deps, cfg.rerankingModel, query, hits, threshold, hits.length, ctx.signal) : hits;
  switch (cfg.searchMethod) {
    case "keyword_search":
      return keywordSearch(deps, dataset.id, query, cfg.topK, docIds);
    case "semantic_search": {
      const vector = await ctx.vectors.for(dataset);
      // pgvector keeps score > threshold (§12.1).
      const hits = (await vectorSearch(deps, dataset.id, vector, cfg.topK, docIds)).filter((h) => h.score > threshold);
      return rerankSingle(hits);
    }
    case "full_text_search":
      return rerankSingle(await fullTextSearch(deps, dataset.id, query, cfg.topK, docIds));
    case "hybrid_search": {
      const perChannel = Math.min(200, Math.max(50, cfg.topK));
      const vector = await ctx.vectors.for(dataset);
      const [sem, ft] = await Promise.all([
        vectorSearch(deps, dataset.id, vector, perChannel, docIds),
        fullTextSearch(deps, dataset.id, query, perChannel, docIds),
      ]);
      const merged = dedupeByNode([...sem, ...ft]);
      const processed = await postProcess(deps, ctx, query, merged, {
        mode: cfg.rerankingMode,
        rerankingModel: cfg.rerankingModel,
        weights: cfg.weights,
        threshold,
        topK: cfg.topK,
      });
      // No usable runner: every candidate is kept (no top_k truncation, §12.1 — reproduced).
      return processed ?? merged.filter((h) => !(threshold > 0 && h.score < threshold));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/** §12.3: one record per segment, score = max of its hits, child chunks listed by score. */
async function toRecords(deps: RetrievalDeps, datasets: Map<string, DatasetRow>, hits: Hit[]): Promise<RetrievalRecord[]> {
  if (hits.length === 0) return [];
  const groups = new Map<string, { score: number; rank: number; children: Map<string, number> }>();
  for (const [rank, h] of hits.entries()) {
    const g = groups.get(h.segmentId) ?? { score: -Infinity, rank, children: new Map<string, number>() };
    g.score = Math.max(g.score, h.score);
    if (h.childChunkId) g.children.set(h.childChunkId, Math.max(g.children.get(h.childChunkId) ?? -Infinity, h.score));
    groups.set(h.segmentId, g);
  }
  const segmentIds = [...groups.keys()];
  const childIds = [...groups.values()].flatMap((g) => [...g.children.keys()]);
  const [segments, children] = await Promise.all([
    deps.prisma.documentSegment.findMany({ where: { id: { in: segmentIds }, enabled: true, status: "completed" }, include: { document: true } }),
    childIds.length ? deps.prisma.childChunk.findMany({ where: { id: { in: childIds } }, select: { id: true, content: true, position: true } }) : [],
  ]);
  const childById = new Map(children.map((c) => [c.id, c]));
  const records: Array<RetrievalRecord & { rank: number }> = [];
  for (const s of segments) {
    const dataset = datasets.get(s.dataset_id);
    if (!dataset || !s.document) continue;
    const g = groups.get(s.id)!;
    const { document, ...segment } = s;
    const childChunks: RetrievedChildChunk[] = [];
    if (document.doc_form === "hierarchical_model") {
      for (const [id, score] of g.children) {
        const c = childById.get(id);
        if (c) childChunks.push({ id: c.id, content: c.content, position: c.position, score });
      }
      childChunks.sort((a, b) => b.score - a.score);
    }
    records.push({ segment: segment as SegmentRow, document, dataset, score: g.score, childChunks, rank: g.rank });
  }
  // Newest Dify sorts records by score (§12.3 step 4); ties keep the search's own order (keyword
  // search ranks by matched keywords while every score is 0.0).
  records.sort((a, b) => b.score - a.score || a.rank - b.rank);
  return records.map(({ rank: _rank, ...r }) => r);
}

/** Document ids passing the metadata filter; null = no filter built; [] = nothing matches. */
async function metadataDocumentIds(deps: RetrievalDeps, datasetIds: string[], filter: MetadataFilter | null | undefined): Promise<string[] | null> {
  const pred = buildMetadataPredicate(filter, 1);
  if (!pred) return null;
  const rows = await deps.prisma.$queryRawUnsafe<Row[]>(
    `SELECT d.id::text AS id FROM documents d
     WHERE d.dataset_id = ANY($1::uuid[]) AND d.indexing_status = 'completed' AND d.enabled AND NOT d.archived AND ${pred.sql}`,
    datasetIds,
    ...pred.params,
  );
  return rows.map((r) => String(r.id));
}

/** App/node multiple-retrieval settings (dsl §2.7 dataset_configs, §4.5 multiple_retrieval_config). */
function multipleSettings(m: Row) {
  const cfg = effectiveConfig({ ...m, search_method: "semantic_search", reranking_enable: true });
  return {
    topK: cfg.topK,
    // Applied only when enabled (DatasetConfigManager: `score_threshold if score_threshold_enabled`).
    threshold: m.score_threshold_enabled === true ? (num(m.score_threshold) ?? 0) : 0,
    // The app reader uses `reranking_enabled` (default true); nodes and §3.2 use `reranking_enable`.
    rerankingEnable: (m.reranking_enabled ?? m.reranking_enable ?? true) !== false,
    mode: cfg.rerankingMode,
    rerankingModel: cfg.rerankingModel,
    weights: cfg.weights,
  };
}

/**
 * Retrieval over one or more datasets of a tenant; records best first. Datasets of other tenants
 * (or unknown ids) are ignored.
 */
export async function retrieve(deps: RetrievalDeps, req: RetrieveRequest): Promise<RetrievalRecord[]> {
  const query = req.query;
  if (!query || req.datasetIds.length === 0) return [];
  const datasetList = await deps.prisma.dataset.findMany({ where: { id: { in: req.datasetIds.map((x) => x.toLowerCase()) }, tenant_id: req.tenantId } });
  if (datasetList.length === 0) return [];
  // Keep the caller's dataset order (used for ties and logs).
  const order = new Map(req.datasetIds.map((id, i) => [id.toLowerCase(), i]));
  datasetList.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  const datasets = new Map(datasetList.map((d) => [d.id, d]));
  const ctx: Ctx = { datasets, vectors: new QueryVectors(deps, query, req.signal), signal: req.signal };

  const docIds = await metadataDocumentIds(deps, datasetList.map((d) => d.id), req.metadataFilter);
  if (docIds && docIds.length === 0) return [];

  const strategy = req.strategy ?? (datasetList.length === 1 ? "dataset" : "multiple");
  let hits: Hit[];
  if (strategy === "dataset") {
    const cfg = effectiveConfig(req.retrievalModel);
    const perDataset = await Promise.all(datasetList.map((ds) => searchDataset(deps, ctx, ds, query, cfg, docIds)));
    hits = perDataset.flat();
    if (datasetList.length > 1) hits = hits.sort((a, b) => b.score - a.score).slice(0, cfg.topK);
  } else {
    const m = multipleSettings(req.retrievalModel ?? {});
    const perDataset = await Promise.all(
      datasetList.map((ds) => {
        // Each dataset with its own stored settings and the app's top_k; economy datasets use
        // keyword search (DatasetRetrieval._retriever).
        const own = effectiveConfig(ds.retrieval_model as Row | null);
        const cfg: EffectiveRetrievalConfig = { ...own, topK: m.topK, ...(ds.indexing_technique === "economy" ? { searchMethod: "keyword_search" as const } : {}) };
        return searchDataset(deps, ctx, ds, query, cfg, docIds);
      }),
    );
    const all = perDataset.flat();
    const processed = m.rerankingEnable
      ? ((await postProcess(deps, ctx, query, all, { mode: m.mode, rerankingModel: m.rerankingModel, weights: m.weights, threshold: m.threshold, topK: m.topK })) ?? all)
      : all
          .filter((h) => !(m.threshold > 0 && h.score < m.threshold))
          .sort((a, b) => b.score - a.score)
          .slice(0, m.topK);
    hits = processed;
  }

  const records = await toRecords(deps, datasets, hits);
  await logQueries(deps, datasetList, query, req.querySource ?? null);
  if (req.countHits && records.length) await incrementHits(deps, records);
  return records;
}

/** `dataset_queries` rows (§7: one per call, content = JSON list of typed queries). */
async function logQueries(deps: RetrievalDeps, datasets: DatasetRow[], query: string, source: string | null): Promise<void> {
  if (!source) return;
  const content = JSON.stringify([{ content_type: "text_query", content: query }]);
  await deps.prisma.datasetQuery
    .createMany({ data: datasets.map((d) => ({ dataset_id: d.id, content, source })) })
    .catch((err: unknown) => deps.logger?.warn({ err }, "could not log the dataset query"));
}

/** §11.10: +1 per returned segment (the parent for child hits); the records show the new count. */
async function incrementHits(deps: RetrievalDeps, records: RetrievalRecord[]): Promise<void> {
  const ids = records.map((r) => r.segment.id);
  const rows = await deps.prisma.$queryRawUnsafe<Row[]>(
    `UPDATE document_segments SET hit_count = hit_count + 1 WHERE id = ANY($1::uuid[]) RETURNING id::text AS id, hit_count`,
    ids,
  );
  const counts = new Map(rows.map((r) => [String(r.id), Number(r.hit_count)]));
  for (const r of records) r.segment.hit_count = counts.get(r.segment.id) ?? r.segment.hit_count;
}

// ---------------------------------------------------------------------------------------------
// Single retrieval ("router", dsl §2.7): the model picks one dataset by description.
// ---------------------------------------------------------------------------------------------

export interface RouterInput {
  tenantId: string;
  datasetIds: string[];
  query: string;
  model: ModelConfig;
  signal?: AbortSignal | undefined;
  user?: string | undefined;
}

/**
 * FunctionCallMultiDatasetRouter: no datasets → null, one → that one (no model call), several →
 * the model is offered one tool per dataset (named by id, described by its description) and the
 * called tool wins; no call → null (no retrieval).
 */
export async function routeDataset(deps: RetrievalDeps, input: RouterInput): Promise<string | null> {
  const datasets = await deps.prisma.dataset.findMany({
    where: { id: { in: input.datasetIds.map((x) => x.toLowerCase()) }, tenant_id: input.tenantId },
    select: { id: true, name: true, description: true },
  });
  if (datasets.length === 0) return null;
  if (datasets.length === 1) return datasets[0]!.id;
  const messages: ChatMessage[] = [
    { role: "system", content: "You are a helpful AI assistant." },
    { role: "user", content: input.query },
  ];
  const result = await deps.models.chat({
    model: input.model,
    messages,
    tools: datasets.map((d) => ({
      name: d.id,
      description: d.description || `useful for when you want to answer queries about the ${d.name}`,
      parameters: { type: "object", properties: { query: { type: "string", description: "Query for the dataset to be used to retrieve the dataset." } }, required: ["query"] },
    })),
    signal: input.signal,
    user: input.user,
  });
  const call = result.toolCalls[0];
  return call && datasets.some((d) => d.id === call.name) ? call.name : null;
}

/** Single mode: the routed dataset, searched with its own settings (economy → keyword search). */
export async function retrieveSingle(deps: RetrievalDeps, input: RouterInput & { metadataFilter?: MetadataFilter | null; countHits?: boolean; querySource?: string | null }): Promise<RetrievalRecord[]> {
  const id = await routeDataset(deps, input);
  if (!id) return [];
  const ds = await deps.prisma.dataset.findUnique({ where: { id } });
  if (!ds) return [];
  const own = (ds.retrieval_model as Row | null) ?? {};
  return retrieve(deps, {
    tenantId: input.tenantId,
    datasetIds: [id],
    query: input.query,
    retrievalModel: ds.indexing_technique === "economy" ? { ...own, search_method: "keyword_search" } : own,
    metadataFilter: input.metadataFilter,
    strategy: "dataset",
    countHits: input.countHits,
    querySource: input.querySource,
    signal: input.signal,
  });
}

// ---------------------------------------------------------------------------------------------
// Workflow knowledge-retrieval nodes (src/modules/workflow/types.ts)
// ---------------------------------------------------------------------------------------------

/**
 * `retrievalModel` is the node's data (dsl §4.5: retrieval_mode, multiple_retrieval_config,
 * single_retrieval_config) or a plain §3.2 retrieval model.
 */
export function createKnowledgeRetriever(deps: RetrievalDeps): KnowledgeRetriever {
  return {
    async retrieve(req: RetrievalRequest) {
      const rm = req.retrievalModel ?? {};
      let records: RetrievalRecord[];
      if (rm.retrieval_mode === "single") {
        const single = isObj(rm.single_retrieval_config) ? rm.single_retrieval_config : {};
        const model = (isObj(single.model) ? single.model : {}) as unknown as ModelConfig;
        records = await retrieveSingle(deps, {
          tenantId: req.tenantId,
          datasetIds: req.datasetIds,
          query: req.query,
          model,
          signal: req.signal,
          metadataFilter: (req.metadataFilter ?? null) as MetadataFilter | null,
          countHits: true,
          querySource: "workflow",
        });
      } else {
        const multiple = isObj(rm.multiple_retrieval_config) ? rm.multiple_retrieval_config : rm;
        // Node thresholds are "number | null" with no enabled flag (§4.5).
        const withFlag = "score_threshold_enabled" in multiple ? multiple : { ...multiple, score_threshold_enabled: multiple.score_threshold != null };
        records = await retrieve(deps, {
          tenantId: req.tenantId,
          datasetIds: req.datasetIds,
          query: req.query,
          retrievalModel: withFlag,
          metadataFilter: (req.metadataFilter ?? null) as MetadataFilter | null,
          strategy: "multiple",
          countHits: true,
          querySource: "workflow",
          signal: req.signal,
        });
      }
      return { chunks: records.map((r, i) => buildNodeResult(r, i + 1)), citations: buildCitations(records, "workflow") };
    },
  };
}

export type { CitationSource };

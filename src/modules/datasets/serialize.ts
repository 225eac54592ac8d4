// The dataset object (datasets spec §3.1), built field by field in Dify's key order, with the
// counts and joined data loaded in a few batched queries for a whole page of datasets.
import type { Dataset } from "../../generated/prisma/client.js";
import type { Db } from "../../lib/prisma.js";
import { PyFloat } from "../../lib/pyjson.js";
import { toUnix } from "../../lib/time.js";
import { workspaceOwnerId } from "../tenants/owner.js";

/** The five built-in metadata fields, in Dify's order (§3.9). */
export const BUILT_IN_FIELDS = [
  { name: "document_name", type: "string" },
  { name: "uploader", type: "string" },
  { name: "upload_date", type: "time" },
  { name: "last_update_date", type: "time" },
  { name: "source", type: "string" },
] as const;
export const BUILT_IN_NAMES: ReadonlySet<string> = new Set(BUILT_IN_FIELDS.map((f) => f.name));

export interface DatasetExtras {
  appCount: number;
  documentCount: number;
  wordCount: number;
  availableDocuments: number;
  firstDocForm: string | null;
  tags: Array<{ id: string; name: string }>;
  metadata: Array<{ id: string; name: string; type: string }>;
  authorName: string | null;
}

/** Loads everything the dataset objects of `rows` need besides the rows themselves. */
export async function loadDatasetExtras(db: Db, rows: Dataset[]): Promise<Map<string, DatasetExtras>> {
  const out = new Map<string, DatasetExtras>();
  if (rows.length === 0) return out;
  const ids = rows.map((r) => r.id);
  const tenantIds = [...new Set(rows.map((r) => r.tenant_id))];
  const [docs, available, firstDocs, apps, bindings, metadata, tenants] = await Promise.all([
    db.document.groupBy({ by: ["dataset_id"], where: { dataset_id: { in: ids } }, _count: { _all: true }, _sum: { word_count: true } }),
    db.document.groupBy({
      by: ["dataset_id"],
      where: { dataset_id: { in: ids }, indexing_status: "completed", enabled: true, archived: false },
      _count: { _all: true },
    }),
    db.document.findMany({
      where: { dataset_id: { in: ids } },
      distinct: ["dataset_id"],
      orderBy: [{ dataset_id: "asc" }, { position: "asc" }, { created_at: "asc" }],
      select: { dataset_id: true, doc_form: true },
    }),
    db.appDatasetMapping.groupBy({ by: ["dataset_id"], where: { dataset_id: { in: ids } }, _count: { _all: true } }),
    db.tagBinding.findMany({
      where: { target_id: { in: ids }, tenant_id: { in: tenantIds }, tag: { type: "knowledge", tenant_id: { in: tenantIds } } },
      orderBy: [{ tag: { created_at: "asc" } }, { tag_id: "asc" }],
      select: { target_id: true, tag: { select: { id: true, name: true } } },
    }),
    db.datasetMetadata.findMany({
      where: { dataset_id: { in: ids } },
      orderBy: [{ created_at: "asc" }, { id: "asc" }],
      select: { id: true, dataset_id: true, name: true, type: true },
    }),
    db.tenant.findMany({ where: { id: { in: tenantIds } }, select: { id: true, name: true } }),
  ]);
  const tenantName = new Map(tenants.map((t) => [t.id, t.name]));
  for (const r of rows) {
    const d = docs.find((x) => x.dataset_id === r.id);
    const ownerId = workspaceOwnerId(r.tenant_id);
    out.set(r.id, {
      appCount: apps.find((x) => x.dataset_id === r.id)?._count._all ?? 0,
      documentCount: d?._count._all ?? 0,
      wordCount: d?._sum.word_count ?? 0,
      availableDocuments: available.find((x) => x.dataset_id === r.id)?._count._all ?? 0,
      firstDocForm: firstDocs.find((x) => x.dataset_id === r.id)?.doc_form ?? null,
      tags: bindings.filter((b) => b.target_id === r.id).map((b) => b.tag),
      metadata: metadata.filter((m) => m.dataset_id === r.id).map(({ id, name, type }) => ({ id, name, type })),
      // Records are created by the workspace owner, whose display name is the tenant's (owner.ts).
      authorName: r.created_by === ownerId ? (tenantName.get(r.tenant_id) ?? null) : null,
    });
  }
  return out;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const float = (v: unknown): PyFloat | null => (typeof v === "number" ? new PyFloat(v) : null);

const DEFAULT_RETRIEVAL_MODEL: Json = {
  search_method: "semantic_search",
  reranking_enable: false,
  reranking_model: { reranking_provider_name: "", reranking_model_name: "" },
  top_k: 2,
  score_threshold_enabled: false,
};

/** `retrieval_model_dict` (§3.2): the stored dict over the defaults, projected to the response
 * model's keys (extra stored keys such as metadata_filtering_conditions are dropped). */
export function retrievalModelDict(stored: unknown): Json {
  const m: Json = { ...DEFAULT_RETRIEVAL_MODEL, ...(isObj(stored) ? stored : {}) };
  const rr = m.reranking_model;
  const w = m.weights;
  let weights: Json | null = null;
  if (isObj(w)) {
    const vs = w.vector_setting;
    const ks = w.keyword_setting;
    weights = {
      weight_type: w.weight_type ?? null,
      vector_setting: isObj(vs)
        ? { vector_weight: float(vs.vector_weight), embedding_provider_name: vs.embedding_provider_name ?? null, embedding_model_name: vs.embedding_model_name ?? null }
        : null,
      keyword_setting: isObj(ks) ? { keyword_weight: float(ks.keyword_weight) } : null,
    };
  }
  return {
    search_method: m.search_method ?? null,
    reranking_enable: m.reranking_enable ?? null,
    reranking_mode: m.reranking_mode ?? null,
    reranking_model: isObj(rr) ? { reranking_provider_name: rr.reranking_provider_name ?? null, reranking_model_name: rr.reranking_model_name ?? null } : null,
    weights,
    top_k: m.top_k ?? null,
    score_threshold_enabled: m.score_threshold_enabled ?? null,
    score_threshold: float(m.score_threshold),
  };
}

/** `external_retrieval_model` (§3.1): the stored retrieval model projected to three keys, or
 * Dify's default `{"top_k": 2, "score_threshold": 0.0}`. */
function externalRetrievalModel(stored: unknown): Json {
  const m = isObj(stored) ? stored : { top_k: 2, score_threshold: 0 };
  return { top_k: m.top_k ?? null, score_threshold: float(m.score_threshold), score_threshold_enabled: m.score_threshold_enabled ?? null };
}

function summaryIndexSetting(stored: unknown): Json | null {
  if (!isObj(stored)) return null;
  return {
    enable: stored.enable ?? null,
    model_name: stored.model_name ?? null,
    model_provider_name: stored.model_provider_name ?? null,
    summary_prompt: stored.summary_prompt ?? null,
  };
}

function iconInfo(stored: unknown): Json | null {
  if (!isObj(stored)) return null;
  return { icon_type: stored.icon_type ?? null, icon: stored.icon ?? null, icon_background: stored.icon_background ?? null, icon_url: stored.icon_url ?? null };
}

/** `doc_metadata` of a dataset: custom fields, then the built-ins when enabled (§3.1). */
export function datasetDocMetadata(row: Pick<Dataset, "built_in_field_enabled">, metadata: DatasetExtras["metadata"]): Json[] {
  const out: Json[] = metadata.map((m) => ({ id: m.id, name: m.name, type: m.type }));
  if (row.built_in_field_enabled) for (const f of BUILT_IN_FIELDS) out.push({ id: "built-in", name: f.name, type: f.type });
  return out;
}

export interface DatasetObjectOptions {
  /** null in create/patch responses; computed by list/detail (§4.1, §4.3). */
  embeddingAvailable: boolean | null;
  /** Overrides the stored provider (the list rewrites it to the plugin id, §4.1). */
  embeddingModelProvider?: string | null;
  /** Detail forces keyword_search for non-high_quality datasets (§4.3). */
  forceKeywordSearch?: boolean;
  /** Appended last when given: detail (partial_members only) and PATCH (always). */
  partialMemberList?: string[];
}

/** The dataset object of §3.1, every key in Dify's order. */
export function datasetObject(row: Dataset, x: DatasetExtras, o: DatasetObjectOptions): Json {
  const rmd = retrievalModelDict(row.retrieval_model);
  if (o.forceKeywordSearch) rmd.search_method = "keyword_search";
  const body: Json = {
    id: row.id,
    name: row.name,
    description: row.description,
    provider: row.provider,
    permission: row.permission,
    data_source_type: row.data_source_type ?? null,
    indexing_technique: row.indexing_technique ?? null,
    app_count: x.appCount,
    document_count: x.documentCount,
    word_count: x.wordCount,
    created_by: row.created_by ?? null,
    author_name: x.authorName,
    created_at: toUnix(row.created_at),
    updated_by: row.updated_by ?? null,
    updated_at: toUnix(row.updated_at),
    embedding_model: row.embedding_model ?? null,
    embedding_model_provider: o.embeddingModelProvider !== undefined ? o.embeddingModelProvider : (row.embedding_model_provider ?? null),
    embedding_available: o.embeddingAvailable,
    retrieval_model_dict: rmd,
    summary_index_setting: summaryIndexSetting(row.summary_index_setting),
    tags: x.tags.map((t) => ({ id: t.id, name: t.name, type: "knowledge" })),
    // chunk_structure, else the first document's form (Dify's Dataset.doc_form property).
    doc_form: row.chunk_structure ?? x.firstDocForm ?? row.doc_form ?? null,
    // Servify has no external-knowledge API templates, so no dataset has a binding (§4.2 step 7).
    external_knowledge_info: null,
    external_retrieval_model: externalRetrievalModel(row.retrieval_model),
    doc_metadata: datasetDocMetadata(row, x.metadata),
    built_in_field_enabled: row.built_in_field_enabled,
    pipeline_id: null,
    runtime_mode: "general",
    chunk_structure: row.chunk_structure ?? null,
    icon_info: iconInfo(row.icon_info),
    is_published: false,
    total_documents: x.documentCount,
    total_available_documents: x.availableDocuments,
    enable_api: row.enable_api,
    is_multimodal: false,
  };
  if (o.partialMemberList !== undefined) body.partial_member_list = o.partialMemberList;
  return body;
}

// Knowledge retrieval test (datasets spec §7), one handler for both URLs:
//   POST /v1/datasets/{dataset_id}/retrieve
//   POST /v1/datasets/{dataset_id}/hit-testing
// Dataset key auth; the dataset must be the key's tenant's with API access on (§2.1 step 5).
// Never increments hit_count (§11.10); writes one dataset_queries row (source "hit_testing").
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { toUnix } from "../../lib/time.js";
import { uuidParam } from "../../lib/ids.js";
import { retrieve, type RetrievalRecord } from "../../modules/retrieval/search.js";
import type { MetadataFilter } from "../../modules/retrieval/metadata-filter.js";
import { Errors } from "../../lib/errors.js";
import { requireDataset } from "../plugins/dataset-scope.js";
import { jsonBody } from "../plugins/body.js";
import { parseOr400 } from "../validation.js";
import type { Services } from "../services.js";

// RetrievalModel (§3.2): the four keys are required whenever the object is sent.
const retrievalModelSchema = z
  .object({
    search_method: z.enum(["semantic_search", "full_text_search", "hybrid_search", "keyword_search"], {
      error: "Input should be 'keyword_search', 'semantic_search', 'full_text_search' or 'hybrid_search'",
    }),
    reranking_enable: z.boolean({ error: (i) => (i.input === undefined ? "Field required" : "Input should be a valid boolean") }),
    reranking_model: z
      .object({ reranking_provider_name: z.string().nullish(), reranking_model_name: z.string().nullish() })
      .loose()
      .nullish(),
    reranking_mode: z.string().nullish(),
    top_k: z.number({ error: (i) => (i.input === undefined ? "Field required" : "Input should be a valid integer") }).int("Input should be a valid integer"),
    score_threshold_enabled: z.boolean({ error: (i) => (i.input === undefined ? "Field required" : "Input should be a valid boolean") }),
    score_threshold: z.number({ error: "Input should be a valid number" }).nullish(),
    weights: z.record(z.string(), z.unknown()).nullish(),
    metadata_filtering_conditions: z
      .object({
        logical_operator: z.string().nullish(),
        conditions: z.array(z.object({ name: z.string(), comparison_operator: z.string(), value: z.unknown().optional() }).loose()).nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();

const hitTestingSchema = z
  .object({
    query: z.string({ error: (i) => (i.input === undefined ? "Field required" : "Input should be a valid string") }),
    retrieval_model: retrievalModelSchema.nullish(),
    external_retrieval_model: z.record(z.string(), z.unknown()).nullish(),
    attachment_ids: z.array(z.string()).nullish(),
  })
  .loose();

/** The hit-testing record (api/fields/hit_testing_fields.py), keys in Dify's order. */
function recordResponse(r: RetrievalRecord) {
  const s = r.segment;
  const d = r.document;
  return {
    segment: {
      id: s.id,
      position: s.position,
      document_id: s.document_id,
      content: s.content,
      sign_content: s.content,
      answer: s.answer,
      word_count: s.word_count,
      tokens: s.tokens,
      keywords: Array.isArray(s.keywords) ? s.keywords : [],
      index_node_id: s.index_node_id,
      index_node_hash: s.index_node_hash,
      hit_count: s.hit_count,
      enabled: s.enabled,
      disabled_at: toUnix(s.disabled_at),
      disabled_by: s.disabled_by,
      status: s.status,
      created_by: s.created_by,
      created_at: toUnix(s.created_at),
      indexing_at: toUnix(s.indexing_at),
      completed_at: toUnix(s.completed_at),
      error: s.error,
      stopped_at: toUnix(s.stopped_at),
      document: { id: d.id, data_source_type: d.data_source_type, name: d.name, doc_type: d.doc_type, doc_metadata: d.doc_metadata ?? null },
    },
    child_chunks: r.childChunks.map((c) => ({ id: c.id, content: c.content, position: c.position, score: c.score })),
    score: r.score,
    tsne_position: null,
    files: [],
    summary: null,
  };
}

export function datasetRetrievalRoutes(app: FastifyInstance, s: Services): void {
  const handler = async (req: FastifyRequest) => {
    const datasetId = (req.params as { dataset_id: string }).dataset_id;
    const dataset = await requireDataset(s.prisma, req, datasetId);
    const body = parseOr400(hitTestingSchema, jsonBody(req), "HitTestingPayload");
    // HitTestingService.hit_testing_args_check.
    if (!body.attachment_ids?.length && !body.query) throw Errors.invalidParam("Query or attachment_ids is required");
    if (Array.from(body.query).length > 250) throw Errors.invalidParam("Query cannot exceed 250 characters");

    // Effective config: request ▸ dataset's stored model ▸ defaults (inside retrieve) (§7).
    const retrievalModel = (body.retrieval_model ?? (dataset.retrieval_model as Record<string, unknown> | null) ?? null) as Record<string, unknown> | null;
    const metadataFilter = (retrievalModel?.metadata_filtering_conditions ?? null) as MetadataFilter | null;
    const records = body.query
      ? await retrieve(
          { prisma: s.prisma, models: s.models, logger: s.logger },
          {
            tenantId: dataset.tenant_id,
            datasetIds: [dataset.id],
            query: body.query,
            retrievalModel,
            metadataFilter,
            strategy: "dataset",
            countHits: false,
            querySource: "hit_testing",
          },
        )
      : [];
    return { query: { content: body.query }, records: records.map(recordResponse) };
  };
  const opts = { config: { auth: "dataset" as const } };
  app.post(`/v1/datasets/${uuidParam("dataset_id")}/retrieve`, opts, handler);
  app.post(`/v1/datasets/${uuidParam("dataset_id")}/hit-testing`, opts, handler);
}

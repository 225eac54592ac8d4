// Datasets (knowledge bases): list / create / detail / update / delete (datasets spec §4).
// Every call runs as the workspace owner (§2.1 step 4, tenants/owner.ts). The routes resolve the
// dataset of the path (scope, tenant, enable_api) before calling in here.
import type { Dataset, Prisma } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { ModelCatalog } from "../models/catalog.js";
import { normaliseProvider } from "../models/registry.js";
import type { Producer } from "../../queue/producer.js";
import { workspaceOwnerId } from "../tenants/owner.js";
import {
  has,
  INDEXING_TECHNIQUES,
  optStr,
  PERMISSIONS,
  PyValidator,
  readRetrievalModel,
  readSummaryIndexSetting,
  type RetrievalModelInput,
  type SummaryIndexSettingInput,
} from "./pydantic.js";
import { datasetObject, loadDatasetExtras } from "./serialize.js";

const NO_EMBEDDING_MODEL = "No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.";
const NO_RERANK_MODEL = "No Rerank Model available. Please configure a valid provider in the Settings -> Model Provider.";

/** Where the key may look: its tenant and, for a scoped key, its datasets (http dataset-scope). */
export interface DatasetScope {
  tenant_id: string;
  id?: { in: string[] };
}

// ---- request models (§4.2, §4.4) --------------------------------------------------------

export interface CreateInput {
  name: string;
  description: string;
  indexing_technique: "high_quality" | "economy" | null;
  permission: string | null;
  provider: "vendor" | "external";
  external_knowledge_api_id: string | null;
  external_knowledge_id: string | null;
  embedding_model: string | null;
  embedding_model_provider: string | null;
  retrieval_model: RetrievalModelInput | null;
  summary_index_setting: SummaryIndexSettingInput | null;
}

/** DatasetCreatePayload; throws 422 (§1.2 rule 4). */
export function parseCreate(body: Record<string, unknown>): CreateInput {
  const v = new PyValidator();
  const name = has(body, "name") ? v.str(body.name, ["name"], { min: 1, max: 40 }) : v.missing(["name"]);
  const description = has(body, "description") ? v.str(body.description, ["description"], { max: 400 }) : "";
  const it = has(body, "indexing_technique") && body.indexing_technique !== null ? v.choice(body.indexing_technique, ["indexing_technique"], INDEXING_TECHNIQUES) : null;
  const permission = !has(body, "permission") ? "only_me" : body.permission === null ? null : v.choice(body.permission, ["permission"], PERMISSIONS, "enum");
  const provider = has(body, "provider") ? v.choice(body.provider, ["provider"], ["vendor", "external"] as const) : "vendor";
  const external_knowledge_api_id = optStr(v, body, "external_knowledge_api_id", []);
  const external_knowledge_id = optStr(v, body, "external_knowledge_id", []);
  const retrieval_model = has(body, "retrieval_model") && body.retrieval_model !== null ? (readRetrievalModel(v, body.retrieval_model, ["retrieval_model"]) ?? null) : null;
  const embedding_model = optStr(v, body, "embedding_model", []);
  const embedding_model_provider = optStr(v, body, "embedding_model_provider", []);
  const summary_index_setting = readSummaryIndexSetting(v, body.summary_index_setting, ["summary_index_setting"]);
  if (!v.ok) throw v.toError();
  return {
    name: name!, description: description!, indexing_technique: it ?? null, permission: permission ?? null, provider: provider!,
    external_knowledge_api_id, external_knowledge_id, embedding_model, embedding_model_provider, retrieval_model, summary_index_setting,
  };
}

/** DatasetUpdatePayload with `exclude_unset`: only keys present in the body are set. */
export interface UpdateInput {
  name?: string | null;
  description?: string | null;
  indexing_technique?: "high_quality" | "economy" | null;
  permission?: string | null;
  embedding_model?: string | null;
  embedding_model_provider?: string | null;
  retrieval_model?: RetrievalModelInput | null;
  partial_member_list?: Array<Record<string, string>> | null;
  external_retrieval_model?: { top_k: number | null; score_threshold: number | null; score_threshold_enabled: boolean | null } | null;
  external_knowledge_id?: string | null;
  external_knowledge_api_id?: string | null;
}

export function parseUpdate(body: Record<string, unknown>): UpdateInput {
  const v = new PyValidator();
  const out: UpdateInput = {};
  const nullable = <T>(k: string, read: (x: unknown) => T | undefined): T | null | undefined => {
    if (!has(body, k)) return undefined;
    if (body[k] === null) return null;
    return read(body[k]) ?? null;
  };
  const set = <K extends keyof UpdateInput>(k: K, val: UpdateInput[K] | undefined) => {
    if (val !== undefined) out[k] = val;
  };
  set("name", nullable("name", (x) => v.str(x, ["name"], { min: 1, max: 40 })));
  set("description", nullable("description", (x) => v.str(x, ["description"], { max: 400 })));
  set("indexing_technique", nullable("indexing_technique", (x) => v.choice(x, ["indexing_technique"], INDEXING_TECHNIQUES)));
  set("permission", nullable("permission", (x) => v.choice(x, ["permission"], PERMISSIONS, "enum")));
  set("embedding_model", nullable("embedding_model", (x) => v.str(x, ["embedding_model"])));
  set("embedding_model_provider", nullable("embedding_model_provider", (x) => v.str(x, ["embedding_model_provider"])));
  set("retrieval_model", nullable("retrieval_model", (x) => readRetrievalModel(v, x, ["retrieval_model"])));
  set("partial_member_list", nullable("partial_member_list", (x) => {
    const list = v.list(x, ["partial_member_list"]);
    if (!list) return undefined;
    const items: Array<Record<string, string>> = [];
    list.forEach((item, i) => {
      const o = v.obj(item, ["partial_member_list", i]);
      if (!o) return;
      const rec: Record<string, string> = {};
      for (const [k, val] of Object.entries(o)) {
        const s = v.str(val, ["partial_member_list", i, k]);
        if (s !== undefined) rec[k] = s;
      }
      items.push(rec);
    });
    return items;
  }));
  set("external_retrieval_model", nullable("external_retrieval_model", (x) => {
    const o = v.obj(x, ["external_retrieval_model"], "ExternalRetrievalModel");
    if (!o) return undefined;
    const l = ["external_retrieval_model"];
    return {
      top_k: has(o, "top_k") && o.top_k !== null ? (v.int(o.top_k, [...l, "top_k"]) ?? null) : null,
      score_threshold: has(o, "score_threshold") && o.score_threshold !== null ? (v.float(o.score_threshold, [...l, "score_threshold"]) ?? null) : null,
      score_threshold_enabled: has(o, "score_threshold_enabled") && o.score_threshold_enabled !== null ? (v.bool(o.score_threshold_enabled, [...l, "score_threshold_enabled"]) ?? null) : null,
    };
  }));
  set("external_knowledge_id", nullable("external_knowledge_id", (x) => v.str(x, ["external_knowledge_id"])));
  set("external_knowledge_api_id", nullable("external_knowledge_api_id", (x) => v.str(x, ["external_knowledge_api_id"])));
  if (!v.ok) throw v.toError();
  return out;
}

// ---- list query (§4.1): validated by pydantic inside the handler → 400 invalid_param ----------

export interface ListQuery {
  page: number;
  limit: number;
  keyword: string | null;
  include_all: boolean;
  tag_ids: string[];
}

const isUniqueViolation = (e: unknown) => (e as { code?: string })?.code === "P2002";

export function createDatasetService(deps: { prisma: PrismaClient; producer: Producer; catalog: ModelCatalog; logger: Logger }) {
  const { prisma, producer, catalog, logger } = deps;

  function checkEmbeddingModel(provider: string, model: string): void {
    if (!catalog.isAvailable(provider, model, "text-embedding")) throw Errors.invalidParam(NO_EMBEDDING_MODEL);
  }

  function checkRerankModel(rm: RetrievalModelInput | null | undefined): void {
    const r = rm?.reranking_model;
    if (r?.reranking_provider_name && r.reranking_model_name && !catalog.isAvailable(r.reranking_provider_name, r.reranking_model_name, "rerank")) {
      throw Errors.invalidParam(NO_RERANK_MODEL);
    }
  }

  /** "<model>:<provider>" among the active text-embedding models (§4.1, §4.3). */
  function embeddingListed(model: string | null, provider: string | null): boolean {
    return catalog.list("text-embedding").some((m) => m.model === model && m.provider === provider);
  }

  async function one(row: Dataset) {
    const extras = await loadDatasetExtras(prisma, [row]);
    return extras.get(row.id)!;
  }

  /** Re-embedding of every completed document (Dify's deal_dataset_vector_index_task "add" /
   * "update", §4.4 step 5), through the indexing queue's re-index action. */
  async function enqueueReindex(row: Dataset): Promise<void> {
    const docs = await prisma.document.findMany({
      where: { dataset_id: row.id, indexing_status: "completed", enabled: true, archived: false },
      select: { id: true },
    });
    for (const d of docs) await producer.enqueueDocumentIndexing({ tenantId: row.tenant_id, datasetId: row.id, documentId: d.id, action: "reindex" });
    if (docs.length) logger.info({ datasetId: row.id, documents: docs.length }, "dataset re-embedding queued");
  }

  return {
    /** GET /datasets (§4.1, §2.3). */
    async list(scope: DatasetScope, q: ListQuery) {
      const ownerId = workspaceOwnerId(scope.tenant_id);
      const effectiveLimit = Math.min(q.limit, 100);
      // flask-sqlalchemy paginate(error_out=False): page < 1 → 1, per_page < 1 → 20.
      const page = q.page < 1 ? 1 : q.page;
      const perPage = effectiveLimit < 1 ? 20 : effectiveLimit;
      const and: Prisma.DatasetWhereInput[] = [{ tenant_id: scope.tenant_id }];
      if (scope.id) and.push({ id: scope.id });
      if (!q.include_all) {
        and.push({
          OR: [
            { permission: "all_team_members" },
            { permission: "only_me", created_by: ownerId },
            { permission: "partial_members", partial_member_list: { has: ownerId } },
          ],
        });
      }
      // ILIKE %kw% with %, _ and \ taken literally (§4.1); Prisma passes `contains` through unescaped.
      if (q.keyword) and.push({ name: { contains: q.keyword.replace(/[\\%_]/g, (c) => `\\${c}`), mode: "insensitive" } });
      if (q.tag_ids.length) {
        // Newest Dify: a dataset must carry every listed tag (match_all); unknown tags match nothing.
        const wanted = [...new Set(q.tag_ids.map((t) => t.toLowerCase()))];
        const valid = wanted.every((t) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(t));
        const tags = valid ? await prisma.tag.findMany({ where: { id: { in: wanted }, tenant_id: scope.tenant_id, type: "knowledge" }, select: { id: true } }) : [];
        if (tags.length !== wanted.length) return { data: [], has_more: false, limit: effectiveLimit, total: 0, page: q.page };
        const bindings = await prisma.tagBinding.groupBy({
          by: ["target_id"],
          where: { tag_id: { in: wanted }, tenant_id: scope.tenant_id },
          _count: { _all: true },
        });
        const targets = bindings.filter((b) => b._count._all === wanted.length).map((b) => b.target_id);
        if (!targets.length) return { data: [], has_more: false, limit: effectiveLimit, total: 0, page: q.page };
        and.push({ id: { in: targets } });
      }
      const where: Prisma.DatasetWhereInput = { AND: and };
      const [total, rows] = await Promise.all([
        prisma.dataset.count({ where }),
        prisma.dataset.findMany({ where, orderBy: [{ created_at: "desc" }, { id: "asc" }], skip: (page - 1) * perPage, take: perPage }),
      ]);
      const extras = await loadDatasetExtras(prisma, rows);
      const active = new Set(catalog.list("text-embedding").map((m) => `${m.model}:${m.provider}`));
      const data = rows.map((r) => {
        // The list rewrites the provider to its plugin id and checks it against the active models.
        if (r.indexing_technique === "high_quality" && r.embedding_model_provider) {
          const provider = normaliseProvider(r.embedding_model_provider);
          return datasetObject(r, extras.get(r.id)!, { embeddingAvailable: active.has(`${r.embedding_model}:${provider}`), embeddingModelProvider: provider });
        }
        return datasetObject(r, extras.get(r.id)!, { embeddingAvailable: true });
      });
      return { data, has_more: q.page * effectiveLimit < total, limit: effectiveLimit, total, page: q.page };
    },

    /** GET /datasets/{id} (§4.3): no provider normalisation here, unlike the list. */
    async detail(row: Dataset) {
      const hq = row.indexing_technique === "high_quality";
      return datasetObject(row, await one(row), {
        embeddingAvailable: hq ? embeddingListed(row.embedding_model, row.embedding_model_provider) : true,
        forceKeywordSearch: !hq,
        ...(row.permission === "partial_members" ? { partialMemberList: row.partial_member_list } : {}),
      });
    },

    /** POST /datasets (§4.2). */
    async create(scope: DatasetScope, input: CreateInput, scopeKeyId?: string) {
      if (input.embedding_model_provider && input.embedding_model) checkEmbeddingModel(input.embedding_model_provider, input.embedding_model);
      checkRerankModel(input.retrieval_model);
      const existing = await prisma.dataset.findFirst({ where: { tenant_id: scope.tenant_id, name: input.name }, select: { id: true } });
      if (existing) throw Errors.datasetNameDuplicate();
      let embeddingModel: string | null = null;
      let embeddingProvider: string | null = null;
      if (input.indexing_technique === "high_quality") {
        if (input.embedding_model_provider && input.embedding_model) {
          embeddingModel = input.embedding_model;
          // Stored as the model manager returns it: the full plugin id (§4.2 step 5).
          embeddingProvider = normaliseProvider(input.embedding_model_provider);
        } else {
          const def = catalog.defaultModel("text-embedding");
          if (!def) throw Errors.invalidParam(NO_EMBEDDING_MODEL);
          embeddingModel = def.model;
          embeddingProvider = def.provider;
        }
      }
      // Servify has no external-knowledge API templates: any template id is unknown (§4.2 step 7).
      if (input.provider === "external" && input.external_knowledge_api_id) throw Errors.invalidParam("External API template not found.");
      const ownerId = workspaceOwnerId(scope.tenant_id);
      let row: Dataset;
      try {
        row = await prisma.dataset.create({
          data: {
            tenant_id: scope.tenant_id,
            name: input.name,
            description: input.description,
            provider: input.provider,
            permission: input.permission ?? "only_me",
            indexing_technique: input.indexing_technique,
            embedding_model: embeddingModel,
            embedding_model_provider: embeddingProvider,
            retrieval_model: (input.retrieval_model ?? undefined) as Prisma.InputJsonValue | undefined,
            summary_index_setting: (input.summary_index_setting ?? undefined) as Prisma.InputJsonValue | undefined,
            created_by: ownerId,
            updated_by: ownerId,
          },
        });
      } catch (e) {
        // Two concurrent creates with one name: the unique index decides (§4.2 step 4).
        if (isUniqueViolation(e)) throw Errors.datasetNameDuplicate();
        throw e;
      }
      if (scope.id && scopeKeyId) {
        // A key scoped to some datasets (#37257) would otherwise lose sight of what it just
        // created: the new dataset joins its scope.
        await prisma.apiToken.update({ where: { id: scopeKeyId }, data: { dataset_ids: { push: row.id } } });
      }
      return datasetObject(row, await one(row), { embeddingAvailable: null });
    },

    /** PATCH /datasets/{id} (§4.4). */
    async update(row: Dataset, input: UpdateInput) {
      const ownerId = workspaceOwnerId(row.tenant_id);
      if (input.indexing_technique === "high_quality" || input.embedding_model_provider) {
        if (input.embedding_model_provider && input.embedding_model) checkEmbeddingModel(input.embedding_model_provider, input.embedding_model);
      }
      checkRerankModel(input.retrieval_model);
      if (typeof input.name === "string") {
        const other = await prisma.dataset.findFirst({ where: { tenant_id: row.tenant_id, name: input.name, NOT: { id: row.id } }, select: { id: true } });
        if (other) throw Errors.invalidParam("Dataset name already exists");
      }
      const data: Prisma.DatasetUpdateInput = { updated_by: ownerId, updated_at: new Date() };
      let action: "remove" | "add" | "update" | null = null;
      if (row.provider === "external") {
        if (input.name) data.name = input.name;
        if (input.description !== undefined) data.description = input.description ?? "";
        if (input.permission) data.permission = input.permission;
        if (input.external_retrieval_model) data.retrieval_model = input.external_retrieval_model as Prisma.InputJsonValue;
        if (!input.external_knowledge_id) throw Errors.invalidParam("External knowledge id is required.");
        if (!input.external_knowledge_api_id) throw Errors.invalidParam("External knowledge api id is required.");
      } else {
        // Non-null keys are written, plus `description` even when null (§4.4 step 5).
        if (input.name) data.name = input.name;
        if (input.description !== undefined) data.description = input.description ?? "";
        if (input.permission) data.permission = input.permission;
        if (input.retrieval_model) data.retrieval_model = input.retrieval_model as unknown as Prisma.InputJsonValue;
        const target = input.indexing_technique;
        if (target && target !== row.indexing_technique) {
          data.indexing_technique = target;
          if (target === "economy") {
            action = "remove";
            data.embedding_model = null;
            data.embedding_model_provider = null;
          } else {
            action = "add";
            // Dify crashes (500) without both embedding keys here; Servify falls back to the
            // workspace default like create does (open question §16.2).
            if (input.embedding_model_provider && input.embedding_model) {
              data.embedding_model = input.embedding_model;
              data.embedding_model_provider = normaliseProvider(input.embedding_model_provider);
            } else {
              const def = catalog.defaultModel("text-embedding");
              if (!def) throw Errors.invalidParam(NO_EMBEDDING_MODEL);
              data.embedding_model = def.model;
              data.embedding_model_provider = def.provider;
            }
          }
        } else if (row.indexing_technique === "high_quality" && input.embedding_model_provider && input.embedding_model) {
          // Same technique, another model: switch and re-embed (providers compared normalised).
          const provider = normaliseProvider(input.embedding_model_provider);
          if (input.embedding_model !== row.embedding_model || provider !== normaliseProvider(row.embedding_model_provider)) {
            action = "update";
            data.embedding_model = input.embedding_model;
            data.embedding_model_provider = provider;
          }
        }
      }
      const permission = input.permission;
      if (permission === "partial_members" && input.partial_member_list && input.partial_member_list.length) {
        data.partial_member_list = input.partial_member_list.map((m) => m.user_id).filter((id): id is string => typeof id === "string");
      } else if (permission === "only_me" || permission === "all_team_members") {
        data.partial_member_list = [];
      }
      let updated: Dataset;
      try {
        updated = await prisma.$transaction(async (tx) => {
          // The vector index of a dataset is its embeddings rows (§4.4 step 5, action "remove").
          if (action === "remove" || action === "update") await tx.embedding.deleteMany({ where: { dataset_id: row.id } });
          return tx.dataset.update({ where: { id: row.id }, data });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw Errors.invalidParam("Dataset name already exists");
        throw e;
      }
      if (action === "add" || action === "update") await enqueueReindex(updated);
      return datasetObject(updated, await one(updated), { embeddingAvailable: null, partialMemberList: updated.partial_member_list });
    },

    /** DELETE /datasets/{id} (§4.5): immediate; rows without a foreign key are removed here,
     * the rest cascades (documents, segments, child chunks, process rules, metadata). */
    async remove(row: Dataset): Promise<void> {
      await prisma.$transaction(async (tx) => {
        await tx.tagBinding.deleteMany({ where: { target_id: row.id, tenant_id: row.tenant_id } });
        await tx.embedding.deleteMany({ where: { dataset_id: row.id } });
        await tx.datasetQuery.deleteMany({ where: { dataset_id: row.id } });
        await tx.appDatasetMapping.deleteMany({ where: { dataset_id: row.id } });
        await tx.dataset.delete({ where: { id: row.id } });
      });
    },
  };
}
export type DatasetService = ReturnType<typeof createDatasetService>;

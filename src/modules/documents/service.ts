// Documents of a dataset (datasets spec §5): create/update by text or file, list, detail, delete,
// indexing status, batch status actions and the uploaded-file info. Creation and updates commit
// their rows in one transaction and enqueue the `document-indexing` job only after the commit
// (§5.5, DESIGN §3), so the worker always finds what the job names.
import { randomInt } from "node:crypto";
import { z } from "zod";
import type { Config } from "../../config/index.js";
import type { Dataset, DatasetProcessRule, Document, Prisma, UploadFile } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import { newId } from "../../lib/ids.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient, Tx } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import type { Producer } from "../../queue/producer.js";
import type { Models } from "../models/index.js";
import { deleteDocumentIndex, type IndexDeps } from "../indexing/index-ops.js";
import { mimeFromName } from "../files/service.js";
import type { ModelCatalog } from "../models/catalog.js";
import { normaliseProvider } from "../models/index.js";
import { checkDatasetModel, checkRequestedEmbeddingModel, NO_EMBEDDING_MODEL } from "./model-check.js";
import { storedRules, validateProcessRule, type ValidatedProcessRule } from "./process-rule.js";
import {
  documentDetail,
  documentItem,
  documentStatusItem,
  floatTs,
  pyFloatTs,
  type DocMetadataItem,
} from "./serialize.js";
import { parseOrInvalid } from "./validate.js";

export const DOC_FORMS = ["text_model", "hierarchical_model", "qa_model"] as const;

/** Who acts: the key's tenant and its implicit workspace owner (datasets spec §2.1 step 4). */
export interface Actor {
  tenantId: string;
  ownerId: string;
  ownerName: string;
}

/** A file read from a multipart request, not yet stored. */
export interface IncomingFile {
  name: string;
  extension: string;
  mimeType: string;
  data: Buffer;
}

export interface DocumentDeps {
  prisma: PrismaClient;
  producer: Producer;
  models: Models;
  config: Config;
  logger: Logger;
  storage: Storage;
  /** The workspace default embedding model (the same catalogue the dataset routes use). */
  catalog: Pick<ModelCatalog, "defaultModel">;
  files: {
    save(input: {
      tenantId: string;
      appId: string | null;
      createdByRole: "end_user" | "account";
      createdBy: string | null;
      name: string;
      extension: string;
      mimeType: string;
      data: Buffer;
    }): Promise<UploadFile>;
    signedUrl(fileId: string): string;
  };
}

// ---- request models (pydantic in Dify; failures are 400 invalid_param, §5.1)

const retrievalModelSchema = z
  .object({
    search_method: z.enum(["semantic_search", "full_text_search", "hybrid_search", "keyword_search"]),
    reranking_enable: z.boolean(),
    reranking_model: z
      .object({ reranking_provider_name: z.string().nullish(), reranking_model_name: z.string().nullish() })
      .nullish(),
    reranking_mode: z.string().nullish(),
    top_k: z.number().int(),
    score_threshold_enabled: z.boolean(),
    score_threshold: z.number().nullish(),
    weights: z.record(z.string(), z.unknown()).nullish(),
    metadata_filtering_conditions: z.record(z.string(), z.unknown()).nullish(),
  });

const knowledgeFields = {
  indexing_technique: z.enum(["high_quality", "economy"]).nullish(),
  doc_form: z
    .string()
    .nullish()
    .refine((v) => v === null || v === undefined || (DOC_FORMS as readonly string[]).includes(v), "Value error, Invalid doc_form."),
  doc_language: z.string().nullish(),
  process_rule: z.unknown().optional(),
  retrieval_model: retrievalModelSchema.nullish(),
  embedding_model: z.string().nullish(),
  embedding_model_provider: z.string().nullish(),
  original_document_id: z.string().nullish(),
};

const createByTextSchema = z.object({ name: z.string(), text: z.string(), ...knowledgeFields });
const fileDataSchema = z.object({ ...knowledgeFields, name: z.string().nullish(), duplicate: z.boolean().nullish() });
const updateByTextSchema = z
  .object({
    name: z.string().nullish(),
    text: z.string().nullish(),
    process_rule: z.unknown().optional(),
    doc_form: knowledgeFields.doc_form,
    doc_language: z.string().nullish(),
    retrieval_model: retrievalModelSchema.nullish(),
  })
  .superRefine((v, ctx) => {
    if (v.text !== null && v.text !== undefined && !v.name) {
      ctx.addIssue({ code: "custom", message: "Value error, name is required when text is provided", path: [] });
    }
  });

type KnowledgeInput = z.infer<typeof fileDataSchema>;

/** Dify's batch id: `%Y%m%d%H%M%S` (UTC in Docker) + a random 6-digit integer (§5.5). */
export function newBatch(now = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${stamp}${randomInt(100000, 1000000)}`;
}

/** Python `len()` of a string: code points, not UTF-16 units (§11.4). */
export const pyLen = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

const pySlice = (s: string, end: number): string => Array.from(s).slice(0, end).join("");

const utcStamp = (d: Date) => d.toISOString().slice(0, 19).replace("T", " ");

const SOURCE_NAMES: Record<string, string> = { upload_file: "file_upload", notion_import: "notion", website_crawl: "website" };

/** Documents' view of the dataset's doc form (§3.1 `doc_form`, §5.1 lock). */
async function datasetDocForm(db: PrismaClient | Tx, dataset: Pick<Dataset, "id" | "chunk_structure" | "doc_form">): Promise<string | null> {
  if (dataset.chunk_structure) return dataset.chunk_structure;
  if (dataset.doc_form) return dataset.doc_form;
  const first = await db.document.findFirst({ where: { dataset_id: dataset.id }, orderBy: { position: "asc" }, select: { doc_form: true } });
  return first?.doc_form ?? null;
}

export function createDocumentService(deps: DocumentDeps) {
  const { prisma, producer, models, config, logger, files, catalog } = deps;

  /** §5.5: a first high_quality document without a model takes the workspace default. */
  function defaultEmbedding(): { provider: string; name: string } {
    const def = catalog.defaultModel("text-embedding");
    if (!def) throw Errors.providerNotInitialize(NO_EMBEDDING_MODEL);
    return { provider: def.provider, name: def.model };
  }
  const indexDeps: IndexDeps = { prisma, models, config, logger };

  // ---- shared helpers

  async function extrasFor(dataset: Dataset, docs: Document[], actor: Pick<Actor, "ownerName">) {
    const ids = docs.map((d) => d.id);
    const fileIds = docs.map((d) => d.upload_file_id).filter((x): x is string => !!x);
    const [filesRows, hits, bindings] = await Promise.all([
      fileIds.length ? prisma.uploadFile.findMany({ where: { id: { in: fileIds } } }) : Promise.resolve([] as UploadFile[]),
      ids.length
        ? prisma.documentSegment.groupBy({ by: ["document_id"], where: { document_id: { in: ids } }, _sum: { hit_count: true } })
        : Promise.resolve([]),
      ids.length
        ? prisma.datasetMetadataBinding.findMany({ where: { document_id: { in: ids } }, include: { metadata: true }, orderBy: { created_at: "asc" } })
        : Promise.resolve([]),
    ]);
    const fileById = new Map(filesRows.map((f) => [f.id, f]));
    const hitByDoc = new Map(hits.map((h) => [h.document_id, h._sum.hit_count ?? 0]));
    return (d: Document) => {
      const values = (d.doc_metadata && typeof d.doc_metadata === "object" && !Array.isArray(d.doc_metadata) ? d.doc_metadata : {}) as Record<string, unknown>;
      const meta: DocMetadataItem[] = bindings
        .filter((b) => b.document_id === d.id)
        .map((b) => ({ id: b.metadata.id, name: b.metadata.name, type: b.metadata.type, value: values[b.metadata.name] ?? null }));
      if (dataset.built_in_field_enabled) {
        meta.push(
          { id: "built-in", name: "document_name", type: "string", value: d.name },
          { id: "built-in", name: "uploader", type: "string", value: actor.ownerName },
          { id: "built-in", name: "upload_date", type: "time", value: pyFloatTs(d.created_at) },
          { id: "built-in", name: "last_update_date", type: "time", value: pyFloatTs(d.updated_at) },
          { id: "built-in", name: "source", type: "string", value: SOURCE_NAMES[d.data_source_type] ?? d.data_source_type },
        );
      }
      return {
        uploadFile: d.upload_file_id ? (fileById.get(d.upload_file_id) ?? null) : null,
        hitCount: hitByDoc.get(d.id) ?? 0,
        docMetadata: meta,
      };
    };
  }

  async function render(dataset: Dataset, doc: Document, actor: Actor) {
    const extras = await extrasFor(dataset, [doc], actor);
    return documentItem(doc, extras(doc));
  }

  async function enqueue(actor: Actor, datasetId: string, documentId: string) {
    await producer.enqueueDocumentIndexing({ tenantId: actor.tenantId, datasetId, documentId, action: "index" });
  }

  function validateRule(raw: unknown, model: string): ValidatedProcessRule | null {
    if (raw === undefined || raw === null) return null;
    return validateProcessRule(raw, model);
  }

  function checkDocForm(current: string | null, requested: string) {
    if (current && current !== requested) throw Errors.invalidParam("doc_form is different from the dataset doc_form.");
  }

  async function latestRule(datasetId: string, db: PrismaClient | Tx = prisma): Promise<DatasetProcessRule | null> {
    return db.datasetProcessRule.findFirst({ where: { dataset_id: datasetId }, orderBy: { created_at: "desc" } });
  }

  function createRule(tx: Tx, datasetId: string, rule: ValidatedProcessRule, actor: Actor) {
    return tx.datasetProcessRule.create({
      data: { dataset_id: datasetId, mode: rule.mode, rules: storedRules(rule) as Prisma.InputJsonValue, created_by: actor.ownerId },
    });
  }

  /** Create (or reuse by name, §5.5) one upload_file document; the caller already validated. */
  async function createDocument(
    dataset: Dataset,
    actor: Actor,
    args: {
      technique: "high_quality" | "economy";
      cfg: KnowledgeInput;
      docForm: string;
      rule: ValidatedProcessRule | null;
      upload: UploadFile;
      name: string;
      createdBy: string | null;
      duplicate: boolean;
    },
  ) {
    const batch = newBatch();
    const { doc, reused } = await prisma.$transaction(async (tx) => {
      // Serialises position numbering and the first-document rules per dataset.
      await tx.$queryRaw`SELECT id FROM datasets WHERE id = ${dataset.id}::uuid FOR UPDATE`;
      const ds = await tx.dataset.findUniqueOrThrow({ where: { id: dataset.id } });
      checkDocForm(await datasetDocForm(tx, ds), args.docForm);

      // First-document rules (§5.5): the dataset takes this request's technique and model.
      const dsUpdate: Prisma.DatasetUpdateInput = {};
      if (!ds.indexing_technique) {
        dsUpdate.indexing_technique = args.technique;
        if (args.technique === "high_quality") {
          if (!ds.embedding_model) {
            const given = args.cfg.embedding_model && args.cfg.embedding_model_provider;
            const m = given ? { provider: normaliseProvider(args.cfg.embedding_model_provider!), name: args.cfg.embedding_model! } : defaultEmbedding();
            dsUpdate.embedding_model = m.name;
            dsUpdate.embedding_model_provider = m.provider;
          }
          if (ds.retrieval_model === null) {
            dsUpdate.retrieval_model = (args.cfg.retrieval_model ?? {
              search_method: "semantic_search",
              reranking_enable: false,
              reranking_model: { reranking_provider_name: "", reranking_model_name: "" },
              top_k: 4,
              score_threshold_enabled: false,
            }) as Prisma.InputJsonValue;
          }
        }
      }
      if (!ds.data_source_type) dsUpdate.data_source_type = "upload_file";
      if (!ds.doc_form && !ds.chunk_structure) dsUpdate.doc_form = args.docForm;
      if (Object.keys(dsUpdate).length) await tx.dataset.update({ where: { id: ds.id }, data: dsUpdate });

      // Which rule (§5.2): the request's (new row) → the dataset's latest → a new automatic rule.
      let ruleId: string;
      if (args.rule) ruleId = (await createRule(tx, ds.id, args.rule, actor)).id;
      else {
        const latest = await latestRule(ds.id, tx);
        ruleId = latest ? latest.id : (await createRule(tx, ds.id, { mode: "automatic", rules: null }, actor)).id;
      }

      const now = new Date();
      const docLanguage = args.cfg.doc_language ?? "English";
      const sourceInfo = { upload_file_id: args.upload.id };
      if (args.duplicate) {
        const existing = await tx.document.findFirst({
          where: { dataset_id: ds.id, data_source_type: "upload_file", enabled: true, name: args.name },
          orderBy: { position: "asc" },
        });
        if (existing) {
          // Duplicate-name reuse: same row, new file/rule/batch, re-indexed from scratch.
          const doc = await tx.document.update({
            where: { id: existing.id },
            data: {
              data_source_info: sourceInfo,
              upload_file_id: args.upload.id,
              dataset_process_rule_id: ruleId,
              doc_form: args.docForm,
              doc_language: docLanguage,
              created_from: "api",
              batch,
              indexing_status: "waiting",
              updated_at: now,
            },
          });
          return { doc, reused: true };
        }
      }
      const max = await tx.document.aggregate({ where: { dataset_id: ds.id }, _max: { position: true } });
      const summary = ds.summary_index_setting as { enable?: unknown } | null;
      const docMetadata = ds.built_in_field_enabled
        ? {
            document_name: args.name,
            uploader: actor.ownerName,
            upload_date: utcStamp(now),
            last_update_date: utcStamp(now),
            source: "file_upload",
          }
        : undefined;
      const doc = await tx.document.create({
        data: {
          id: newId(),
          tenant_id: actor.tenantId,
          dataset_id: ds.id,
          position: (max._max.position ?? 0) + 1,
          data_source_type: "upload_file",
          data_source_info: sourceInfo,
          dataset_process_rule_id: ruleId,
          batch,
          name: args.name,
          created_from: "api",
          created_by: args.createdBy,
          upload_file_id: args.upload.id,
          indexing_status: "waiting",
          doc_form: args.docForm,
          doc_language: docLanguage,
          need_summary: summary?.enable === true,
          ...(docMetadata ? { doc_metadata: docMetadata } : {}),
          created_at: now,
          updated_at: now,
        },
      });
      return { doc, reused: false };
    });
    await enqueue(actor, dataset.id, doc.id);
    logger.info({ datasetId: dataset.id, documentId: doc.id, batch, reused }, "document queued for indexing");
    const fresh = await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.id } });
    return { document: await render(fresh, doc, actor), batch };
  }

  /** §5.6 common behaviour. `content` is saved lazily, after every check passed. */
  async function updateDocument(
    dataset: Dataset,
    actor: Actor,
    documentId: string,
    args: { cfg: { process_rule?: unknown; doc_form: string; doc_language?: string | null; name?: string | null }; content: (() => Promise<UploadFile>) | null; model: string },
  ) {
    if (!dataset.indexing_technique) {
      throw Errors.invalidParam(`1 validation error for ${args.model}\nindexing_technique\n  Input should be 'high_quality' or 'economy'`);
    }
    const rule = validateRule(args.cfg.process_rule, args.model);
    if (!args.content && !rule) throw Errors.invalidParam("Data source or Process rule is required");
    checkDocForm(await datasetDocForm(prisma, dataset), args.cfg.doc_form);
    checkDatasetModel(models, dataset);
    const existing = await prisma.document.findFirst({ where: { id: documentId, dataset_id: dataset.id } });
    if (!existing) throw Errors.notFound("Document not found");
    if (existing.indexing_status !== "completed" || !existing.enabled || existing.archived || existing.is_paused) {
      throw Errors.invalidParam("Document is not available");
    }
    const upload = args.content ? await args.content() : null;
    const doc = await prisma.$transaction(async (tx) => {
      const data: Prisma.DocumentUpdateInput = {
        indexing_status: "waiting",
        completed_at: null,
        processing_started_at: null,
        parsing_completed_at: null,
        cleaning_completed_at: null,
        splitting_completed_at: null,
        updated_at: new Date(),
        created_from: "api",
        doc_form: args.cfg.doc_form,
      };
      if (args.cfg.doc_language) data.doc_language = args.cfg.doc_language;
      if (rule) data.dataset_process_rule_id = (await createRule(tx, dataset.id, rule, actor)).id;
      if (upload) {
        data.upload_file_id = upload.id;
        data.data_source_type = "upload_file";
        data.data_source_info = { upload_file_id: upload.id };
        data.name = upload.name;
      }
      if (args.cfg.name) data.name = args.cfg.name;
      const updated = await tx.document.update({ where: { id: existing.id }, data });
      await tx.documentSegment.updateMany({ where: { document_id: existing.id }, data: { status: "re_segment" } });
      return updated;
    });
    await enqueue(actor, dataset.id, doc.id);
    logger.info({ datasetId: dataset.id, documentId: doc.id }, "document queued for re-indexing");
    // The document's ORIGINAL batch: polling indexing-status with it keeps working (§5.6).
    return { document: await render(dataset, doc, actor), batch: doc.batch };
  }

  /** Technique + requested-model checks shared by both create endpoints (§5.3 steps 2–3, §5.4 steps 3–4). */
  function creationTechnique(dataset: Dataset, cfg: KnowledgeInput, raw: Record<string, unknown>) {
    // Open question §16.1: omitting indexing_technique inherits the dataset's (documented behaviour).
    const technique = cfg.indexing_technique ?? (dataset.indexing_technique as "high_quality" | "economy" | null);
    if (!technique) throw Errors.invalidParam("indexing_technique is required.");
    if ("embedding_model_provider" in raw && raw.embedding_model_provider !== null && !cfg.embedding_model) {
      throw Errors.invalidParam("embedding_model is required when embedding_model_provider is provided.");
    }
    if (cfg.embedding_model && cfg.embedding_model_provider) {
      checkRequestedEmbeddingModel(models, cfg.embedding_model_provider, cfg.embedding_model);
    } else if (technique === "high_quality" && !dataset.indexing_technique && !dataset.embedding_model) {
      const def = defaultEmbedding();
      checkRequestedEmbeddingModel(models, def.provider, def.name);
    }
    return technique;
  }

  async function documentOr404(dataset: Dataset, documentId: string, message: string) {
    const doc = await prisma.document.findFirst({ where: { id: documentId.toLowerCase(), dataset_id: dataset.id } });
    if (!doc) throw Errors.notFound(message);
    return doc;
  }

  return {
    // ---- §5.3
    async createByText(dataset: Dataset, actor: Actor, body: Record<string, unknown>) {
      const cfg = parseOrInvalid(createByTextSchema, body, "DocumentTextCreatePayload");
      if (cfg.original_document_id) {
        // §5.1: with original_document_id the create call is an update of that document.
        return this.updateByText(dataset, actor, cfg.original_document_id, body);
      }
      const technique = creationTechnique(dataset, cfg, body);
      const rule = validateRule(cfg.process_rule, "KnowledgeConfig");
      const docForm = cfg.doc_form ?? "text_model";
      checkDocForm(await datasetDocForm(prisma, dataset), docForm);
      const name = pySlice(cfg.name, 200);
      const upload = await files.save({
        tenantId: actor.tenantId, appId: null, createdByRole: "account", createdBy: actor.ownerId,
        name, extension: "txt", mimeType: "text/plain", data: Buffer.from(cfg.text, "utf8"),
      });
      // Dify records a text upload's size as its character count (FileService.upload_text).
      const sized = await prisma.uploadFile.update({ where: { id: upload.id }, data: { size: pyLen(cfg.text) } });
      return createDocument(dataset, actor, {
        technique, cfg, docForm, rule, upload: sized, name, createdBy: actor.ownerId, duplicate: true,
      });
    },

    // ---- §5.4 (file already read from the multipart body; `checkFile` validates it)
    async createByFile(
      dataset: Dataset,
      actor: Actor,
      input: { dataRaw: string | null; file: IncomingFile | null; fileParts: number; tooLarge: boolean; checkFile: (f: IncomingFile) => { name: string; extension: string } },
    ) {
      if (dataset.provider === "external") throw Errors.invalidParam("External datasets are not supported.");
      const raw = parseDataField(input.dataRaw);
      const cfg = parseOrInvalid(fileDataSchema, raw, "KnowledgeConfig");
      const technique = creationTechnique(dataset, cfg, raw);
      if (!input.file || input.fileParts === 0) throw Errors.noFileUploaded();
      if (input.fileParts > 1) throw Errors.tooManyFiles();
      const { name, extension } = input.checkFile(input.file);
      if (!DOCUMENT_UPLOAD_EXTENSIONS.includes(extension)) throw Errors.invalidParam("");
      if (input.tooLarge) {
        throw Errors.invalidParam(`File size exceeded. ${input.file.data.length} > ${config.UPLOAD_FILE_SIZE_LIMIT * 1024 * 1024}`);
      }
      const rule = validateRule(cfg.process_rule, "KnowledgeConfig");
      if (!rule && !(await latestRule(dataset.id))) throw Errors.invalidParam("process_rule is required.");
      if (cfg.original_document_id) {
        return this.updateByFile(dataset, actor, cfg.original_document_id, input);
      }
      const docForm = cfg.doc_form ?? dataset.chunk_structure ?? "text_model";
      checkDocForm(await datasetDocForm(prisma, dataset), docForm);
      const upload = await files.save({
        tenantId: actor.tenantId, appId: null, createdByRole: "account", createdBy: actor.ownerId,
        name, extension, mimeType: mimeOf(input.file, extension), data: input.file.data,
      });
      return createDocument(dataset, actor, {
        technique, cfg, docForm, rule, upload, name,
        // §5.4 step 8: file documents are created by the dataset's creator.
        createdBy: dataset.created_by ?? actor.ownerId,
        duplicate: cfg.duplicate ?? true,
      });
    },

    // ---- §5.6
    async updateByText(dataset: Dataset, actor: Actor, documentId: string, body: Record<string, unknown>) {
      const cfg = parseOrInvalid(updateByTextSchema, body, "DocumentTextUpdate");
      const content =
        cfg.text !== null && cfg.text !== undefined
          ? async () => {
              const text = cfg.text!;
              const up = await files.save({
                tenantId: actor.tenantId, appId: null, createdByRole: "account", createdBy: actor.ownerId,
                name: pySlice(cfg.name!, 200), extension: "txt", mimeType: "text/plain", data: Buffer.from(text, "utf8"),
              });
              return prisma.uploadFile.update({ where: { id: up.id }, data: { size: pyLen(text) } });
            }
          : null;
      return updateDocument(dataset, actor, documentId.toLowerCase(), {
        cfg: { process_rule: cfg.process_rule, doc_form: cfg.doc_form ?? "text_model", doc_language: cfg.doc_language, name: cfg.name },
        content,
        model: "KnowledgeConfig",
      });
    },

    async updateByFile(
      dataset: Dataset,
      actor: Actor,
      documentId: string,
      input: { dataRaw: string | null; file: IncomingFile | null; fileParts: number; tooLarge: boolean; checkFile: (f: IncomingFile) => { name: string; extension: string } },
    ) {
      if (dataset.provider === "external") throw Errors.invalidParam("External datasets are not supported.");
      const raw = parseDataField(input.dataRaw);
      const cfg = parseOrInvalid(fileDataSchema, raw, "KnowledgeConfig");
      let content: (() => Promise<UploadFile>) | null = null;
      if (input.fileParts > 1) throw Errors.tooManyFiles();
      if (input.file) {
        const file = input.file;
        const { name, extension } = input.checkFile(file);
        // Update-by-file kept the older 413/415 mapping (§5.6, §14).
        if (input.tooLarge) throw Errors.fileTooLarge("File size exceeded. {message}");
        if (!DOCUMENT_UPLOAD_EXTENSIONS.includes(extension)) throw Errors.unsupportedFileType();
        content = () =>
          files.save({
            tenantId: actor.tenantId, appId: null, createdByRole: "account", createdBy: actor.ownerId,
            name, extension, mimeType: mimeOf(file, extension), data: file.data,
          });
      }
      return updateDocument(dataset, actor, documentId.toLowerCase(), {
        cfg: {
          process_rule: cfg.process_rule,
          doc_form: cfg.doc_form ?? dataset.chunk_structure ?? "text_model",
          doc_language: cfg.doc_language,
          name: input.file ? null : cfg.name,
        },
        content,
        model: "KnowledgeConfig",
      });
    },

    // ---- §5.9
    async list(dataset: Dataset, actor: Actor, q: { page?: string; limit?: string; keyword?: string; status?: string }) {
      // Dify reads these with `type=int` and falls back to the defaults on garbage.
      const page = intOr(q.page, 1);
      const limit = intOr(q.limit, 20);
      const applied = limit <= 0 ? 20 : Math.min(limit, 100);
      const where: Prisma.DocumentWhereInput = { dataset_id: dataset.id };
      if (q.keyword) where.name = { contains: q.keyword };
      const statusWhere = statusFilter(q.status);
      if (statusWhere) Object.assign(where, statusWhere);
      const [total, rows] = await Promise.all([
        prisma.document.count({ where }),
        prisma.document.findMany({
          where,
          orderBy: [{ created_at: "desc" }, { position: "desc" }],
          skip: (Math.max(page, 1) - 1) * applied,
          take: applied,
        }),
      ]);
      const extras = await extrasFor(dataset, rows, actor);
      const data = rows.map((d) => documentItem(d, extras(d)));
      // §1.4: has_more compares with the REQUESTED limit, which is also what is echoed.
      return { data, has_more: data.length === limit, limit, total, page };
    },

    // ---- §5.7
    async detail(dataset: Dataset, actor: Actor, documentId: string, metadata: string | undefined) {
      const m = metadata ?? "all";
      if (m !== "all" && m !== "only" && m !== "without") throw Errors.invalidMetadata(m);
      const doc = await documentOr404(dataset, documentId, "Document not found.");
      const [extras, datasetRule, documentRule, segmentCount] = await Promise.all([
        extrasFor(dataset, [doc], actor),
        latestRule(dataset.id),
        doc.dataset_process_rule_id ? prisma.datasetProcessRule.findUnique({ where: { id: doc.dataset_process_rule_id } }) : Promise.resolve(null),
        prisma.documentSegment.count({ where: { document_id: doc.id } }),
      ]);
      return documentDetail(doc, { ...extras(doc), datasetRule, documentRule, segmentCount }, m);
    },

    // ---- §5.8
    async remove(dataset: Dataset, documentId: string) {
      const doc = await documentOr404(dataset, documentId, "Document Not Exists.");
      if (doc.archived) throw Errors.archivedDocumentImmutable();
      // Index entries first: the index module may need the rows to find them.
      await deleteDocumentIndex(indexDeps, { documentId: doc.id });
      await prisma.$transaction([
        prisma.datasetMetadataBinding.deleteMany({ where: { document_id: doc.id } }),
        prisma.document.delete({ where: { id: doc.id } }),
      ]);
      if (doc.upload_file_id) {
        // Dify's clean_document_task also removes the uploaded file; best effort.
        const file = await prisma.uploadFile.findUnique({ where: { id: doc.upload_file_id } });
        if (file) {
          await prisma.uploadFile.delete({ where: { id: file.id } }).catch(() => undefined);
          try {
            await deps.storage.delete(file.key);
          } catch (e) {
            logger.warn({ err: e, key: file.key }, "could not delete a deleted document's file");
          }
        }
      }
    },

    // ---- §5.11
    async indexingStatus(dataset: Dataset, batch: string) {
      const docs = await prisma.document.findMany({ where: { dataset_id: dataset.id, batch }, orderBy: { position: "asc" } });
      if (!docs.length) throw Errors.notFound("Documents not found.");
      const ids = docs.map((d) => d.id);
      const [completed, total] = await Promise.all([
        prisma.documentSegment.groupBy({
          by: ["document_id"],
          where: { document_id: { in: ids }, completed_at: { not: null }, status: { not: "re_segment" } },
          _count: { _all: true },
        }),
        prisma.documentSegment.groupBy({ by: ["document_id"], where: { document_id: { in: ids }, status: { not: "re_segment" } }, _count: { _all: true } }),
      ]);
      const c = new Map(completed.map((r) => [r.document_id, r._count._all]));
      const t = new Map(total.map((r) => [r.document_id, r._count._all]));
      return { data: docs.map((d) => documentStatusItem(d, c.get(d.id) ?? 0, t.get(d.id) ?? 0)) };
    },

    // ---- §5.12
    async batchStatus(dataset: Dataset, actor: Actor, action: string, body: Record<string, unknown>) {
      checkDatasetModel(models, dataset);
      const rawIds = body.document_ids;
      const ids = Array.isArray(rawIds) ? rawIds.filter((x): x is string => typeof x === "string") : [];
      if (!ids.length) return { result: "success" };
      if (!["enable", "disable", "archive", "un_archive"].includes(action)) {
        throw Errors.invalidAction(`Invalid action: ${action}. Must be one of ['enable', 'disable', 'archive', 'un_archive']`);
      }
      const valid = ids.filter((id) => /^[0-9a-f-]{36}$/i.test(id)).map((id) => id.toLowerCase());
      const docs = valid.length ? await prisma.document.findMany({ where: { dataset_id: dataset.id, id: { in: valid } } }) : [];
      // All ids are checked before anything changes (all-or-nothing).
      if (action === "disable") {
        for (const d of docs) {
          if (d.enabled && (d.indexing_status !== "completed" || !d.completed_at)) throw Errors.invalidAction(`Document: ${d.name} is not completed.`);
        }
      }
      const now = new Date();
      await prisma.$transaction(async (tx) => {
        for (const d of docs) {
          // Retrieval filters disabled/archived rows at query time, so these only flip flags and
          // apply Dify's segment side effects (§11.9) — no index work.
          if (action === "enable" && !d.enabled) {
            await tx.document.update({ where: { id: d.id }, data: { enabled: true, disabled_at: null, disabled_by: null, updated_at: now } });
            await tx.documentSegment.updateMany({ where: { document_id: d.id }, data: { enabled: true, disabled_at: null, disabled_by: null } });
          } else if (action === "disable" && d.enabled) {
            await tx.document.update({ where: { id: d.id }, data: { enabled: false, disabled_at: now, disabled_by: actor.ownerId, updated_at: now } });
            await tx.documentSegment.updateMany({ where: { document_id: d.id }, data: { enabled: false, disabled_at: now, disabled_by: actor.ownerId } });
          } else if (action === "archive" && !d.archived) {
            await tx.document.update({ where: { id: d.id }, data: { archived: true, archived_at: now, archived_by: actor.ownerId, updated_at: now } });
            if (d.enabled) {
              await tx.documentSegment.updateMany({ where: { document_id: d.id }, data: { enabled: false, disabled_at: now, disabled_by: actor.ownerId } });
            }
          } else if (action === "un_archive" && d.archived) {
            await tx.document.update({ where: { id: d.id }, data: { archived: false, archived_at: null, archived_by: null, archived_reason: null, updated_at: now } });
            if (d.enabled) {
              await tx.documentSegment.updateMany({ where: { document_id: d.id }, data: { enabled: true, disabled_at: null, disabled_by: null } });
            }
          }
        }
      });
      return { result: "success" };
    },

    // ---- §5.10
    async uploadFileInfo(dataset: Dataset, documentId: string) {
      const doc = await documentOr404(dataset, documentId, "Document not found.");
      if (doc.data_source_type !== "upload_file") {
        throw Errors.invalidParam(`Document data source type (${doc.data_source_type}) is not upload_file.`);
      }
      const info = (doc.data_source_info ?? {}) as Record<string, unknown>;
      const fileId = typeof info.upload_file_id === "string" ? info.upload_file_id : doc.upload_file_id;
      if (!fileId) throw Errors.invalidParam("Upload file id not found in document data source info.");
      const file = await prisma.uploadFile.findFirst({ where: { id: fileId, tenant_id: dataset.tenant_id } });
      if (!file) throw Errors.notFound("UploadFile not found.");
      const url = files.signedUrl(file.id);
      return {
        id: file.id,
        name: file.name,
        size: file.size,
        extension: file.extension,
        url,
        download_url: `${url}&as_attachment=true`,
        mime_type: file.mime_type,
        created_by: file.created_by,
        created_at: floatTs(file.created_at),
      };
    },
  };
}
export type DocumentService = ReturnType<typeof createDocumentService>;

/** The part's type, or the name's when the client sent a generic one (as POST /files/upload). */
function mimeOf(f: IncomingFile, extension: string): string {
  const declared = f.mimeType.trim().toLowerCase();
  const fromName = mimeFromName(extension);
  const generic = declared === "" || declared === "application/octet-stream" || (declared === "text/plain" && fromName !== "application/octet-stream");
  return generic ? fromName : declared;
}

/** Dify's default document whitelist (ETL_TYPE=dify), §5.4 step 6. */
export const DOCUMENT_UPLOAD_EXTENSIONS = ["txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "docx", "csv", "vtt", "properties"];

/** The `data` form field: a JSON object string (§5.4 step 2). */
function parseDataField(raw: string | null): Record<string, unknown> {
  if (raw === null || raw === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    // Python's json.loads message for the common case.
    throw Errors.invalidParam("Expecting value: line 1 column 1 (char 0)");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw Errors.invalidParam("data must be a JSON object.");
  return v as Record<string, unknown>;
}

function intOr(v: string | undefined, def: number): number {
  if (v === undefined || !/^\s*[+-]?\d+\s*$/.test(v)) return def;
  return Number.parseInt(v, 10);
}

/** §5.9 display-status filters; unknown values mean no filter. */
function statusFilter(raw: string | undefined): Prisma.DocumentWhereInput | null {
  if (!raw) return null;
  let s = raw.toLowerCase();
  if (s === "active" || s === "enabled") s = "available";
  const running = { in: ["parsing", "cleaning", "splitting", "indexing"] };
  switch (s) {
    case "queuing":
      return { indexing_status: "waiting" };
    case "indexing":
      return { indexing_status: running, is_paused: false };
    case "paused":
      return { indexing_status: running, is_paused: true };
    case "error":
      return { indexing_status: "error" };
    case "available":
      return { indexing_status: "completed", archived: false, enabled: true };
    case "disabled":
      return { indexing_status: "completed", archived: false, enabled: false };
    case "archived":
      return { indexing_status: "completed", archived: true };
    default:
      return null;
  }
}

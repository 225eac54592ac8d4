// Dataset metadata fields, built-in fields and document metadata values (datasets spec §9, §3.9).
// Values live in `documents.doc_metadata` keyed by field *name*; bindings tie field ids to
// documents (counts, filters). Operations on one dataset / one document are serialised with
// Dify's Redis locks, which fail fast with Dify's messages instead of waiting.
import type { Dataset, Prisma } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import { isUuid } from "../../lib/ids.js";
import type { PrismaClient, Tx } from "../../lib/prisma.js";
import type { Redis } from "../../lib/redis.js";
import { workspaceOwnerId } from "../tenants/owner.js";
import { BUILT_IN_FIELDS, BUILT_IN_NAMES } from "./serialize.js";

const LOCK_TTL_S = 3600;
const DATASET_LOCKED = "Another knowledge base metadata operation is running, please wait a moment.";
const DOCUMENT_LOCKED = "Another document metadata operation is running, please wait a moment.";

/** Dify's MetadataDataSource: documents.data_source_type → built-in `source` value. */
const SOURCE_NAMES: Record<string, string> = { upload_file: "file_upload", notion_import: "notion", website_crawl: "website" };

type DocMeta = Record<string, unknown>;
const asDict = (v: unknown): DocMeta => (v !== null && typeof v === "object" && !Array.isArray(v) ? { ...(v as DocMeta) } : {});

export interface MetadataValueInput {
  id: string;
  name: string;
  value: string | number | null;
}
export interface DocumentMetadataOperation {
  document_id: string;
  metadata_list: MetadataValueInput[];
  partial_update: boolean;
}

export function createMetadataService(deps: { prisma: PrismaClient; redis: Redis; lockPrefix: string }) {
  const { prisma, redis, lockPrefix } = deps;

  /** SET NX: Dify's get-then-set lock, made atomic. Released by the caller in `finally`. */
  async function lock(key: string, message: string): Promise<string> {
    const k = `${lockPrefix}:${key}`;
    const ok = await redis.set(k, "1", "EX", LOCK_TTL_S, "NX");
    if (ok !== "OK") throw Errors.invalidParam(message);
    return k;
  }
  const unlock = (k: string) => redis.del(k).then(() => undefined);

  /** The five built-in values of a document (§9 semantics): floats for the two dates. */
  function builtIns(doc: { name: string; created_at: Date; updated_at: Date; data_source_type: string }, uploader: string | null): DocMeta {
    return {
      document_name: doc.name,
      uploader,
      upload_date: doc.created_at.getTime() / 1000,
      last_update_date: doc.updated_at.getTime() / 1000,
      source: SOURCE_NAMES[doc.data_source_type] ?? doc.data_source_type,
    };
  }

  async function ownerName(tenantId: string): Promise<string | null> {
    const t = await prisma.tenant.findUnique({ where: { id: tenantId }, select: { name: true } });
    return t?.name ?? null;
  }

  function checkName(name: string) {
    if ([...name].length > 255) throw Errors.invalidParam("Metadata name cannot exceed 255 characters.");
  }

  async function checkUnique(datasetId: string, name: string) {
    const dup = await prisma.datasetMetadata.findFirst({ where: { dataset_id: datasetId, name }, select: { id: true } });
    if (dup) throw Errors.invalidParam("Metadata name already exists.");
    if (BUILT_IN_NAMES.has(name)) throw Errors.invalidParam("Metadata name already exists in Built-in fields.");
  }

  /** Working documents: completed, enabled, not archived (Dify's get_working_documents_by_dataset_id). */
  const working = (tx: Tx, datasetId: string) =>
    tx.document.findMany({ where: { dataset_id: datasetId, indexing_status: "completed", enabled: true, archived: false } });

  return {
    builtInFields: () => BUILT_IN_FIELDS.map((f) => ({ name: f.name, type: f.type })),

    async create(dataset: Dataset, type: string, name: string) {
      checkName(name);
      await checkUnique(dataset.id, name);
      try {
        const m = await prisma.datasetMetadata.create({
          data: { tenant_id: dataset.tenant_id, dataset_id: dataset.id, type, name, created_by: workspaceOwnerId(dataset.tenant_id) },
        });
        return { id: m.id, type: m.type, name: m.name };
      } catch (e) {
        if ((e as { code?: string }).code === "P2002") throw Errors.invalidParam("Metadata name already exists.");
        throw e;
      }
    },

    /** `{"doc_metadata": [{id, name, type, count}], "built_in_field_enabled"}`. */
    async list(dataset: Dataset) {
      const rows = await prisma.datasetMetadata.findMany({
        where: { dataset_id: dataset.id },
        orderBy: [{ created_at: "asc" }, { id: "asc" }],
        select: { id: true, name: true, type: true, _count: { select: { bindings: { where: { dataset_id: dataset.id } } } } },
      });
      return {
        doc_metadata: rows.map((r) => ({ id: r.id, name: r.name, type: r.type, count: r._count.bindings })),
        built_in_field_enabled: dataset.built_in_field_enabled,
      };
    },

    /** Rename, and rename the key in every bound document's values. The name checks come first,
     * so renaming a field to its current name fails as in Dify. A missing field is a 404 here
     * (Dify's answer is an unvalidated response, open question §16.12). */
    async rename(dataset: Dataset, metadataId: string, name: string) {
      checkName(name);
      await checkUnique(dataset.id, name);
      const k = await lock(`dataset_metadata_lock_${dataset.id}`, DATASET_LOCKED);
      try {
        const m = isUuid(metadataId) ? await prisma.datasetMetadata.findFirst({ where: { id: metadataId.toLowerCase(), dataset_id: dataset.id } }) : null;
        if (!m) throw Errors.notFound("Metadata not found.");
        const updated = await prisma.$transaction(async (tx) => {
          const row = await tx.datasetMetadata.update({ where: { id: m.id }, data: { name, updated_by: workspaceOwnerId(dataset.tenant_id), updated_at: new Date() } });
          const bindings = await tx.datasetMetadataBinding.findMany({ where: { metadata_id: m.id }, select: { document_id: true } });
          const docs = await tx.document.findMany({ where: { id: { in: bindings.map((b) => b.document_id) }, dataset_id: dataset.id } });
          for (const d of docs) {
            const meta = asDict(d.doc_metadata);
            const value = Object.hasOwn(meta, m.name) ? meta[m.name] : null;
            delete meta[m.name];
            meta[name] = value;
            await tx.document.update({ where: { id: d.id }, data: { doc_metadata: meta as Prisma.InputJsonValue } });
          }
          return row;
        });
        return { id: updated.id, type: updated.type, name: updated.name };
      } finally {
        await unlock(k);
      }
    },

    /** Delete the field, its bindings (cascade) and its key in the bound documents' values. */
    async remove(dataset: Dataset, metadataId: string): Promise<void> {
      const k = await lock(`dataset_metadata_lock_${dataset.id}`, DATASET_LOCKED);
      try {
        const m = isUuid(metadataId) ? await prisma.datasetMetadata.findFirst({ where: { id: metadataId.toLowerCase(), dataset_id: dataset.id } }) : null;
        if (!m) throw Errors.invalidParam("Metadata not found.");
        await prisma.$transaction(async (tx) => {
          const bindings = await tx.datasetMetadataBinding.findMany({ where: { metadata_id: m.id }, select: { document_id: true } });
          const docs = await tx.document.findMany({ where: { id: { in: bindings.map((b) => b.document_id) }, dataset_id: dataset.id } });
          for (const d of docs) {
            const meta = asDict(d.doc_metadata);
            delete meta[m.name];
            await tx.document.update({ where: { id: d.id }, data: { doc_metadata: meta as Prisma.InputJsonValue } });
          }
          await tx.datasetMetadata.delete({ where: { id: m.id } });
        });
      } finally {
        await unlock(k);
      }
    },

    /** enable/disable the built-in fields; other actions are a silent no-op (§9). */
    async builtInAction(dataset: Dataset, action: string): Promise<void> {
      if (action !== "enable" && action !== "disable") return;
      const enable = action === "enable";
      if (dataset.built_in_field_enabled === enable) return;
      const k = await lock(`dataset_metadata_lock_${dataset.id}`, DATASET_LOCKED);
      try {
        const uploader = enable ? await ownerName(dataset.tenant_id) : null;
        await prisma.$transaction(async (tx) => {
          await tx.dataset.update({ where: { id: dataset.id }, data: { built_in_field_enabled: enable } });
          for (const d of await working(tx, dataset.id)) {
            const meta = asDict(d.doc_metadata);
            if (enable) Object.assign(meta, builtIns(d, uploader));
            else for (const f of BUILT_IN_FIELDS) delete meta[f.name];
            await tx.document.update({ where: { id: d.id }, data: { doc_metadata: meta as Prisma.InputJsonValue } });
          }
        });
      } finally {
        await unlock(k);
      }
    },

    /** POST /datasets/{id}/documents/metadata: operations run one by one, each committed on its
     * own, so earlier ones stay when a later one fails (§9). */
    async updateDocuments(dataset: Dataset, ops: DocumentMetadataOperation[]): Promise<void> {
      const uploader = dataset.built_in_field_enabled ? await ownerName(dataset.tenant_id) : null;
      const ownerId = workspaceOwnerId(dataset.tenant_id);
      for (const op of ops) {
        const k = await lock(`document_metadata_lock_${op.document_id}`, DOCUMENT_LOCKED);
        try {
          const doc = isUuid(op.document_id) ? await prisma.document.findFirst({ where: { id: op.document_id.toLowerCase(), dataset_id: dataset.id } }) : null;
          if (!doc) throw Errors.invalidParam("Document not found.");
          const meta: DocMeta = op.partial_update ? asDict(doc.doc_metadata) : {};
          for (const item of op.metadata_list) meta[item.name] = item.value;
          if (dataset.built_in_field_enabled) Object.assign(meta, builtIns(doc, uploader));
          // Ids and names are not cross-checked (the value is keyed by name, the binding by id);
          // a binding needs an existing field of this dataset (foreign key), others are skipped.
          const ids = [...new Set(op.metadata_list.map((m) => m.id).filter(isUuid).map((x) => x.toLowerCase()))];
          const fields = ids.length ? await prisma.datasetMetadata.findMany({ where: { id: { in: ids }, dataset_id: dataset.id }, select: { id: true } }) : [];
          await prisma.$transaction(async (tx) => {
            await tx.document.update({ where: { id: doc.id }, data: { doc_metadata: meta as Prisma.InputJsonValue } });
            if (!op.partial_update) await tx.datasetMetadataBinding.deleteMany({ where: { document_id: doc.id } });
            await tx.datasetMetadataBinding.createMany({
              data: fields.map((f) => ({ tenant_id: dataset.tenant_id, dataset_id: dataset.id, metadata_id: f.id, document_id: doc.id, created_by: ownerId })),
              skipDuplicates: true,
            });
          });
        } finally {
          await unlock(k);
        }
      }
    },
  };
}
export type MetadataService = ReturnType<typeof createMetadataService>;

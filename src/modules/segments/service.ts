// Segments ("chunks") and child chunks of a document (datasets spec §6). Writes are synchronous as
// in Dify's SegmentService: rows are committed, then the index module (re)embeds and full-text
// indexes them before the response (§6.1, §6.4, §6.6). Disabling a segment only flips its flags:
// retrieval drops disabled segments at query time, so its vector may stay (§11.9 note).
import { z } from "zod";
import type { Config } from "../../config/index.js";
import type { ChildChunk, Dataset, Document, DocumentSegment, Prisma } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import { newId } from "../../lib/ids.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import { checkDatasetModel, requireEmbeddingModel } from "../documents/model-check.js";
import { pyLen } from "../documents/service.js";
import { parseOrInvalid, pydanticText } from "../documents/validate.js";
import { deleteSegmentIndex, indexSegments, type IndexDeps } from "../indexing/index-ops.js";
import { textHash, transformHierarchical, type ProcessRule } from "../indexing/split.js";
import { countTokens, type Models } from "../models/index.js";
import { childChunkItem, segmentItem } from "./serialize.js";

/** A 400 whose body is NOT Dify's envelope: `{"error": "<pydantic text>"}` (§6.1, pitfall §15.8). */
export class BareBodyError extends Error {
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(String(body.error ?? "error"));
    this.name = "BareBodyError";
  }
}

export interface Actor {
  tenantId: string;
  ownerId: string;
}

export interface SegmentDeps {
  prisma: PrismaClient;
  models: Models;
  config: Config;
  logger: Logger;
}

const nonBlank = z.string().min(1).refine((s) => s.trim().length > 0, "Value error, content cannot be empty or whitespace only");
const addSchema = z.object({
  segments: z
    .array(
      z.object({
        content: nonBlank,
        answer: z.string().nullish(),
        keywords: z.array(z.string()).nullish(),
        attachment_ids: z.array(z.string()).nullish(),
      }),
    )
    .min(1),
});

const updateSchema = z.object({
  segment: z.object({
    content: z.string().nullish(),
    answer: z.string().nullish(),
    keywords: z.array(z.string()).nullish(),
    enabled: z.boolean().nullish(),
    regenerate_child_chunks: z.boolean().nullish(),
    attachment_ids: z.array(z.string()).nullish(),
    summary: z.string().nullish(),
  }),
});

const childSchema = z.object({ content: z.string() });

const pageQuery = z.object({
  page: z.coerce.number().int().min(1).default(1),
  limit: z.coerce.number().int().min(1).default(20),
  keyword: z.string().nullish(),
});

const asList = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** `LIKE` pattern for a literal substring (Dify escapes segment/child keywords, §6.2, §6.6). */
const likeLiteral = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function sameMultiset(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function createSegmentService(deps: SegmentDeps) {
  const { prisma, models, config, logger } = deps;
  const indexDeps: IndexDeps = { prisma, models, config, logger };

  async function documentOr404(dataset: Dataset, documentId: string) {
    const doc = await prisma.document.findFirst({ where: { id: documentId.toLowerCase(), dataset_id: dataset.id } });
    if (!doc) throw Errors.notFound("Document not found.");
    return doc;
  }

  async function segmentOr404(doc: Document, segmentId: string) {
    const seg = await prisma.documentSegment.findFirst({ where: { id: segmentId.toLowerCase(), document_id: doc.id } });
    if (!seg) throw Errors.notFound("Segment not found.");
    return seg;
  }

  async function childOr404(seg: DocumentSegment, childId: string) {
    const child = await prisma.childChunk.findFirst({ where: { id: childId.toLowerCase(), segment_id: seg.id } });
    if (!child) throw Errors.notFound("Child chunk not found.");
    return child;
  }

  async function ruleOf(doc: Document): Promise<ProcessRule | null> {
    if (!doc.dataset_process_rule_id) return null;
    const row = await prisma.datasetProcessRule.findUnique({ where: { id: doc.dataset_process_rule_id } });
    return row ? { mode: row.mode as ProcessRule["mode"], rules: (row.rules ?? null) as ProcessRule["rules"] } : null;
  }

  /** §3.6: child chunks are shown for hierarchical documents whose parent mode is not full-doc. */
  async function showsChildren(doc: Document): Promise<boolean> {
    if (doc.doc_form !== "hierarchical_model") return false;
    const rule = await ruleOf(doc);
    return rule?.rules?.parent_mode !== "full-doc";
  }

  async function render(doc: Document, segs: DocumentSegment[]) {
    const children = (await showsChildren(doc)) && segs.length
      ? await prisma.childChunk.findMany({ where: { segment_id: { in: segs.map((s) => s.id) } }, orderBy: [{ position: "asc" }] })
      : [];
    return segs.map((s) => segmentItem(s, children.filter((c) => c.segment_id === s.id)));
  }

  async function tokensOf(dataset: Dataset, text: string): Promise<number> {
    return dataset.indexing_technique === "high_quality" ? countTokens(text) : 0;
  }

  /**
   * Replaces a hierarchical segment's child chunks with ones split from its content by the
   * document rule's `subchunk_segmentation`, treating the segment as a full-doc parent (§6.1).
   */
  async function regenerateChildren(dataset: Dataset, doc: Document, seg: DocumentSegment, actor: Actor) {
    const rule = (await ruleOf(doc)) ?? { mode: "hierarchical" as const, rules: null };
    const chunks = transformHierarchical([seg.content], { mode: rule.mode, rules: { ...(rule.rules ?? {}), parent_mode: "full-doc" } });
    const children = chunks[0]?.children ?? [];
    await prisma.$transaction(async (tx) => {
      await tx.childChunk.deleteMany({ where: { segment_id: seg.id } });
      if (children.length) {
        await tx.childChunk.createMany({
          data: children.map((c, i) => ({
            id: newId(),
            tenant_id: dataset.tenant_id,
            dataset_id: dataset.id,
            document_id: doc.id,
            segment_id: seg.id,
            position: i + 1,
            content: c.content,
            word_count: pyLen(c.content),
            index_node_id: c.indexNodeId,
            index_node_hash: c.indexNodeHash,
            type: "automatic",
            created_by: actor.ownerId,
          })),
        });
      }
    });
  }

  /** Marks segments failed as Dify does when indexing raises (§6.1, §6.4 step 8). */
  async function markFailed(ids: string[], e: unknown) {
    logger.warn({ err: e, segmentIds: ids }, "segment indexing failed");
    await prisma.documentSegment.updateMany({
      where: { id: { in: ids } },
      data: { enabled: false, status: "error", error: errorMessage(e), disabled_at: new Date() },
    });
  }

  return {
    // ---- §6.1
    async add(dataset: Dataset, actor: Actor, documentId: string, body: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      if (doc.indexing_status !== "completed") throw Errors.notFound("Document is not completed.");
      if (!doc.enabled) throw Errors.notFound("Document is disabled.");
      requireEmbeddingModel(models, dataset);
      const parsed = addSchema.safeParse(body);
      if (!parsed.success) throw new BareBodyError(400, { error: pydanticText(parsed.error, "SegmentCreatePayload") });
      const items = parsed.data.segments;
      const max = config.DATASET_MAX_SEGMENTS_PER_REQUEST;
      if (max > 0 && items.length > max) throw Errors.invalidParam(`Exceeded maximum segments limit of ${max}.`);
      const qa = doc.doc_form === "qa_model";
      for (const it of items) {
        if (qa) {
          if (it.answer === undefined || it.answer === null) throw Errors.invalidParam("Answer is required");
          if (!it.answer.trim()) throw Errors.invalidParam("Answer is empty");
        }
        if (!it.content.trim()) throw Errors.invalidParam("Content is empty");
        if (it.attachment_ids && it.attachment_ids.length > config.SINGLE_CHUNK_ATTACHMENT_LIMIT) {
          throw Errors.invalidParam(`Exceeded maximum attachment limit of ${config.SINGLE_CHUNK_ATTACHMENT_LIMIT}`);
        }
      }
      const tokens = await Promise.all(items.map((it) => tokensOf(dataset, qa ? it.content + (it.answer ?? "") : it.content)));
      const now = new Date();
      const created = await prisma.$transaction(async (tx) => {
        // Dify takes a per-document lock; a row lock keeps positions unique under concurrency.
        await tx.$queryRaw`SELECT id FROM documents WHERE id = ${doc.id}::uuid FOR UPDATE`;
        const agg = await tx.documentSegment.aggregate({ where: { document_id: doc.id }, _max: { position: true } });
        let pos = agg._max.position ?? 0;
        const rows = items.map((it, i) => ({
          id: newId(),
          tenant_id: dataset.tenant_id,
          dataset_id: dataset.id,
          document_id: doc.id,
          position: ++pos,
          // Stored verbatim: no cleaning or splitting on this path (§6.1).
          content: it.content,
          answer: qa ? (it.answer ?? null) : null,
          word_count: pyLen(it.content) + (qa ? pyLen(it.answer ?? "") : 0),
          tokens: tokens[i]!,
          keywords: it.keywords ?? [],
          index_node_id: newId(),
          index_node_hash: textHash(it.content),
          enabled: true,
          status: "completed",
          indexing_at: now,
          completed_at: now,
          created_by: actor.ownerId,
          created_at: now,
          updated_at: now,
        }));
        await tx.documentSegment.createMany({ data: rows });
        const added = rows.reduce((n, r) => n + r.word_count, 0);
        await tx.document.update({ where: { id: doc.id }, data: { word_count: { increment: added } } });
        return rows.map((r) => r.id);
      });
      try {
        if (doc.doc_form === "hierarchical_model") {
          const segs = await prisma.documentSegment.findMany({ where: { id: { in: created } } });
          for (const s of segs) await regenerateChildren(dataset, doc, s, actor);
        }
        await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: created });
      } catch (e) {
        await markFailed(created, e);
      }
      const segs = await prisma.documentSegment.findMany({ where: { id: { in: created } }, orderBy: { position: "asc" } });
      return { data: await render(doc, segs), doc_form: doc.doc_form };
    },

    // ---- §6.2
    async list(dataset: Dataset, documentId: string, query: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      requireEmbeddingModel(models, dataset);
      const q = parseOrInvalid(pageQuery, { page: query.page, limit: query.limit, keyword: query.keyword }, "SegmentListQuery");
      const statuses = asList(query.status).filter(Boolean);
      const applied = Math.min(q.limit, 100);
      let rows: DocumentSegment[];
      let total: number;
      if (q.keyword) {
        [rows, total] = await Promise.all([
          keywordPage("document_segments", doc.id, statuses, q.keyword, q.page, applied) as Promise<DocumentSegment[]>,
          keywordCount("document_segments", doc.id, statuses, q.keyword),
        ]);
      } else {
        const where: Prisma.DocumentSegmentWhereInput = { document_id: doc.id, ...(statuses.length ? { status: { in: statuses } } : {}) };
        [rows, total] = await Promise.all([
          prisma.documentSegment.findMany({ where, orderBy: [{ position: "asc" }, { id: "asc" }], skip: (q.page - 1) * applied, take: applied }),
          prisma.documentSegment.count({ where }),
        ]);
      }
      const data = await render(doc, rows);
      // §1.4: has_more compares with the requested limit, which is echoed uncapped.
      return { data, doc_form: doc.doc_form, total, has_more: data.length === q.limit, limit: q.limit, page: q.page };
    },

    // ---- §6.3
    async get(dataset: Dataset, documentId: string, segmentId: string) {
      const doc = await documentOr404(dataset, documentId);
      checkDatasetModel(models, dataset);
      const seg = await segmentOr404(doc, segmentId);
      return { data: (await render(doc, [seg]))[0], doc_form: doc.doc_form };
    },

    // ---- §6.4 (the algorithm order is Dify's; clients rely on the enable/disable shortcut)
    async update(dataset: Dataset, actor: Actor, documentId: string, segmentId: string, body: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      checkDatasetModel(models, dataset);
      let seg = await segmentOr404(doc, segmentId);
      const args = parseOrInvalid(updateSchema, body, "SegmentUpdatePayload").segment;
      const now = new Date();
      if (args.enabled !== undefined && args.enabled !== null && args.enabled !== seg.enabled && args.enabled === false) {
        seg = await prisma.documentSegment.update({
          where: { id: seg.id },
          data: { enabled: false, disabled_at: now, disabled_by: actor.ownerId },
        });
        return { data: (await render(doc, [seg]))[0], doc_form: doc.doc_form };
      }
      if (!seg.enabled && args.enabled !== true) throw Errors.invalidParam("Can't update disabled segment");
      const qa = doc.doc_form === "qa_model";
      const hierarchical = doc.doc_form === "hierarchical_model";
      const content = args.content ? args.content : seg.content;
      try {
        if (content === seg.content) {
          const answer = qa ? (args.answer ?? null) : seg.answer;
          const wordCount = pyLen(content) + (qa ? pyLen(answer ?? "") : 0);
          const current = Array.isArray(seg.keywords) ? (seg.keywords as string[]) : [];
          const keywordsChanged = !!args.keywords && args.keywords.length > 0 && !sameMultiset(args.keywords, current);
          await prisma.$transaction([
            prisma.documentSegment.update({
              where: { id: seg.id },
              data: {
                word_count: wordCount,
                answer,
                ...(keywordsChanged ? { keywords: args.keywords! } : {}),
                enabled: true,
                disabled_at: null,
                disabled_by: null,
              },
            }),
            prisma.document.update({ where: { id: doc.id }, data: { word_count: { increment: wordCount - seg.word_count } } }),
          ]);
          seg = await prisma.documentSegment.findUniqueOrThrow({ where: { id: seg.id } });
          if (hierarchical && args.regenerate_child_chunks && dataset.indexing_technique === "high_quality") {
            await regenerateChildren(dataset, doc, seg, actor);
            await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
          } else if (!hierarchical && (args.enabled === true || keywordsChanged)) {
            await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
          }
        } else {
          if (qa && (args.answer === undefined || args.answer === null)) {
            // Dify concatenates content + answer for the token count and fails on None; the
            // failure takes the error path below (segment saved as error, still 200).
            throw new TypeError('can only concatenate str (not "NoneType") to str');
          }
          const answer = qa ? args.answer! : seg.answer;
          const wordCount = pyLen(content) + (qa ? pyLen(answer ?? "") : 0);
          const tokens = await tokensOf(dataset, qa ? content + (answer ?? "") : content);
          await prisma.$transaction([
            prisma.documentSegment.update({
              where: { id: seg.id },
              data: {
                content,
                answer,
                index_node_hash: textHash(content),
                word_count: wordCount,
                tokens,
                ...(args.keywords ? { keywords: args.keywords } : {}),
                status: "completed",
                indexing_at: now,
                completed_at: now,
                updated_at: now,
                updated_by: actor.ownerId,
                enabled: true,
                disabled_at: null,
                disabled_by: null,
                error: null,
              },
            }),
            prisma.document.update({ where: { id: doc.id }, data: { word_count: { increment: wordCount - seg.word_count } } }),
          ]);
          seg = await prisma.documentSegment.findUniqueOrThrow({ where: { id: seg.id } });
          if (hierarchical) {
            // Children (what is embedded) change only on request (§6.4 step 6).
            if (args.regenerate_child_chunks && dataset.indexing_technique === "high_quality") {
              await regenerateChildren(dataset, doc, seg, actor);
              await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
            }
          } else {
            // Same index_node_id: the vector is replaced in place.
            await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
          }
        }
      } catch (e) {
        await markFailed([seg.id], e);
      }
      seg = await prisma.documentSegment.findUniqueOrThrow({ where: { id: seg.id } });
      return { data: (await render(doc, [seg]))[0], doc_form: doc.doc_form };
    },

    // ---- §6.5
    async remove(dataset: Dataset, documentId: string, segmentId: string) {
      const doc = await documentOr404(dataset, documentId);
      checkDatasetModel(models, dataset);
      const seg = await segmentOr404(doc, segmentId);
      // Disabled segments may still have index entries here (see the header), so always purge.
      await deleteSegmentIndex(indexDeps, { segmentIds: [seg.id] });
      await prisma.$transaction([
        prisma.documentSegment.delete({ where: { id: seg.id } }),
        prisma.document.update({ where: { id: doc.id }, data: { word_count: { decrement: seg.word_count } } }),
      ]);
    },

    // ---- §6.6
    async createChild(dataset: Dataset, actor: Actor, documentId: string, segmentId: string, body: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      const seg = await segmentOr404(doc, segmentId);
      requireEmbeddingModel(models, dataset);
      const { content } = parseOrInvalid(childSchema, body, "ChildChunkCreatePayload");
      const child = await prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM document_segments WHERE id = ${seg.id}::uuid FOR UPDATE`;
        const agg = await tx.childChunk.aggregate({ where: { segment_id: seg.id }, _max: { position: true } });
        return tx.childChunk.create({
          data: {
            id: newId(),
            tenant_id: dataset.tenant_id,
            dataset_id: dataset.id,
            document_id: doc.id,
            segment_id: seg.id,
            position: (agg._max.position ?? 0) + 1,
            content,
            word_count: pyLen(content),
            index_node_id: newId(),
            index_node_hash: textHash(content),
            type: "customized",
            created_by: actor.ownerId,
          },
        });
      });
      if (dataset.indexing_technique === "high_quality") {
        try {
          await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
        } catch (e) {
          // Dify rolls the row back and answers 400 with the underlying message.
          await prisma.childChunk.delete({ where: { id: child.id } }).catch(() => undefined);
          throw Errors.invalidParam(errorMessage(e));
        }
      }
      return { data: childChunkItem(await prisma.childChunk.findUniqueOrThrow({ where: { id: child.id } })) };
    },

    async listChildren(dataset: Dataset, documentId: string, segmentId: string, query: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      const seg = await segmentOr404(doc, segmentId);
      const q = parseOrInvalid(pageQuery, { page: query.page, limit: query.limit, keyword: query.keyword }, "ChildChunkListQuery");
      const applied = Math.min(q.limit, 100);
      let rows: ChildChunk[];
      let total: number;
      if (q.keyword) {
        rows = (await keywordPage("child_chunks", seg.id, [], q.keyword, q.page, applied)) as ChildChunk[];
        total = await keywordCount("child_chunks", seg.id, [], q.keyword);
      } else {
        [rows, total] = await Promise.all([
          prisma.childChunk.findMany({ where: { segment_id: seg.id }, orderBy: [{ position: "asc" }], skip: (q.page - 1) * applied, take: applied }),
          prisma.childChunk.count({ where: { segment_id: seg.id } }),
        ]);
      }
      return { data: rows.map(childChunkItem), total, total_pages: Math.ceil(total / applied), page: q.page, limit: applied };
    },

    async updateChild(dataset: Dataset, actor: Actor, documentId: string, segmentId: string, childId: string, body: Record<string, unknown>) {
      const doc = await documentOr404(dataset, documentId);
      const seg = await segmentOr404(doc, segmentId);
      const child = await childOr404(seg, childId);
      const { content } = parseOrInvalid(childSchema, body, "ChildChunkUpdatePayload");
      // index_node_hash is deliberately NOT recomputed (§6.6).
      const updated = await prisma.childChunk.update({
        where: { id: child.id },
        data: { content, word_count: pyLen(content), type: "customized", updated_at: new Date(), updated_by: actor.ownerId },
      });
      if (dataset.indexing_technique === "high_quality") {
        try {
          await indexSegments(indexDeps, { datasetId: dataset.id, segmentIds: [seg.id] });
        } catch (e) {
          await prisma.childChunk.update({
            where: { id: child.id },
            data: { content: child.content, word_count: child.word_count, type: child.type, updated_at: child.updated_at, updated_by: child.updated_by },
          });
          throw Errors.invalidParam(errorMessage(e));
        }
      }
      return { data: childChunkItem(updated) };
    },

    async deleteChild(dataset: Dataset, documentId: string, segmentId: string, childId: string) {
      const doc = await documentOr404(dataset, documentId);
      const seg = await segmentOr404(doc, segmentId);
      const child = await childOr404(seg, childId);
      try {
        // The child's full-text entry lives on its row; its vector is keyed by child_chunk_id.
        await prisma.$transaction([
          prisma.$executeRaw`DELETE FROM embeddings WHERE child_chunk_id = ${child.id}::uuid`,
          prisma.childChunk.delete({ where: { id: child.id } }),
        ]);
      } catch (e) {
        throw Errors.invalidParam(errorMessage(e));
      }
    },
  };

  // Case-insensitive literal substring search (Dify escapes the keyword and uses ILIKE).
  async function keywordPage(table: "document_segments" | "child_chunks", parentId: string, statuses: string[], keyword: string, page: number, size: number) {
    const pattern = likeLiteral(keyword);
    if (table === "document_segments") {
      const ids = statuses.length
        ? await prisma.$queryRaw<Array<{ id: string }>>`SELECT id::text FROM document_segments WHERE document_id = ${parentId}::uuid AND status = ANY(${statuses}::text[]) AND content ILIKE ${pattern} ESCAPE '\\' ORDER BY position ASC, id ASC LIMIT ${size} OFFSET ${(page - 1) * size}`
        : await prisma.$queryRaw<Array<{ id: string }>>`SELECT id::text FROM document_segments WHERE document_id = ${parentId}::uuid AND content ILIKE ${pattern} ESCAPE '\\' ORDER BY position ASC, id ASC LIMIT ${size} OFFSET ${(page - 1) * size}`;
      const rows = await prisma.documentSegment.findMany({ where: { id: { in: ids.map((r) => r.id) } }, orderBy: [{ position: "asc" }, { id: "asc" }] });
      return rows;
    }
    const ids = await prisma.$queryRaw<Array<{ id: string }>>`SELECT id::text FROM child_chunks WHERE segment_id = ${parentId}::uuid AND content ILIKE ${pattern} ESCAPE '\\' ORDER BY position ASC LIMIT ${size} OFFSET ${(page - 1) * size}`;
    return prisma.childChunk.findMany({ where: { id: { in: ids.map((r) => r.id) } }, orderBy: [{ position: "asc" }] });
  }

  async function keywordCount(table: "document_segments" | "child_chunks", parentId: string, statuses: string[], keyword: string): Promise<number> {
    const pattern = likeLiteral(keyword);
    const r =
      table === "child_chunks"
        ? await prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM child_chunks WHERE segment_id = ${parentId}::uuid AND content ILIKE ${pattern} ESCAPE '\\'`
        : statuses.length
          ? await prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM document_segments WHERE document_id = ${parentId}::uuid AND status = ANY(${statuses}::text[]) AND content ILIKE ${pattern} ESCAPE '\\'`
          : await prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM document_segments WHERE document_id = ${parentId}::uuid AND content ILIKE ${pattern} ESCAPE '\\'`;
    return Number(r[0]?.n ?? 0);
  }
}
export type SegmentService = ReturnType<typeof createSegmentService>;

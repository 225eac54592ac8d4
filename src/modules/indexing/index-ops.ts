// Index writes for segments and child chunks (datasets spec §11.7, §11.9), shared by the indexing
// pipeline and the segment / child-chunk routes:
//   high_quality: text_model → one vector per segment (its content); qa_model → the question
//   (content) only; hierarchical_model → child chunks only, parents are not embedded.
//   economy: no vectors; keywords (jieba in Dify, Intl.Segmenter words here) + full text;
//   hierarchical economy indexes nothing (§11.7).
// Every segment and child chunk also gets `search_vector` (full-text, CJK-segmented) so
// full_text_search / keyword_search / hybrid retrieval can find it.
import { Prisma } from "../../generated/prisma/client.js";
import type { Config } from "../../config/index.js";
import type { Logger } from "../../lib/logger.js";
import type { Db, PrismaClient } from "../../lib/prisma.js";
import type { Models, ModelRef } from "../models/index.js";
import { extractKeywords } from "../retrieval/terms.js";
import {
  deleteEmbeddingsByDocument,
  deleteEmbeddingsBySegments,
  embeddingCacheKey,
  getCachedEmbeddings,
  normalise,
  putCachedEmbeddings,
  upsertEmbeddings,
  type EmbeddingRow,
} from "../retrieval/vector-store.js";
import { toSearchText } from "./fulltext.js";

export interface IndexDeps {
  prisma: PrismaClient;
  models: Models;
  config: Config;
  logger: Logger;
}

/** Dify keeps the top 10 keywords per segment in the keyword table (§11.7). */
const KEYWORDS_PER_SEGMENT = 10;

/** Raised when a high_quality dataset has no embedding model (message as Dify's model check, §5.6). */
export class NoEmbeddingModelError extends Error {
  override readonly name = "NoEmbeddingModelError";
  constructor() {
    super("No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.");
  }
}

export function embeddingModelOf(dataset: { embedding_model: string | null; embedding_model_provider: string | null }): ModelRef {
  if (!dataset.embedding_model) throw new NoEmbeddingModelError();
  return { name: dataset.embedding_model, provider: dataset.embedding_model_provider ?? undefined };
}

/**
 * Embeds texts through the embedding cache (§11.7): cached vectors are reused, the rest are sent
 * to the model in batches (models.embed batches) and stored. Vectors are L2-normalised as Dify's
 * CacheEmbedding does.
 */
export async function embedTexts(deps: Pick<IndexDeps, "prisma" | "models">, model: ModelRef, texts: string[]): Promise<number[][]> {
  if (texts.length === 0) return [];
  const provider = model.provider ?? "";
  const keys = texts.map(embeddingCacheKey);
  const cached = await getCachedEmbeddings(deps.prisma, model.name, provider, keys);
  const missing: number[] = [];
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    if (!cached.has(k) && !seen.has(k)) {
      seen.add(k);
      missing.push(i);
    }
  });
  if (missing.length > 0) {
    const res = await deps.models.embed(model, missing.map((i) => texts[i]!));
    const fresh = missing.map((i, j) => ({ hash: keys[i]!, vector: normalise(res.vectors[j]!) }));
    for (const f of fresh) cached.set(f.hash, f.vector);
    await putCachedEmbeddings(deps.prisma, model.name, provider, fresh);
  }
  return keys.map((k) => cached.get(k)!);
}

async function setSearchVectors(db: Db, table: "document_segments" | "child_chunks", rows: Array<{ id: string; text: string }>): Promise<void> {
  const BATCH = 500;
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const values = Prisma.join(batch.map((r) => Prisma.sql`(${r.id}::uuid, ${toSearchText(r.text)})`));
    const tbl = Prisma.raw(table);
    await db.$executeRaw`UPDATE ${tbl} AS t SET search_vector = to_tsvector('simple', v.txt) FROM (VALUES ${values}) AS v(id, txt) WHERE t.id = v.id`;
  }
}

const INDEX_BATCH = 2000;

/**
 * Embeds and full-text indexes the given segments of a dataset and their child chunks, then marks
 * them `completed` (`completed_at = now`, `error = null`). Vectors are computed before the
 * transaction; the old vectors of these segments are replaced in one transaction, so a reader never
 * sees a segment with two generations of vectors. Throws model errors (DifyError) unchanged.
 */
export async function indexSegments(deps: IndexDeps, args: { datasetId: string; segmentIds: string[] }): Promise<void> {
  if (args.segmentIds.length === 0) return;
  // Large documents (100k segments) are indexed in batches: one query may carry at most 65,535
  // parameters, and a bounded batch keeps memory and transaction size flat. Each segment's vectors
  // are still replaced in one transaction.
  if (args.segmentIds.length > INDEX_BATCH) {
    for (let i = 0; i < args.segmentIds.length; i += INDEX_BATCH) {
      await indexSegments(deps, { datasetId: args.datasetId, segmentIds: args.segmentIds.slice(i, i + INDEX_BATCH) });
    }
    return;
  }
  const dataset = await deps.prisma.dataset.findUnique({ where: { id: args.datasetId } });
  if (!dataset) throw new Error(`dataset ${args.datasetId} not found`);
  const segments = await deps.prisma.documentSegment.findMany({
    where: { id: { in: args.segmentIds }, dataset_id: args.datasetId },
    select: { id: true, tenant_id: true, document_id: true, content: true, keywords: true, index_node_id: true },
    orderBy: [{ document_id: "asc" }, { position: "asc" }],
  });
  if (segments.length === 0) return;
  const docForms = new Map(
    (await deps.prisma.document.findMany({ where: { id: { in: [...new Set(segments.map((s) => s.document_id))] } }, select: { id: true, doc_form: true } })).map((d) => [d.id, d.doc_form]),
  );
  const children = await deps.prisma.childChunk.findMany({
    where: { segment_id: { in: segments.map((s) => s.id) } },
    select: { id: true, segment_id: true, content: true, index_node_id: true },
    orderBy: [{ segment_id: "asc" }, { position: "asc" }],
  });
  const highQuality = dataset.indexing_technique === "high_quality";
  const isHierarchical = (documentId: string) => docForms.get(documentId) === "hierarchical_model";

  // What gets a vector (§11.7).
  const nodes: Array<Omit<EmbeddingRow, "vector" | "model" | "provider"> & { text: string }> = [];
  if (highQuality) {
    const segById = new Map(segments.map((s) => [s.id, s]));
    for (const s of segments) {
      if (isHierarchical(s.document_id) || !s.index_node_id) continue;
      nodes.push({ tenantId: s.tenant_id, datasetId: args.datasetId, documentId: s.document_id, segmentId: s.id, indexNodeId: s.index_node_id, text: s.content });
    }
    for (const c of children) {
      const s = segById.get(c.segment_id)!;
      if (!isHierarchical(s.document_id) || !c.index_node_id) continue;
      nodes.push({ tenantId: s.tenant_id, datasetId: args.datasetId, documentId: s.document_id, segmentId: s.id, childChunkId: c.id, indexNodeId: c.index_node_id, text: c.content });
    }
  }
  let rows: EmbeddingRow[] = [];
  if (nodes.length > 0) {
    const model = embeddingModelOf(dataset);
    const vectors = await embedTexts(deps, model, nodes.map((n) => n.text));
    rows = nodes.map(({ text: _text, ...n }, i) => ({ ...n, model: model.name, provider: model.provider ?? "", vector: vectors[i]! }));
  }

  // Economy text/QA segments: keywords as the keyword table would hold them (§6.1: supplied
  // keywords when non-empty, else extracted; the segment shows what was indexed).
  const keywordUpdates: Array<{ id: string; keywords: string[] }> = [];
  if (!highQuality) {
    for (const s of segments) {
      if (isHierarchical(s.document_id)) continue;
      const given = Array.isArray(s.keywords) ? (s.keywords as unknown[]).filter((k): k is string => typeof k === "string") : [];
      keywordUpdates.push({ id: s.id, keywords: given.length > 0 ? given : extractKeywords(s.content, KEYWORDS_PER_SEGMENT) });
    }
  }

  const now = new Date();
  await deps.prisma.$transaction(
    async (tx) => {
      await deleteEmbeddingsBySegments(tx, segments.map((s) => s.id));
      await upsertEmbeddings(tx, rows);
      await setSearchVectors(tx, "document_segments", segments.map((s) => ({ id: s.id, text: s.content })));
      await setSearchVectors(tx, "child_chunks", children.map((c) => ({ id: c.id, text: c.content })));
      for (const k of keywordUpdates) {
        await tx.documentSegment.update({ where: { id: k.id }, data: { keywords: k.keywords } });
      }
      await tx.documentSegment.updateMany({
        where: { id: { in: segments.map((s) => s.id) } },
        data: { status: "completed", completed_at: now, error: null },
      });
      await tx.childChunk.updateMany({ where: { segment_id: { in: segments.map((s) => s.id) } }, data: { completed_at: now, error: null } });
    },
    { timeout: 60_000 },
  );
  deps.logger.debug({ datasetId: args.datasetId, segments: segments.length, vectors: rows.length }, "segments indexed");
}

/** Removes the index entries (vectors, child vectors, full-text) of segments (§11.9 disable / delete). */
export async function deleteSegmentIndex(deps: Pick<IndexDeps, "prisma">, args: { segmentIds: string[] }): Promise<void> {
  if (args.segmentIds.length === 0) return;
  await deps.prisma.$transaction(async (tx) => {
    await deleteEmbeddingsBySegments(tx, args.segmentIds);
    await tx.$executeRaw`UPDATE document_segments SET search_vector = NULL WHERE id = ANY(${args.segmentIds}::uuid[])`;
    await tx.$executeRaw`UPDATE child_chunks SET search_vector = NULL WHERE segment_id = ANY(${args.segmentIds}::uuid[])`;
  });
}

/** Removes every index entry of a document (§11.9 document disable / archive / delete). */
export async function deleteDocumentIndex(deps: Pick<IndexDeps, "prisma">, args: { documentId: string }): Promise<void> {
  await deps.prisma.$transaction(async (tx) => {
    await deleteEmbeddingsByDocument(tx, args.documentId);
    await tx.$executeRaw`UPDATE document_segments SET search_vector = NULL WHERE document_id = ${args.documentId}::uuid`;
    await tx.$executeRaw`UPDATE child_chunks SET search_vector = NULL WHERE document_id = ${args.documentId}::uuid`;
  });
}

// The vector store, write side (datasets spec §11.7, DESIGN §4): one row per indexed node in
// `embeddings`, keyed by (dataset_id, index_node_id) like Dify's per-dataset collection keyed by
// point id. The column is an untyped `vector` and `dimension` records the length, so the partial
// HNSW index of that size (`WHERE dimension = d`, on `embedding::vector(d)`) covers the row; rows
// are written uncast, queries repeat the cast and the predicate (see the init migration).
// Also the embedding cache (§11.7 "Embeddings are cached by (model, provider, text hash)").
import { createHash } from "node:crypto";
import { Prisma } from "../../generated/prisma/client.js";
import type { Db } from "../../lib/prisma.js";

export interface EmbeddingRow {
  tenantId: string;
  datasetId: string;
  documentId: string;
  segmentId: string;
  /** Set for child chunks of hierarchical documents (their parents are not embedded, §11.7). */
  childChunkId?: string | null | undefined;
  indexNodeId: string;
  model: string;
  provider: string;
  vector: number[];
}

/** pgvector's text form; finite numbers only (NaN/Infinity are rejected by pgvector anyway). */
export function vectorLiteral(v: number[]): string {
  for (const x of v) if (!Number.isFinite(x)) throw new Error("embedding contains a non-finite value");
  return `[${v.join(",")}]`;
}

function parseVector(text: string): number[] {
  return JSON.parse(text) as number[];
}

const INSERT_BATCH = 200;

/** Inserts or replaces the vectors of the given nodes (same node id → replaced, §11.9 "vector replaced under the same node id"). */
export async function upsertEmbeddings(db: Db, rows: EmbeddingRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    const batch = rows.slice(i, i + INSERT_BATCH);
    const values = batch.map(
      (r) =>
        Prisma.sql`(${r.tenantId}::uuid, ${r.datasetId}::uuid, ${r.documentId}::uuid, ${r.segmentId}::uuid, ${r.childChunkId ?? null}::uuid, ${r.indexNodeId}, ${r.model}, ${r.provider}, ${r.vector.length}, ${vectorLiteral(r.vector)}::vector)`,
    );
    await db.$executeRaw`
      INSERT INTO embeddings (tenant_id, dataset_id, document_id, segment_id, child_chunk_id, index_node_id, model, provider, dimension, embedding)
      VALUES ${Prisma.join(values)}
      ON CONFLICT (dataset_id, index_node_id) DO UPDATE SET
        tenant_id = EXCLUDED.tenant_id, document_id = EXCLUDED.document_id, segment_id = EXCLUDED.segment_id,
        child_chunk_id = EXCLUDED.child_chunk_id, model = EXCLUDED.model, provider = EXCLUDED.provider,
        dimension = EXCLUDED.dimension, embedding = EXCLUDED.embedding, created_at = (now() at time zone 'utc')`;
  }
}

/** Removes the vectors of segments and of their child chunks. */
export async function deleteEmbeddingsBySegments(db: Db, segmentIds: string[]): Promise<number> {
  if (segmentIds.length === 0) return 0;
  return db.$executeRaw`DELETE FROM embeddings WHERE segment_id = ANY(${segmentIds}::uuid[])`;
}

/** Removes the vectors of given nodes (a segment's own or a child chunk's index_node_id). */
export async function deleteEmbeddingsByNodeIds(db: Db, datasetId: string, indexNodeIds: string[]): Promise<number> {
  if (indexNodeIds.length === 0) return 0;
  return db.$executeRaw`DELETE FROM embeddings WHERE dataset_id = ${datasetId}::uuid AND index_node_id = ANY(${indexNodeIds}::text[])`;
}

export async function deleteEmbeddingsByDocument(db: Db, documentId: string): Promise<number> {
  return db.$executeRaw`DELETE FROM embeddings WHERE document_id = ${documentId}::uuid`;
}

export async function deleteEmbeddingsByDataset(db: Db, datasetId: string): Promise<number> {
  return db.$executeRaw`DELETE FROM embeddings WHERE dataset_id = ${datasetId}::uuid`;
}

// ---------------------------------------------------------------------------
// Embedding cache
// ---------------------------------------------------------------------------

/** Cache key of a text: `helper.generate_text_hash` (SHA-256 of text + "None"), as Dify's CacheEmbedding. */
export function embeddingCacheKey(text: string): string {
  return createHash("sha256").update(text + "None", "utf8").digest("hex");
}

/** Cached vectors by cache key for (model, provider). */
export async function getCachedEmbeddings(db: Db, model: string, provider: string, hashes: string[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  if (hashes.length === 0) return out;
  const rows = await db.$queryRaw<Array<{ hash: string; embedding: string }>>`
    SELECT hash, embedding::text AS embedding FROM embedding_cache
    WHERE model = ${model} AND provider = ${provider} AND hash = ANY(${[...new Set(hashes)]}::text[])`;
  for (const r of rows) out.set(r.hash.trim(), parseVector(r.embedding));
  return out;
}

/** Stores vectors; an existing entry wins (two workers embedding the same text agree anyway). */
export async function putCachedEmbeddings(db: Db, model: string, provider: string, entries: Array<{ hash: string; vector: number[] }>): Promise<void> {
  const unique = [...new Map(entries.map((e) => [e.hash, e])).values()];
  for (let i = 0; i < unique.length; i += INSERT_BATCH) {
    const batch = unique.slice(i, i + INSERT_BATCH);
    const values = batch.map((e) => Prisma.sql`(${model}, ${provider}, ${e.hash}, ${e.vector.length}, ${vectorLiteral(e.vector)}::vector)`);
    await db.$executeRaw`
      INSERT INTO embedding_cache (model, provider, hash, dimension, embedding) VALUES ${Prisma.join(values)}
      ON CONFLICT (model, provider, hash) DO NOTHING`;
  }
}

/** Dify's CacheEmbedding stores and returns L2-normalised vectors (cosine scores are unchanged). */
export function normalise(v: number[]): number[] {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  return n > 0 ? v.map((x) => x / n) : v;
}

// A small knowledge corpus written straight into the tables the indexing pipeline fills
// (datasets, documents, segments, child chunks, embeddings, search_vector), so retrieval tests do
// not depend on the pipeline. Embeddings are the fake server's `fakeEmbedding`, so the vectors a
// query gets from the fake model are comparable with the stored ones.
import { randomUUID } from "node:crypto";
import { toSearchText } from "../../src/modules/indexing/fulltext.js";
import type { TestApp } from "./app.js";
import { fakeEmbedding } from "./fake-openai.js";

export const DIM = 256;
export const EMBEDDING_MODEL = "text-embedding-3-small";

export interface SegSpec {
  content: string;
  answer?: string;
  enabled?: boolean;
  status?: string;
  keywords?: string[] | null;
  /** Child chunks (hierarchical documents: only these are embedded). */
  children?: string[];
}

export interface DocSpec {
  name: string;
  docForm?: "text_model" | "qa_model" | "hierarchical_model";
  enabled?: boolean;
  archived?: boolean;
  indexingStatus?: string;
  metadata?: Record<string, unknown> | null;
  segments: SegSpec[];
}

export async function seedDataset(
  t: TestApp,
  tenantId: string,
  opts: { name?: string; technique?: "high_quality" | "economy"; retrievalModel?: Record<string, unknown> | null; description?: string } = {},
) {
  const technique = opts.technique ?? "high_quality";
  return t.prisma.dataset.create({
    data: {
      tenant_id: tenantId,
      name: opts.name ?? `ds-${randomUUID().slice(0, 8)}`,
      description: opts.description ?? "",
      indexing_technique: technique,
      embedding_model: technique === "high_quality" ? EMBEDDING_MODEL : null,
      embedding_model_provider: technique === "high_quality" ? "langgenius/openai/openai" : null,
      ...(opts.retrievalModel ? { retrieval_model: opts.retrievalModel as object } : {}),
    },
  });
}

export async function seedDocument(t: TestApp, dataset: { id: string; tenant_id: string; indexing_technique: string | null }, spec: DocSpec) {
  const count = await t.prisma.document.count({ where: { dataset_id: dataset.id } });
  const doc = await t.prisma.document.create({
    data: {
      tenant_id: dataset.tenant_id,
      dataset_id: dataset.id,
      position: count + 1,
      data_source_type: "upload_file",
      batch: "b1",
      name: spec.name,
      doc_form: spec.docForm ?? "text_model",
      enabled: spec.enabled ?? true,
      archived: spec.archived ?? false,
      indexing_status: spec.indexingStatus ?? "completed",
      ...(spec.metadata ? { doc_metadata: spec.metadata as object } : {}),
    },
  });
  const segments = [];
  const hq = dataset.indexing_technique === "high_quality";
  for (const [i, s] of spec.segments.entries()) {
    const seg = await t.prisma.documentSegment.create({
      data: {
        tenant_id: dataset.tenant_id,
        dataset_id: dataset.id,
        document_id: doc.id,
        position: i + 1,
        content: s.content,
        answer: s.answer ?? null,
        word_count: s.content.length,
        tokens: 0,
        index_node_id: randomUUID(),
        index_node_hash: `hash-${i}`,
        enabled: s.enabled ?? true,
        status: s.status ?? "completed",
        ...(s.keywords ? { keywords: s.keywords } : {}),
      },
    });
    await t.prisma.$executeRawUnsafe(`UPDATE document_segments SET search_vector = to_tsvector('simple', $1) WHERE id = $2::uuid`, toSearchText(s.content), seg.id);
    const children = [];
    for (const [j, c] of (s.children ?? []).entries()) {
      const child = await t.prisma.childChunk.create({
        data: { tenant_id: dataset.tenant_id, dataset_id: dataset.id, document_id: doc.id, segment_id: seg.id, position: j + 1, content: c, word_count: c.length, index_node_id: randomUUID() },
      });
      await t.prisma.$executeRawUnsafe(`UPDATE child_chunks SET search_vector = to_tsvector('simple', $1) WHERE id = $2::uuid`, toSearchText(c), child.id);
      if (hq) await insertEmbedding(t, dataset, doc.id, seg.id, child.id, child.index_node_id!, c);
      children.push(child);
    }
    if (hq && spec.docForm !== "hierarchical_model") await insertEmbedding(t, dataset, doc.id, seg.id, null, seg.index_node_id!, s.content);
    segments.push({ ...seg, children });
  }
  return { doc, segments };
}

async function insertEmbedding(t: TestApp, dataset: { id: string; tenant_id: string }, documentId: string, segmentId: string, childId: string | null, nodeId: string, text: string) {
  await t.prisma.$executeRawUnsafe(
    `INSERT INTO embeddings (tenant_id, dataset_id, document_id, segment_id, child_chunk_id, index_node_id, model, provider, dimension, embedding)
     VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6, $7, 'langgenius/openai/openai', ${DIM}, $8::vector)`,
    dataset.tenant_id,
    dataset.id,
    documentId,
    segmentId,
    childId,
    nodeId,
    EMBEDDING_MODEL,
    `[${fakeEmbedding(text, DIM).join(",")}]`,
  );
}

/** Cosine of two fake embeddings (both L2-normalised). */
export function fakeCosine(a: string, b: string): number {
  const x = fakeEmbedding(a, DIM);
  const y = fakeEmbedding(b, DIM);
  let dot = 0;
  for (let i = 0; i < DIM; i++) dot += x[i]! * y[i]!;
  return dot;
}

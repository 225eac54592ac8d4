// Shapes built from retrieval records: the prompt context (dsl-and-workflow §2.7), citations
// (`retriever_resources`, apps spec §7.3, key order as Dify's RetrieverResource) and the
// knowledge-retrieval node's result items (dsl-and-workflow §4.5).
import type { RetrievedChunk } from "../workflow/types.js";
import type { RetrievalRecord } from "./search.js";

/** `retriever_from`: "dev" for Service API runs (apps spec §7.3), "workflow" for graph nodes. */
export type CitationSource = "dev" | "workflow";

/** Q/A chunks read `question:<q> \nanswer:<a>` (§2.7); others their content. */
export function recordContent(r: RetrievalRecord): string {
  return r.segment.answer ? `question:${r.segment.content} \nanswer:${r.segment.answer}` : r.segment.content;
}

/** The `{{#context#}}` text: chunk contents joined by newlines, best first; null when empty. */
export function buildContext(records: RetrievalRecord[]): string | null {
  if (records.length === 0) return null;
  return records.map(recordContent).join("\n");
}

export function buildCitations(records: RetrievalRecord[], source: CitationSource): Record<string, unknown>[] {
  return records.map((r, i) => ({
    position: i + 1,
    dataset_id: r.dataset.id,
    dataset_name: r.dataset.name,
    document_id: r.document.id,
    document_name: r.document.name,
    data_source_type: r.document.data_source_type,
    segment_id: r.segment.id,
    retriever_from: source,
    score: r.score,
    hit_count: r.segment.hit_count,
    word_count: r.segment.word_count,
    segment_position: r.segment.position,
    index_node_hash: r.segment.index_node_hash,
    content: recordContent(r),
    page: null,
    doc_metadata: r.document.doc_metadata ?? null,
    title: null,
    files: null,
    summary: null,
  }));
}

export function buildNodeResult(r: RetrievalRecord, position: number): RetrievedChunk {
  const metadata: Record<string, unknown> = {
    _source: "knowledge",
    position,
    dataset_id: r.dataset.id,
    dataset_name: r.dataset.name,
    document_id: r.document.id,
    document_name: r.document.name,
    data_source_type: r.document.data_source_type,
    segment_id: r.segment.id,
    retriever_from: "workflow",
    score: r.score,
    segment_hit_count: r.segment.hit_count,
    segment_word_count: r.segment.word_count,
    segment_position: r.segment.position,
    segment_index_node_hash: r.segment.index_node_hash,
    doc_metadata: r.document.doc_metadata ?? null,
  };
  if (r.childChunks.length) metadata.child_chunks = r.childChunks.map((c) => ({ id: c.id, content: c.content, position: c.position, score: c.score }));
  return { content: recordContent(r), title: r.document.name, metadata, score: r.score };
}

// Segment ("chunk") and child-chunk bodies in Dify's key order (datasets spec §3.6, §3.7).
import type { ChildChunk, DocumentSegment } from "../../generated/prisma/client.js";
import { toUnix } from "../../lib/time.js";

export function childChunkItem(c: ChildChunk) {
  return {
    id: c.id,
    segment_id: c.segment_id,
    content: c.content,
    position: c.position,
    word_count: c.word_count,
    type: c.type,
    created_at: toUnix(c.created_at),
    updated_at: toUnix(c.updated_at),
  };
}

function keywordsOf(v: unknown): string[] | null {
  return Array.isArray(v) ? v.filter((k): k is string => typeof k === "string") : null;
}

/** `children` is the segment's child chunks when they are shown (hierarchical, not full-doc, §3.6). */
export function segmentItem(s: DocumentSegment, children: ChildChunk[]) {
  return {
    id: s.id,
    position: s.position,
    document_id: s.document_id,
    content: s.content,
    // Only image links to our own file-preview route would be re-signed; plain text is unchanged.
    sign_content: s.content,
    answer: s.answer,
    word_count: s.word_count,
    tokens: s.tokens,
    keywords: keywordsOf(s.keywords),
    index_node_id: s.index_node_id,
    index_node_hash: s.index_node_hash,
    hit_count: s.hit_count,
    enabled: s.enabled,
    disabled_at: toUnix(s.disabled_at),
    disabled_by: s.disabled_by,
    status: s.status,
    created_by: s.created_by,
    created_at: toUnix(s.created_at),
    updated_at: toUnix(s.updated_at),
    updated_by: s.updated_by,
    indexing_at: toUnix(s.indexing_at),
    completed_at: toUnix(s.completed_at),
    error: s.error,
    stopped_at: toUnix(s.stopped_at),
    child_chunks: children.map(childChunkItem),
    // Multimodal attachments and summary indexes are not implemented.
    attachments: [],
    summary: null,
  };
}

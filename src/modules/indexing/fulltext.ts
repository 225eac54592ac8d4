// Full-text indexing text (datasets spec §11.7: "full-text index provided by the vector store on
// the same text"; §12.1 full_text_search / keyword_search). Postgres' `simple` parser splits on
// spaces and punctuation only, so a Chinese or Japanese sentence would become one giant token.
// Both sides therefore go through the same word segmentation (Intl.Segmenter, locale-independent
// ICU dictionaries for CJK) and Postgres only sees space-separated words:
//   index: search_vector = to_tsvector('simple', toSearchText(content))
//   query: search_vector @@ plainto_tsquery('simple', toSearchQuery(query))
// The retrieval side's `fullTextQueryText` (src/modules/retrieval/terms.ts) is the same
// segmentation; keep the two in step.

const segmenter = new Intl.Segmenter("und", { granularity: "word" });

/** Word-like segments, lower-cased (punctuation and spaces dropped). */
function segmentWords(text: string): string[] {
  const out: string[] = [];
  for (const s of segmenter.segment(text)) {
    if (!s.isWordLike) continue;
    const w = s.segment.toLowerCase().trim();
    if (w) out.push(w);
  }
  return out;
}

/** The text fed to `to_tsvector('simple', …)` for a segment or child chunk. */
export function toSearchText(text: string): string {
  return segmentWords(text).join(" ");
}

/** The text fed to `plainto_tsquery('simple', …)` for a query (every word must match, as Dify's pgvector full-text search). */
export function toSearchQuery(query: string): string {
  return segmentWords(query).join(" ");
}

/** The same query as `to_tsquery` OR-syntax (any word matches), for keyword-style recall. */
export function toSearchQueryAny(query: string): string {
  // Quoting each lexeme keeps tsquery operators typed by users (&, |, !, :) literal.
  return [...new Set(segmentWords(query))].map((w) => `'${w.replaceAll("'", "''").replaceAll("\\", "\\\\")}'`).join(" | ");
}

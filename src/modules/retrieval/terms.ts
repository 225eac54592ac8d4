// Query-side text handling for retrieval. Dify uses jieba for keywords (datasets spec §11.7, §12.1
// keyword_search and the weighted-score keyword channel); Servify segments with Intl.Segmenter
// (DESIGN §4), the same segmentation the indexing side uses for `search_vector`, so CJK queries
// find CJK chunks. Pure functions: no database, no models.

const segmenter = new Intl.Segmenter("und", { granularity: "word" });

// A small multilingual stop-word list in the spirit of jieba's (which Dify loads before TF-IDF
// extraction): words that carry no topic and would make every chunk "match".
const STOP_WORDS = new Set(
  (
    "a an and are as at be but by for from has have how i if in into is it its of on or so that the their then there these this to " +
    "was we were what when where which who why will with you your do does can could should would not no yes " +
    "的 了 和 是 在 我 有 就 不 人 都 一 也 很 到 说 要 去 你 会 着 没有 看 好 自己 这 那 吗 呢 吧 啊 怎么 如何 什么 为什么"
  ).split(/\s+/),
);

/** Word-like segments, lower-cased, in order (duplicates kept). */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const s of segmenter.segment(text)) {
    if (!s.isWordLike) continue;
    const w = s.segment.toLowerCase().trim();
    if (w) out.push(w);
  }
  return out;
}

/**
 * Keywords of a text (jieba's `extract_tags` stand-in): distinct non-stop-word words, in first
 * occurrence order, at most `max` when given (Dify keeps 10 for a keyword-search query, §12.1).
 */
export function extractKeywords(text: string, max?: number): string[] {
  const seen = new Set<string>();
  for (const w of words(text)) {
    if (STOP_WORDS.has(w) || seen.has(w)) continue;
    // Single punctuation-free latin letters / digits carry no topic either.
    if (w.length === 1 && /^[a-z0-9]$/.test(w)) continue;
    seen.add(w);
    if (max !== undefined && seen.size >= max) break;
  }
  return [...seen];
}

/** The query as segmented text for `plainto_tsquery('simple', …)`; the indexing side's toSearchQuery is the one used. */
export { toSearchQuery as fullTextQueryText } from "../indexing/fulltext.js";

/**
 * TF-IDF cosine between the query keywords and each document's keywords, with IDF computed over
 * the candidate set only (datasets spec §12.1 weighted_score: idf(k) = ln((1+N)/(1+df(k))) + 1,
 * tf = raw counts). Keyword lists are sets (jieba returns distinct tags), so tf is 0 or 1.
 */
export function keywordScores(query: string, documents: string[]): number[] {
  const q = extractKeywords(query);
  const docs = documents.map((d) => extractKeywords(d));
  const n = docs.length;
  const df = new Map<string, number>();
  for (const kws of docs) for (const k of kws) df.set(k, (df.get(k) ?? 0) + 1);
  const idf = (k: string) => (df.has(k) ? Math.log((1 + n) / (1 + df.get(k)!)) + 1 : 0);
  const qVec = new Map<string, number>();
  for (const k of q) qVec.set(k, (qVec.get(k) ?? 0) + idf(k));
  const qNorm = Math.sqrt([...qVec.values()].reduce((s, v) => s + v * v, 0));
  return docs.map((kws) => {
    const dVec = new Map<string, number>();
    for (const k of kws) dVec.set(k, (dVec.get(k) ?? 0) + idf(k));
    const dNorm = Math.sqrt([...dVec.values()].reduce((s, v) => s + v * v, 0));
    if (!qNorm || !dNorm) return 0;
    let dot = 0;
    for (const [k, v] of qVec) dot += v * (dVec.get(k) ?? 0);
    return dot / (qNorm * dNorm);
  });
}

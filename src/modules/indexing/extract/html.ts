// HTML → text as BeautifulSoup's `get_text()` (Dify's HtmlExtractor, datasets spec §11.2): every
// text node in document order, entities decoded, nothing inserted between nodes; script, style
// and template contents and comments are not text (bs4 ≥ 4.10). The result is stripped.
import { Parser } from "htmlparser2";
import { pyStrip } from "../clean.js";

const NON_TEXT = new Set(["script", "style", "template"]);

export function htmlToText(html: string): string {
  let out = "";
  let skip = 0;
  const parser = new Parser(
    {
      onopentagname(name) {
        if (NON_TEXT.has(name)) skip++;
      },
      onclosetag(name) {
        if (NON_TEXT.has(name) && skip > 0) skip--;
      },
      ontext(text) {
        if (skip === 0) out += text;
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  return pyStrip(out);
}

/** Block-level text elements (paragraphs, headings, list items …) for the Unstructured-style readers. */
export function htmlBlocks(html: string): string[] {
  const BLOCK = new Set(["p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "pre", "blockquote", "br", "section", "article", "title", "td", "th", "dd", "dt"]);
  const blocks: string[] = [];
  let cur = "";
  let skip = 0;
  const flush = () => {
    const t = pyStrip(cur.replace(/\s+/g, " "));
    if (t) blocks.push(t);
    cur = "";
  };
  const parser = new Parser(
    {
      onopentagname(name) {
        if (NON_TEXT.has(name)) skip++;
        else if (BLOCK.has(name)) flush();
      },
      onclosetag(name) {
        if (NON_TEXT.has(name) && skip > 0) skip--;
        else if (BLOCK.has(name)) flush();
      },
      ontext(text) {
        if (skip === 0) cur += text;
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  flush();
  return blocks;
}

/**
 * Unstructured's `chunk_by_title(max_characters=2000, combine_text_under_n_chars=2000)` as Dify's
 * EPUB / e-mail extractors use it, simplified: consecutive elements are packed into units of at
 * most 2,000 characters joined by blank lines; a longer element is cut at 2,000 characters.
 */
export function packElements(elements: string[], max = 2000): string[] {
  const units: string[] = [];
  let cur: string[] = [];
  let len = 0;
  const flush = () => {
    if (cur.length) units.push(cur.join("\n\n"));
    cur = [];
    len = 0;
  };
  for (const e of elements) {
    const chars = Array.from(e);
    if (chars.length > max) {
      flush();
      for (let i = 0; i < chars.length; i += max) units.push(chars.slice(i, i + max).join(""));
      continue;
    }
    const added = chars.length + (cur.length ? 2 : 0);
    if (len + added > max) flush();
    cur.push(e);
    len += chars.length + (cur.length > 1 ? 2 : 0);
  }
  flush();
  return units;
}

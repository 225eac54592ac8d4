// Text cleaning before splitting (datasets spec §11.3), a port of Dify's `CleanProcessor.clean`
// plus the Python string helpers the splitters rely on (`str.strip`, `len`).

export interface PreProcessingRule {
  id: string;
  enabled: boolean;
}

/** Python's `str.isspace()` set, which `str.strip()` removes (differs from JS `trim()`: JS also
 * strips U+FEFF, Python also strips U+001C–U+001F and U+0085). */
const PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP_RE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");

/** Python `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP_RE, "");
}

/** Python `len(str)`: code points, not UTF-16 units (spec §11.4, pitfall §15.1). */
export function cpLen(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

// §11.3 "always" steps. The character class is Dify's pattern verbatim, including the quirk that
// \xEF \xBF \xBE (meant as the UTF-8 bytes of U+FFFE) delete the characters ï ¿ ¾.
const INVALID_SYMBOLS = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\xEF\xBF\xBE]/g;
const EXTRA_NEWLINES = /\n{3,}/g;
const EXTRA_SPACES = /[\t\f\r\x20\u00a0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]{2,}/g;
const EMAIL = /([a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+)/g;
const MARKDOWN_IMAGE = /!\[.*?\]\((https?:\/\/[^\s)]+)\)/g;
const URL = /https?:\/\/[^\s)]+/g;

/**
 * Dify's `CleanProcessor.clean(text, process_rule)`: the fixed clean-up, then each enabled
 * pre-processing rule in the rule's order. Unknown rule ids are ignored (§5.2).
 */
export function cleanText(text: string, preProcessingRules: PreProcessingRule[] | null | undefined): string {
  let t = text.replaceAll("<|", "<").replaceAll("|>", ">");
  t = t.replace(INVALID_SYMBOLS, "");
  t = t.replaceAll("\ufffe", "");
  for (const rule of preProcessingRules ?? []) {
    if (rule.enabled !== true) continue;
    if (rule.id === "remove_extra_spaces") {
      t = t.replace(EXTRA_NEWLINES, "\n\n");
      t = t.replace(EXTRA_SPACES, " ");
    } else if (rule.id === "remove_urls_emails") {
      t = t.replace(EMAIL, "");
      // Markdown image URLs survive: Dify swaps them for placeholders (rewriting the image to
      // `![image](…)`), removes the remaining URLs, then puts the image URLs back.
      const images: string[] = [];
      t = t.replace(MARKDOWN_IMAGE, (_m, url: string) => {
        const placeholder = `__MARKDOWN_IMAGE_URL_${images.length}__`;
        images.push(url);
        return `![image](${placeholder})`;
      });
      t = t.replace(URL, "");
      images.forEach((url, i) => {
        t = t.replaceAll(`__MARKDOWN_IMAGE_URL_${i}__`, url);
      });
    }
  }
  return t;
}

// §11.5 remove_leading_symbols. `!`, `-`, `[`, `]`, `{`, `|`, `}` and U+2026 `…` are kept.
const LEADING_LINK = /^\[([^\]]+)\]\((https?:\/\/[^)]+)\)/;
const LEADING_SYMBOLS = /^[\u2000-\u2025\u2027-\u206F\u2E00-\u2E7F\u3000-\u300F\u3012-\u303F"#$%&'()*+,./:;<=>?@^_`~]+/;

/** Dify's `remove_leading_symbols`: a leading Markdown link is kept as is. */
export function removeLeadingSymbols(text: string): string {
  if (LEADING_LINK.test(text)) return text;
  return text.replace(LEADING_SYMBOLS, "");
}

// Splitting (datasets spec §11.4–11.5): ports of Dify's `EnhanceRecursiveCharacterTextSplitter`
// (automatic mode) and `FixedRecursiveCharacterTextSplitter` (custom / hierarchical modes), and
// the per-chunk post-processing of the paragraph, parent-child and Q&A index processors.
// Every length is a count of code points (§11.4, §15.1), never UTF-16 units or tokens.
import { createHash, randomUUID } from "node:crypto";
import { cleanText, cpLen, pyStrip, removeLeadingSymbols, type PreProcessingRule } from "./clean.js";

/** A configuration problem found while indexing: the document ends in `error` with this message (§5.2). */
export class SplitConfigError extends Error {
  override readonly name = "SplitConfigError";
}

export interface Segmentation {
  separator?: string | undefined;
  /** Named tokens, measured in characters (§11.4). */
  max_tokens: number;
  chunk_overlap?: number | undefined;
}

export interface ProcessRuleRules {
  pre_processing_rules?: PreProcessingRule[] | null | undefined;
  segmentation?: Segmentation | null | undefined;
  parent_mode?: "paragraph" | "full-doc" | null | undefined;
  subchunk_segmentation?: Segmentation | null | undefined;
}

export interface ProcessRule {
  mode: "automatic" | "custom" | "hierarchical";
  rules?: ProcessRuleRules | null | undefined;
}

/** `DatasetProcessRule.AUTOMATIC_RULES` (§3.10): used whenever mode=automatic, whatever is stored. */
export const AUTOMATIC_RULES: Required<Pick<ProcessRuleRules, "pre_processing_rules">> & { segmentation: Segmentation } = {
  pre_processing_rules: [
    { id: "remove_extra_spaces", enabled: true },
    { id: "remove_urls_emails", enabled: false },
  ],
  segmentation: { max_tokens: 500, chunk_overlap: 50 },
};

/** `INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH` default (§5.2). */
export const DEFAULT_MAX_SEGMENTATION_LENGTH = 4000;

const RECURSIVE_SEPARATORS = ["\n\n", "。", ". ", " ", ""];

/** `helper.generate_text_hash`: SHA-256 hex of `text + "None"` (§11.5, pitfall §15.3). */
export function textHash(text: string): string {
  return createHash("sha256").update(text + "None", "utf8").digest("hex");
}

/**
 * The user's separator as Dify reads it (§11.4 step 1): the typed two characters `\n` become a
 * newline, then Python `unicode_escape` sequences (`\t`, `\u3002`, `\x41`, `\\` …) are decoded.
 * Characters outside escapes are kept as typed (Python would mangle non-Latin-1 text here; a
 * separator such as "。" typed literally must keep working).
 */
export function normaliseSeparator(separator: string): string {
  const s = separator.replaceAll("\\n", "\n");
  return s.replace(/\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{1,3}|[\\'"abfnrtv])/g, (_m, esc: string) => {
    const c = esc[0]!;
    if (c === "U" || c === "u" || c === "x") {
      const cp = parseInt(esc.slice(1), 16);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : _m;
    }
    if (c >= "0" && c <= "7") return String.fromCodePoint(parseInt(esc, 8));
    const simple: Record<string, string> = { "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
    return simple[c] ?? _m;
  });
}

/** Python `re.search(sep, text)` for the fixed separator list: ". " is a regex (any char but \n, then a space). */
function regexFound(sep: string, text: string): boolean {
  if (sep === ". ") return /[^\n] /.test(text);
  return text.includes(sep);
}

/** Split on a literal separator, keeping it at the end of every piece but the last (§11.4). */
function splitKeepingSeparator(text: string, sep: string): string[] {
  const parts = text.split(sep);
  return parts.map((p, i) => (i < parts.length - 1 ? p + sep : p));
}

const dropEmpty = (pieces: string[]) => pieces.filter((p) => p !== "" && p !== "\n");

export class TextSplitter {
  constructor(
    readonly chunkSize: number,
    readonly chunkOverlap: number,
  ) {
    // TextSplitter.__init__ (§5.2: detected by the worker, the document ends in `error`).
    if (chunkOverlap > chunkSize) {
      throw new SplitConfigError(`Got a larger chunk overlap (${chunkOverlap}) than chunk size (${chunkSize}), should be smaller.`);
    }
  }

  /** `_merge_splits` with joiner "" (separators are kept on the pieces). */
  protected merge(pieces: string[]): string[] {
    const out: string[] = [];
    let window: string[] = [];
    let lens: number[] = [];
    let total = 0;
    const emit = () => {
      const doc = pyStrip(window.join(""));
      if (doc !== "") out.push(doc);
    };
    for (const p of pieces) {
      const len = cpLen(p);
      if (total + len > this.chunkSize && window.length > 0) {
        emit();
        while (total > this.chunkOverlap || (total + len > this.chunkSize && total > 0)) {
          total -= lens[0]!;
          window = window.slice(1);
          lens = lens.slice(1);
        }
      }
      window.push(p);
      lens.push(len);
      total += len;
    }
    if (window.length > 0) emit();
    return out;
  }

  /** Automatic-mode recursion (`RecursiveCharacterTextSplitter._split_text`): separators detected as regexes. */
  protected recursiveSplit(text: string, separators: string[]): string[] {
    let sep = separators[separators.length - 1] ?? "";
    let rest: string[] = [];
    for (let i = 0; i < separators.length; i++) {
      const s = separators[i]!;
      if (s === "") {
        sep = s;
        break;
      }
      if (regexFound(s, text)) {
        sep = s;
        rest = separators.slice(i + 1);
        break;
      }
    }
    const pieces = dropEmpty(sep ? splitKeepingSeparator(text, sep) : Array.from(text));
    return this.mergeOrRecurse(pieces, rest);
  }

  /**
   * Pieces shorter than chunk_size are merged into chunks; longer ones are split again with the
   * remaining separators (or kept whole when none remain).
   */
  protected mergeOrRecurse(pieces: string[], rest: string[]): string[] {
    const out: string[] = [];
    let good: string[] = [];
    for (const p of pieces) {
      if (cpLen(p) < this.chunkSize) {
        good.push(p);
        continue;
      }
      if (good.length) {
        out.push(...this.merge(good));
        good = [];
      }
      if (rest.length === 0) out.push(p);
      else out.push(...this.recursiveSplit(p, rest));
    }
    if (good.length) out.push(...this.merge(good));
    return out;
  }

  split(text: string): string[] {
    return this.recursiveSplit(text, RECURSIVE_SEPARATORS);
  }
}

/** Custom / hierarchical modes (`FixedRecursiveCharacterTextSplitter`, §11.4 steps 1–4). */
export class FixedSeparatorSplitter extends TextSplitter {
  constructor(
    chunkSize: number,
    chunkOverlap: number,
    readonly separator: string,
  ) {
    super(chunkSize, chunkOverlap);
  }

  override split(text: string): string[] {
    // Step 2: pieces that fit are chunks of their own, never merged (pitfall §15.2).
    const pieces = this.separator ? text.split(this.separator) : [text];
    const out: string[] = [];
    for (const p of pieces) {
      if (cpLen(p) > this.chunkSize) out.push(...this.fixedRecursiveSplit(p));
      else out.push(p);
    }
    return out;
  }

  /** Step 3: the first separator that literally occurs; spaces are dropped; "" gets its own loop. */
  private fixedRecursiveSplit(text: string): string[] {
    let sep = "";
    let rest: string[] = [];
    for (let i = 0; i < RECURSIVE_SEPARATORS.length; i++) {
      const s = RECURSIVE_SEPARATORS[i]!;
      if (s === "") break;
      if (text.includes(s)) {
        sep = s;
        rest = RECURSIVE_SEPARATORS.slice(i + 1);
        break;
      }
    }
    if (sep === "") return this.characterWindows(text);
    const pieces = dropEmpty(sep === " " ? text.split(/ +/) : splitKeepingSeparator(text, sep));
    // Longer pieces continue with the automatic-mode rule (regex detection) on the remaining separators.
    return this.mergeOrRecurse(pieces, rest);
  }

  /** Character level: windows of ≤ chunk_size characters; a window's last `overlap` characters start the next. */
  private characterWindows(text: string): string[] {
    const out: string[] = [];
    let current = "";
    let currentLen = 0;
    let overlap = "";
    let overlapLen = 0;
    for (const ch of dropEmpty(Array.from(text))) {
      if (currentLen + 1 <= this.chunkSize - this.chunkOverlap) {
        current += ch;
        currentLen += 1;
      } else if (currentLen + 1 <= this.chunkSize) {
        current += ch;
        currentLen += 1;
        overlap += ch;
        overlapLen += 1;
      } else {
        out.push(current);
        current = overlap + ch;
        currentLen = overlapLen + 1;
        overlap = "";
        overlapLen = 0;
      }
    }
    if (current) out.push(current);
    return out;
  }
}

/**
 * `_get_splitter`: automatic mode → 500/50 recursive; custom / hierarchical → the user's
 * separator and length, checked against 50…maxLength here (asynchronously, §5.2).
 */
export function makeSplitter(mode: ProcessRule["mode"], seg: Segmentation | null | undefined, maxLength = DEFAULT_MAX_SEGMENTATION_LENGTH): TextSplitter {
  if (mode === "custom" || mode === "hierarchical") {
    const maxTokens = seg?.max_tokens ?? 0;
    if (maxTokens < 50 || maxTokens > maxLength) {
      throw new SplitConfigError(`Custom segment length should be between 50 and ${maxLength}.`);
    }
    const separator = seg?.separator ? normaliseSeparator(seg.separator) : "";
    return new FixedSeparatorSplitter(maxTokens, seg?.chunk_overlap ?? 0, separator);
  }
  return new TextSplitter(AUTOMATIC_RULES.segmentation.max_tokens, AUTOMATIC_RULES.segmentation.chunk_overlap ?? 0);
}

/** The rules actually applied: automatic mode always uses AUTOMATIC_RULES (§3.10). */
export function effectiveRules(rule: ProcessRule): ProcessRuleRules {
  return rule.mode === "automatic" ? AUTOMATIC_RULES : (rule.rules ?? {});
}

// ---------------------------------------------------------------------------
// Index processors' transform step (§11.5)
// ---------------------------------------------------------------------------

export interface Chunk {
  content: string;
  /** QA mode only. */
  answer?: string | undefined;
  /** UUIDv4 of the vector / keyword node. */
  indexNodeId: string;
  /** SHA-256 of the pre-strip chunk + "None" (§11.6). */
  indexNodeHash: string;
  /** Hierarchical mode only: child chunks in order. */
  children?: Array<{ content: string; indexNodeId: string; indexNodeHash: string }> | undefined;
}

/** `word_count` of a chunk: characters of content (+ answer) (§3.6, §11.6). */
export function wordCount(content: string, answer?: string | null): number {
  return cpLen(content) + (answer ? cpLen(answer) : 0);
}

/** Paragraph index processor (`text_model`): clean, split, hash, strip leading symbols. */
export function transformParagraph(units: string[], rule: ProcessRule, opts: { maxLength?: number } = {}): Chunk[] {
  const rules = effectiveRules(rule);
  const splitter = makeSplitter(rule.mode, rules.segmentation, opts.maxLength);
  const out: Chunk[] = [];
  for (const unit of units) {
    const cleaned = cleanText(unit, rules.pre_processing_rules);
    for (const piece of splitter.split(cleaned)) {
      if (!pyStrip(piece)) continue;
      // Hash before the leading-symbol removal (pitfall §15.3).
      const hash = textHash(piece);
      const content = pyStrip(removeLeadingSymbols(piece));
      if (content.length === 0) continue;
      out.push({ content, indexNodeId: randomUUID(), indexNodeHash: hash });
    }
  }
  return out;
}

/** Parent-child processor: a single leading "." or "。" is removed and only then stripped. */
function dropLeadingDot(text: string): string {
  return text.startsWith(".") || text.startsWith("。") ? pyStrip(text.slice(1)) : text;
}

function childChunks(parent: string, rule: ProcessRule, rules: ProcessRuleRules, maxLength?: number): NonNullable<Chunk["children"]> {
  if (!rules.subchunk_segmentation) throw new SplitConfigError("No subchunk segmentation found in rules.");
  const splitter = makeSplitter(rule.mode, rules.subchunk_segmentation, maxLength);
  const out: NonNullable<Chunk["children"]> = [];
  for (const piece of splitter.split(parent)) {
    if (!pyStrip(piece)) continue;
    const hash = textHash(piece);
    const content = dropLeadingDot(piece);
    if (content.length === 0) continue;
    out.push({ content, indexNodeId: randomUUID(), indexNodeHash: hash });
  }
  return out;
}

/** Parent-child processor (`hierarchical_model`), paragraph and full-doc parent modes. */
export function transformHierarchical(units: string[], rule: ProcessRule, opts: { maxLength?: number } = {}): Chunk[] {
  const rules = effectiveRules(rule);
  const parentMode = rules.parent_mode ?? "paragraph";
  if (parentMode === "full-doc") {
    // The whole document is one parent, joined with "\n" and NOT cleaned (§11.3, §11.5).
    const text = units.join("\n");
    const children = childChunks(text, rule, rules, opts.maxLength);
    return [{ content: text, indexNodeId: randomUUID(), indexNodeHash: textHash(text), children }];
  }
  const splitter = makeSplitter(rule.mode, rules.segmentation, opts.maxLength);
  const out: Chunk[] = [];
  for (const unit of units) {
    const cleaned = cleanText(unit, rules.pre_processing_rules);
    for (const piece of splitter.split(cleaned)) {
      if (!pyStrip(piece)) continue;
      const hash = textHash(piece);
      const content = dropLeadingDot(piece);
      if (content.length === 0) continue;
      out.push({ content, indexNodeId: randomUUID(), indexNodeHash: hash, children: childChunks(content, rule, rules, opts.maxLength) });
    }
  }
  return out;
}

/** QA processor, first half: the texts sent to the LLM (split + leading symbols removed, no strip). */
export function qaSourceChunks(units: string[], rule: ProcessRule, opts: { maxLength?: number } = {}): string[] {
  const rules = effectiveRules(rule);
  const splitter = makeSplitter(rule.mode, rules.segmentation, opts.maxLength);
  const out: string[] = [];
  for (const unit of units) {
    const cleaned = cleanText(unit, rules.pre_processing_rules);
    for (const piece of splitter.split(cleaned)) {
      if (!pyStrip(piece)) continue;
      const content = removeLeadingSymbols(piece);
      if (content.length > 0) out.push(content);
    }
  }
  return out;
}

/**
 * `QAIndexProcessor._format_split_text`: `Q<n>:` question `A<n>:` answer pairs; answers are
 * stripped and re-indented (newline + whitespace → newline); pairs missing either side are dropped.
 */
export function parseQaPairs(text: string): Array<{ question: string; answer: string }> {
  const re = /Q\d+:\s*(.*?)\s*A\d+:\s*([\s\S]*?)(?=Q\d+:|$)/gu;
  const out: Array<{ question: string; answer: string }> = [];
  for (const m of text.matchAll(re)) {
    const q = m[1] ?? "";
    const a = m[2] ?? "";
    if (q && a) out.push({ question: q, answer: pyStrip(a).replace(/\n\s*/g, "\n") });
  }
  return out;
}

/** Q&A pairs → chunks: content = question, answer, hash over the question (§11.5). */
export function qaChunks(pairs: Array<{ question: string; answer: string }>): Chunk[] {
  return pairs.map((p) => ({ content: p.question, answer: p.answer, indexNodeId: randomUUID(), indexNodeHash: textHash(p.question) }));
}

/** Dify's `GENERATOR_QA_PROMPT` (the system message of the Q&A generation call). */
export function qaSystemPrompt(language: string): string {
  return (
    "<Task> The user will send a long text. Generate a Question and Answer pairs only using the knowledge" +
    " in the long text. Please think step by step." +
    "Step 1: Understand and summarize the main content of this text.\n" +
    "Step 2: What key information or concepts are mentioned in this text?\n" +
    "Step 3: Decompose or combine multiple pieces of information and concepts.\n" +
    "Step 4: Generate questions and answers based on these key information and concepts.\n" +
    "<Constraints> The questions should be clear and detailed, and the answers should be detailed and complete. " +
    `You must answer in ${language}, in a style that is clear and detailed in ${language}.` +
    ` No language other than ${language} should be used. \n` +
    "<Format> Use the following format: Q1:\nA1:\nQ2:\nA2:...\n" +
    "<QA Pairs>"
  );
}

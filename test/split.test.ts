// Cleaning and splitting (datasets spec §11.3–11.5) with the pitfalls of §15.1–15.3, checked
// against chunk lists worked out by hand from Dify's algorithms.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cleanText, cpLen, pyStrip, removeLeadingSymbols } from "../src/modules/indexing/clean.js";
import {
  FixedSeparatorSplitter,
  TextSplitter,
  makeSplitter,
  normaliseSeparator,
  parseQaPairs,
  qaChunks,
  qaSourceChunks,
  textHash,
  transformHierarchical,
  transformParagraph,
  wordCount,
  type ProcessRule,
} from "../src/modules/indexing/split.js";

const custom = (separator: string, max_tokens: number, chunk_overlap = 0, pre: Array<{ id: string; enabled: boolean }> = []): ProcessRule => ({
  mode: "custom",
  rules: { pre_processing_rules: pre, segmentation: { separator, max_tokens, chunk_overlap } },
});
const contents = (chunks: Array<{ content: string }>) => chunks.map((c) => c.content);

describe("cleaning (§11.3)", () => {
  it("always fixes <| |>, deletes control characters, the ï ¿ ¾ quirk and U+FFFE", () => {
    expect(cleanText("<|im_start|>a\x00b\x07c\x0bd\x1fe\x7ff\ufffeg ï¿¾ h\tz\r\n", null)).toBe("<im_start>abcdefg  h\tz\r\n");
  });
  it("remove_extra_spaces collapses 3+ newlines and 2+ horizontal spaces only", () => {
    const rules = [{ id: "remove_extra_spaces", enabled: true }];
    expect(cleanText("a\n\n\n\nb\n\nc   d\t\te\u3000\u3000f g", rules)).toBe("a\n\nb\n\nc d e f g");
  });
  it("remove_urls_emails deletes e-mails and URLs but keeps Markdown image URLs (alt becomes 'image')", () => {
    const rules = [{ id: "remove_urls_emails", enabled: true }];
    expect(cleanText("mail me@x.com, see https://a.b/c) and ![pic](https://img.example/x.png) ok", rules)).toBe(
      "mail , see ) and ![image](https://img.example/x.png) ok",
    );
  });
  it("disabled and unknown rules do nothing", () => {
    expect(cleanText("a   b", [{ id: "remove_extra_spaces", enabled: false }, { id: "whatever", enabled: true }])).toBe("a   b");
  });
  it("remove_leading_symbols keeps links and ! - [ … but strips punctuation and CJK symbols", () => {
    expect(removeLeadingSymbols("[a](https://x.y) rest")).toBe("[a](https://x.y) rest");
    expect(removeLeadingSymbols("## Title")).toBe(" Title");
    expect(removeLeadingSymbols("、。「引用」")).toBe("引用」");
    expect(removeLeadingSymbols("!important")).toBe("!important");
    expect(removeLeadingSymbols("- item")).toBe("- item");
    expect(removeLeadingSymbols("…more")).toBe("…more");
    expect(removeLeadingSymbols("【tag】")).toBe("【tag】");
  });
  it("pyStrip follows Python's whitespace set, not JavaScript's", () => {
    expect(pyStrip("\u3000\x1c a \x85")).toBe("a");
    expect(pyStrip("\ufeffa")).toBe("\ufeffa");
  });
});

describe("lengths are code points (§15.1)", () => {
  it("counts an emoji as one character", () => {
    expect(cpLen("😀😀a")).toBe(3);
    expect(wordCount("😀", "é")).toBe(2);
  });
  it("a 50-emoji piece fits max_tokens 50 (UTF-16 length 100)", () => {
    const piece = "😀".repeat(50);
    expect(contents(transformParagraph([`${piece}\nnext`], custom("\\n", 50)))).toEqual([piece, "next"]);
  });
});

describe("automatic mode (500/50, §11.4)", () => {
  it("merges \\n\\n paragraphs up to 500 characters", () => {
    const text = `${"A".repeat(300)}\n\n${"B".repeat(300)}\n\n${"C".repeat(100)}`;
    expect(new TextSplitter(500, 50).split(text)).toEqual(["A".repeat(300), `${"B".repeat(300)}\n\n${"C".repeat(100)}`]);
  });
  it('". " is detected as a regex, then split literally; words overlap by ≤ 50 characters', () => {
    // No ". " occurs, but /. / matches "d ": the whole text is one piece, split again at spaces.
    const text = Array(120).fill("abcd").join(" ");
    const chunks = contents(transformParagraph([text], { mode: "automatic" }));
    expect(chunks).toEqual([Array(100).fill("abcd").join(" "), Array(30).fill("abcd").join(" ")]);
  });
  it("applies remove_extra_spaces even when the stored rule says otherwise", () => {
    const rule: ProcessRule = { mode: "automatic", rules: { pre_processing_rules: [{ id: "remove_extra_spaces", enabled: false }] } };
    expect(contents(transformParagraph(["a    b"], rule))).toEqual(["a b"]);
  });
});

describe("custom mode (§11.4, pitfall §15.2)", () => {
  it("never merges separator pieces, however small", () => {
    expect(contents(transformParagraph(["a\nb\nc"], custom("\\n", 100)))).toEqual(["a", "b", "c"]);
  });
  it("decodes escapes in the separator", () => {
    expect(normaliseSeparator("\\n\\n")).toBe("\n\n");
    expect(normaliseSeparator("\\u3002")).toBe("。");
    expect(normaliseSeparator("\\t|")).toBe("\t|");
    expect(normaliseSeparator("。")).toBe("。");
    expect(contents(transformParagraph(["第一句。第二句。"], custom("\\u3002", 50)))).toEqual(["第一句", "第二句"]);
  });
  it("the separator is literal, never a regex", () => {
    expect(contents(transformParagraph(["a.b|c.d"], custom(".", 50)))).toEqual(["a", "b|c", "d"]);
  });
  it("splits oversize pieces at spaces, drops the spaces, overlaps only there", () => {
    const words = Array.from({ length: 12 }, (_, i) => `word${String(i + 1).padStart(2, "0")}`);
    const text = `short one###${words.join(" ")}`;
    expect(contents(transformParagraph([text], custom("###", 50, 10)))).toEqual([
      "short one",
      words.slice(0, 8).join(""),
      words.slice(7).join(""),
    ]);
  });
  it("character windows of ≤ max with the last `overlap` characters repeated", () => {
    const text = Array.from({ length: 120 }, (_, i) => String.fromCharCode(0x4e00 + i)).join("");
    expect(new FixedSeparatorSplitter(50, 10, "\n").split(text)).toEqual([text.slice(0, 50), text.slice(40, 90), text.slice(80, 120)]);
  });
  it("keeps the separator at the end of recursive pieces but the last", () => {
    const s = "一二三四五六七八九十。".repeat(6); // 66 chars, split at 。 and merged ≤ 50
    expect(new FixedSeparatorSplitter(50, 0, "#").split(s)).toEqual(["一二三四五六七八九十。".repeat(4), "一二三四五六七八九十。".repeat(2)]);
  });
  it("rejects lengths outside 50…4000 and overlap > size asynchronously (as errors)", () => {
    expect(() => makeSplitter("custom", { separator: "\n", max_tokens: 49 })).toThrow("Custom segment length should be between 50 and 4000.");
    expect(() => makeSplitter("custom", { separator: "\n", max_tokens: 4001 })).toThrow("Custom segment length should be between 50 and 4000.");
    expect(() => makeSplitter("custom", { separator: "\n", max_tokens: 60, chunk_overlap: 61 })).toThrow(
      "Got a larger chunk overlap (61) than chunk size (60), should be smaller.",
    );
  });
});

describe("post-split processing (§11.5, pitfall §15.3)", () => {
  it("hashes the chunk + 'None' before leading symbols are removed and strips after", () => {
    const [chunk] = transformParagraph(["## Title\nbody"], custom("\\n", 50));
    expect(chunk!.content).toBe("Title");
    expect(chunk!.indexNodeHash).toBe(createHash("sha256").update("## TitleNone").digest("hex"));
    expect(textHash("x")).toBe(createHash("sha256").update("xNone").digest("hex"));
    expect(chunk!.indexNodeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
  it("skips blank chunks and chunks that are only symbols", () => {
    expect(contents(transformParagraph(["a\n   \n***\nb"], custom("\\n", 50)))).toEqual(["a", "b"]);
  });
});

describe("hierarchical mode", () => {
  const rule = (parent_mode: "paragraph" | "full-doc"): ProcessRule => ({
    mode: "hierarchical",
    rules: {
      pre_processing_rules: [{ id: "remove_extra_spaces", enabled: true }],
      segmentation: { separator: "\\n\\n", max_tokens: 500 },
      parent_mode,
      subchunk_segmentation: { separator: "\\n", max_tokens: 50 },
    },
  });
  it("paragraph: parents by the separator, children by the subchunk separator", () => {
    const chunks = transformHierarchical(["P1 line1\nP1 line2\n\n. P2  line1\n\n  spaced  "], rule("paragraph"));
    expect(chunks.map((c) => [c.content, c.children!.map((x) => x.content)])).toEqual([
      ["P1 line1\nP1 line2", ["P1 line1", "P1 line2"]],
      // a single leading "." is removed, then stripped; spaces collapsed by remove_extra_spaces
      ["P2 line1", ["P2 line1"]],
      // not starting with "." or "。": kept as produced, whitespace included
      [" spaced ", [" spaced "]],
    ]);
  });
  it("full-doc: one parent of all units joined by \\n, not cleaned", () => {
    const [parent, ...rest] = transformHierarchical(["a    b", "c"], rule("full-doc"));
    expect(rest).toEqual([]);
    expect(parent!.content).toBe("a    b\nc");
    expect(parent!.children!.map((c) => c.content)).toEqual(["a    b", "c"]);
  });
  it("requires subchunk segmentation", () => {
    expect(() => transformHierarchical(["x"], { mode: "hierarchical", rules: { segmentation: { separator: "\n", max_tokens: 100 }, parent_mode: "paragraph" } })).toThrow(
      "No subchunk segmentation found in rules.",
    );
  });
});

describe("Q&A mode", () => {
  it("parses Q<n>:/A<n>: pairs and re-indents answers", () => {
    const pairs = parseQaPairs("Q1: What is it?\nA1: This.\n   Second line\nQ2: Why?\nA2:  Because. \nQ3: empty\nA3:");
    expect(pairs).toEqual([
      { question: "What is it?", answer: "This.\nSecond line" },
      { question: "Why?", answer: "Because." },
    ]);
    const [c] = qaChunks(pairs);
    expect(c!.content).toBe("What is it?");
    expect(c!.indexNodeHash).toBe(textHash("What is it?"));
  });
  it("source chunks keep their whitespace (leading symbols removed, no strip)", () => {
    expect(qaSourceChunks(["## a \n b"], custom("\\n", 50))).toEqual([" a ", " b"]);
  });
});

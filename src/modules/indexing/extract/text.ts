// Text decoding as Dify's TextExtractor / MarkdownExtractor / CSVExtractor do it (datasets spec
// §11.2): UTF-8 first, then the encodings a detector proposes (`detect_file_encodings`).
import chardet from "chardet";

/** Decodes bytes as UTF-8, else as the detected encoding; throws when nothing fits. */
export function decodeText(data: Buffer): string {
  try {
    return stripBom(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    for (const candidate of chardet.analyse(data)) {
      try {
        return stripBom(new TextDecoder(candidate.name.toLowerCase(), { fatal: true }).decode(data));
      } catch {
        continue;
      }
    }
    throw new Error("Decode failed: all detected encodings failed.");
  }
}

// Python's "utf-8" codec would keep a BOM as U+FEFF at the start of the first chunk; it is dropped
// here because no cleaning step removes it and it would break the first chunk's leading-symbol
// handling and full-text token.
function stripBom(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

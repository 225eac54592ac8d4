// Text extraction for knowledge documents (datasets spec §11.2) and workflow document-extractor
// nodes. The extractor is chosen by file extension as Dify's ExtractProcessor does with the
// default ETL (non-Unstructured); the formats Dify only reads through Unstructured (pptx, eml,
// epub) are read natively here. Output per format mirrors Dify's extractors (see each file).
import { csvUnits } from "./csv.js";
import { docxText } from "./docx.js";
import { emlUnits } from "./eml.js";
import { epubUnits } from "./epub.js";
import { htmlToText } from "./html.js";
import { markdownUnits } from "./markdown.js";
import { pdfUnits } from "./pdf.js";
import { pptxUnits } from "./pptx.js";
import { decodeText } from "./text.js";
import { xlsxUnits } from "./xlsx.js";

export interface ExtractInput {
  data: Buffer;
  /** With or without the dot, any case ("PDF", ".md"). */
  extension: string;
  mimeType?: string | null | undefined;
  name: string;
}

/** Extraction failed: the document ends in `error` with this message (§11.1). */
export class ExtractionError extends Error {
  override readonly name = "ExtractionError";
}

/**
 * Legacy binary Office / Outlook formats need Unstructured (or LibreOffice) in Dify; without it
 * they cannot be read. Message as Dify's document extractor's UnsupportedFileTypeError.
 */
const UNREADABLE = new Set(["doc", "ppt", "msg", "xls", "rtf", "odt", "odp", "ods", "pages", "key", "numbers"]);

export function normaliseExtension(ext: string): string {
  return ext.replace(/^\./, "").toLowerCase();
}

/**
 * The text units of a file (`ExtractProcessor.extract`): one per PDF page, per spreadsheet row,
 * per Markdown section, per CSV row, per slide …; a single unit for txt / html / docx.
 */
export async function extractUnits(file: ExtractInput): Promise<string[]> {
  const ext = normaliseExtension(file.extension);
  if (UNREADABLE.has(ext)) throw new ExtractionError(`Unsupported Extension Type: .${ext}`);
  const wrap = async <T>(what: string, fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ExtractionError) throw err;
      throw new ExtractionError(`Failed to extract text from ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  switch (ext) {
    case "xlsx":
      return wrap("Excel file", () => xlsxUnits(file.data));
    case "pdf":
      return wrap("PDF", () => pdfUnits(file.data));
    case "md":
    case "markdown":
    case "mdx":
      return wrap("Markdown", () => markdownUnits(decodeText(file.data)));
    case "htm":
    case "html":
      return wrap("HTML", () => [htmlToText(decodeText(file.data))]);
    case "docx":
      return wrap("DOCX", async () => [await docxText(file.data)]);
    case "csv":
      return wrap("CSV", () => csvUnits(decodeText(file.data)));
    case "pptx":
      return wrap("PPTX", () => pptxUnits(file.data));
    case "epub":
      return wrap("EPUB", () => epubUnits(file.data));
    case "eml":
      return wrap("EML", () => emlUnits(file.data));
    default:
      // txt, json, xml, vtt, properties, source code …: Dify's TextExtractor (raw text, one unit).
      return wrap("text file", () => [decodeText(file.data)]);
  }
}

/** All units joined by "\n" (`ExtractProcessor.load_from_upload_file(return_text=True)`). */
export async function extractText(file: ExtractInput): Promise<string> {
  return (await extractUnits(file)).join("\n");
}

// PDF (Dify's PdfExtractor with pypdfium2, datasets spec §11.2): one text unit per page. Text comes
// from PDF.js (unpdf's serverless build, pure JS); line breaks inside a page may differ from
// pdfium's.
import { extractText, getDocumentProxy } from "unpdf";

export async function pdfUnits(data: Buffer): Promise<string[]> {
  const pdf = await getDocumentProxy(new Uint8Array(data));
  try {
    const { text } = await extractText(pdf, { mergePages: false });
    return text;
  } finally {
    await pdf.loadingTask.destroy();
  }
}

// Dify's WordExtractor.parse_docx (datasets spec §11.2): body paragraphs and tables in document
// order, joined by "\n". A paragraph is the concatenation of its runs' stripped texts (runs that
// are only whitespace are skipped); a table is a Markdown table (header row, `---` row, one line
// per row; a cell's distinct paragraph texts joined by spaces; horizontally merged cells leave
// empty columns). Embedded images are not extracted (Servify stores no image files for chunks).
import JSZip from "jszip";
import { pyStrip } from "../clean.js";
import { local, parseXml, type XNode } from "./xml.js";

/** python-docx `Run.text`: w:t text, w:tab → "\t", w:br / w:cr → "\n". */
function runText(run: XNode): string {
  let s = "";
  for (const c of run.children) {
    const n = local(c.name);
    if (n === "t") s += c.children.map((t) => t.text).join("");
    else if (n === "tab") s += "\t";
    else if (n === "br" || n === "cr") s += "\n";
  }
  return s;
}

/** Direct runs only, as python-docx's `paragraph.runs` (hyperlink runs are not included). */
function paragraphText(p: XNode): string {
  return p.children
    .filter((c) => local(c.name) === "r")
    .map((r) => pyStrip(runText(r)))
    .filter((t) => t !== "")
    .join("");
}

function cellText(tc: XNode): string {
  const parts = tc.children.filter((c) => local(c.name) === "p").map((p) => pyStrip(paragraphText(p))).filter(Boolean);
  return [...new Set(parts)].join(" ");
}

function gridSpan(tc: XNode): number {
  const pr = tc.children.find((c) => local(c.name) === "tcPr");
  const span = pr?.children.find((c) => local(c.name) === "gridSpan");
  const v = Number(span?.attrs["w:val"] ?? 1);
  return Number.isFinite(v) && v > 0 ? v : 1;
}

function tableMarkdown(tbl: XNode): string {
  const rows = tbl.children.filter((c) => local(c.name) === "tr").map((tr) => tr.children.filter((c) => local(c.name) === "tc"));
  if (rows.length === 0) return "";
  const total = Math.max(...rows.map((cells) => cells.reduce((n, tc) => n + gridSpan(tc), 0)));
  const line = (cells: XNode[]) => {
    const out = new Array<string>(total).fill("");
    let col = 0;
    for (const tc of cells) {
      while (col < total && out[col] !== "") col++;
      if (col >= total) break;
      const span = gridSpan(tc);
      out[col] = pyStrip(cellText(tc));
      col += span;
    }
    return `| ${out.join(" | ")} |`;
  };
  const md = [line(rows[0]!), `| ${new Array(total).fill("---").join(" | ")} |`];
  for (const r of rows.slice(1)) md.push(line(r));
  return md.join("\n");
}

export async function docxText(data: Buffer): Promise<string> {
  const zip = await JSZip.loadAsync(data);
  const xml = await zip.file("word/document.xml")?.async("string");
  if (xml === undefined) throw new Error("word/document.xml is missing");
  const doc = parseXml(xml);
  const body = doc.flatMap((n) => n.children).find((n) => local(n.name) === "body");
  const content: string[] = [];
  for (const el of body?.children ?? []) {
    const n = local(el.name);
    if (n === "p") {
      const t = paragraphText(el);
      if (t) content.push(t);
    } else if (n === "tbl") {
      content.push(tableMarkdown(el));
    }
  }
  return content.join("\n");
}

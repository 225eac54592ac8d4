// XLSX (Dify's ExcelExtractor: openpyxl `data_only=True` + pandas, datasets spec §11.2): per sheet,
// the first row is the header; every following row that is not entirely empty is one text unit of
// `"header":"value"` pairs joined by ";", empty cells left out. Values print as pandas would:
// a numeric column with an empty cell is float ("3.0"), dates as "YYYY-MM-DD HH:MM:SS",
// booleans "True"/"False", formulas by their cached value. Hyperlink targets are not resolved.
import JSZip from "jszip";
import { find, findAll, local, parseXml, relationships, resolvePath, textOf, type XNode } from "./xml.js";

type Cell = string | number | boolean | Date | null;

/** Python `repr(float)`. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [m, e] = x.toExponential().split("e");
    const exp = Number(e);
    return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
function pyDate(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

function colIndex(ref: string): number {
  let n = 0;
  for (const ch of ref) {
    const c = ch.charCodeAt(0);
    if (c < 65 || c > 90) break;
    n = n * 26 + (c - 64);
  }
  return n - 1;
}

const BUILTIN_DATE_FORMATS = new Set([14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47]);

function dateStyles(stylesXml: string | undefined): Set<number> {
  const out = new Set<number>();
  if (!stylesXml) return out;
  const styles = parseXml(stylesXml);
  const custom = new Map<number, string>();
  for (const f of findAll(styles, "numFmt")) custom.set(Number(f.attrs.numFmtId), f.attrs.formatCode ?? "");
  const xfs = find(styles, "cellXfs");
  (xfs?.children.filter((c) => local(c.name) === "xf") ?? []).forEach((xf, i) => {
    const id = Number(xf.attrs.numFmtId ?? 0);
    const code = custom.get(id)?.replace(/"[^"]*"|\[[^\]]*\]/g, "");
    if (BUILTIN_DATE_FORMATS.has(id) || (code !== undefined && /[dmyhs]/i.test(code))) out.add(i);
  });
  return out;
}

function excelDate(serial: number): Date {
  // 1900 date system (Excel's 1900 leap-year bug: serials ≥ 61 are one day ahead).
  const days = serial >= 61 ? serial - 25569 : serial - 25568;
  return new Date(Math.round(days * 86400) * 1000);
}

function cellValue(c: XNode, shared: string[], dates: Set<number>): Cell {
  const t = c.attrs.t ?? "n";
  const v = c.children.find((x) => local(x.name) === "v");
  const raw = v ? textOf(v) : undefined;
  switch (t) {
    case "s":
      return raw === undefined ? null : (shared[Number(raw)] ?? null);
    case "inlineStr": {
      const is = c.children.find((x) => local(x.name) === "is");
      return is ? findAll(is.children, "t").map(textOf).join("") : null;
    }
    case "str":
      return raw ?? null;
    case "b":
      return raw === undefined ? null : raw === "1";
    case "e":
      return raw ?? null;
    default: {
      if (raw === undefined || raw === "") return null;
      const n = Number(raw);
      if (dates.has(Number(c.attrs.s ?? -1))) return excelDate(n);
      return n;
    }
  }
}

function format(v: Cell, floatColumn: boolean): string {
  if (typeof v === "number") return floatColumn || !Number.isInteger(v) ? pyFloat(v) : String(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v instanceof Date) return pyDate(v);
  return String(v);
}

export async function xlsxUnits(data: Buffer): Promise<string[]> {
  const zip = await JSZip.loadAsync(data);
  const wbXml = await zip.file("xl/workbook.xml")?.async("string");
  if (wbXml === undefined) throw new Error("xl/workbook.xml is missing");
  const rels = relationships(await zip.file("xl/_rels/workbook.xml.rels")?.async("string"));
  const sstXml = await zip.file("xl/sharedStrings.xml")?.async("string");
  const shared = sstXml ? findAll(parseXml(sstXml), "si").map((si) => findAll(si.children, "t").map(textOf).join("")) : [];
  const dates = dateStyles(await zip.file("xl/styles.xml")?.async("string"));
  const units: string[] = [];
  for (const sheet of findAll(parseXml(wbXml), "sheet")) {
    const target = rels.get(sheet.attrs["r:id"] ?? "");
    if (!target) continue;
    const xml = await zip.file(resolvePath("xl/workbook.xml", target))?.async("string");
    if (xml === undefined) continue;
    // openpyxl's sheet.values: rows 1..max_row, columns 1..max_column, missing cells None.
    const rowMap = new Map<number, Map<number, Cell>>();
    let maxRow = 0;
    let maxCol = -1;
    let implicitRow = 0;
    for (const row of findAll(parseXml(xml), "row")) {
      const r = row.attrs.r ? Number(row.attrs.r) : implicitRow + 1;
      implicitRow = r;
      const cells = new Map<number, Cell>();
      let implicitCol = -1;
      for (const c of row.children.filter((x) => local(x.name) === "c")) {
        const col = c.attrs.r ? colIndex(c.attrs.r) : implicitCol + 1;
        implicitCol = col;
        const v = cellValue(c, shared, dates);
        cells.set(col, v);
        maxCol = Math.max(maxCol, col);
      }
      rowMap.set(r, cells);
      maxRow = Math.max(maxRow, r);
    }
    if (maxRow === 0) continue;
    const width = maxCol + 1;
    const rows: Cell[][] = [];
    for (let r = 1; r <= maxRow; r++) {
      const cells = rowMap.get(r);
      rows.push(Array.from({ length: width }, (_, i) => cells?.get(i) ?? null));
    }
    const header = rows[0]!.map((h) => (h === null ? "None" : format(h, false)));
    const body = rows.slice(1).filter((r) => r.some((v) => v !== null));
    // pandas dtype per column: all numbers → int64, unless an empty cell forces float64.
    const floatCol = header.map((_, i) => {
      const vals = body.map((r) => r[i] ?? null);
      const nonNull = vals.filter((v) => v !== null);
      return nonNull.length > 0 && nonNull.every((v) => typeof v === "number") && (nonNull.length < vals.length || nonNull.some((v) => !Number.isInteger(v as number)));
    });
    for (const r of body) {
      const parts: string[] = [];
      r.forEach((v, i) => {
        if (v === null) return;
        parts.push(`"${header[i]}":"${format(v, floatCol[i]!)}"`);
      });
      units.push(parts.join(";"));
    }
  }
  return units;
}

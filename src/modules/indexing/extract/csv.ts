// Dify's CSVExtractor (datasets spec §11.2): pandas `read_csv(dtype=str, keep_default_na=False,
// on_bad_lines="skip")`, one text unit per data row: `col: value` pairs joined by ";" (both sides
// stripped). Rows with more fields than the header are skipped, missing trailing fields read as
// pandas' NaN ("nan"), blank lines are ignored, empty / duplicate header names are renamed as
// pandas does ("Unnamed: i", "name.1").
import { parse } from "csv-parse/sync";
import { pyStrip } from "../clean.js";

export function csvUnits(text: string): string[] {
  const rows = parse(text, { relax_column_count: true, skip_empty_lines: true, bom: true, relax_quotes: true }) as string[][];
  const header = rows[0];
  if (!header) return [];
  const seen = new Map<string, number>();
  const cols = header.map((h, i) => {
    let name = h === "" ? `Unnamed: ${i}` : h;
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    if (n > 0) name = `${name}.${n}`;
    return name;
  });
  const out: string[] = [];
  for (const row of rows.slice(1)) {
    if (row.length > cols.length) continue;
    out.push(cols.map((c, i) => `${pyStrip(c)}: ${pyStrip(row[i] ?? "nan")}`).join(";"));
  }
  return out;
}

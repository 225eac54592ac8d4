// Metadata filtering (datasets spec §12.6): restricts the candidate documents by their
// `doc_metadata` JSON. Builds one parameterised SQL predicate over `d.doc_metadata`; values are
// always bound parameters, metadata names are bound too (`d.doc_metadata -> $n`).

export interface MetadataCondition {
  name: string;
  comparison_operator: string;
  value?: unknown;
}

export interface MetadataFilter {
  logical_operator?: string | null;
  conditions?: MetadataCondition[] | null;
}

export interface SqlFragment {
  sql: string;
  params: unknown[];
}

const NUMERIC_RE = String.raw`^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$`;

/** `null` when no condition applies (no filtering at all). `params` continue after `startIndex`. */
export function buildMetadataPredicate(filter: MetadataFilter | null | undefined, startIndex: number): SqlFragment | null {
  const conds = Array.isArray(filter?.conditions) ? filter!.conditions : [];
  const parts: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${startIndex + params.length}`;
  };
  for (const c of conds) {
    if (!c || typeof c.name !== "string" || !c.name) continue;
    const op = String(c.comparison_operator ?? "");
    const value = c.value;
    // Conditions without a value are ignored, except the two that take none (§12.6).
    if ((value === null || value === undefined) && op !== "empty" && op !== "not empty") continue;
    const name = p(c.name);
    const json = `(d.doc_metadata -> ${name})`;
    const text = `(d.doc_metadata ->> ${name})`;
    const num = `(CASE WHEN ${text} ~ '${NUMERIC_RE}' THEN (${text})::float8 END)`;
    const str = typeof value === "string" ? value : String(value);
    switch (op) {
      case "contains":
        parts.push(`${text} LIKE ${p(`%${str}%`)}`);
        break;
      case "not contains":
        parts.push(`${text} NOT LIKE ${p(`%${str}%`)}`);
        break;
      case "start with":
        parts.push(`${text} LIKE ${p(`${str}%`)}`);
        break;
      case "end with":
        parts.push(`${text} LIKE ${p(`%${str}`)}`);
        break;
      case "is":
      case "=":
        // A string compares as the JSON string, a number numerically (Dify's two branches).
        if (typeof value === "number") parts.push(`${num} = ${p(value)}`);
        else parts.push(`${json} = to_jsonb(${p(str)}::text)`);
        break;
      case "is not":
      case "≠":
        if (typeof value === "number") parts.push(`${num} <> ${p(value)}`);
        else parts.push(`${json} <> to_jsonb(${p(str)}::text)`);
        break;
      case "empty":
        parts.push(`(${json} IS NULL OR ${json} = 'null'::jsonb)`);
        break;
      case "not empty":
        parts.push(`(${json} IS NOT NULL AND ${json} <> 'null'::jsonb)`);
        break;
      case "in":
      case "not in": {
        const list = Array.isArray(value) ? value.map((v) => String(v)) : str.split(",").map((s) => s.trim());
        parts.push(`${op === "in" ? "" : "NOT "}(${text} = ANY(${p(list)}::text[]))`);
        break;
      }
      case ">":
      case "<":
      case "≥":
      case "≤":
      case ">=":
      case "<=":
      case "before":
      case "after": {
        const n = Number(value);
        if (!Number.isFinite(n)) {
          params.pop();
          continue;
        }
        const sqlOp = { ">": ">", "<": "<", "≥": ">=", ">=": ">=", "≤": "<=", "<=": "<=", before: "<", after: ">" }[op]!;
        parts.push(`${num} ${sqlOp} ${p(n)}`);
        break;
      }
      default:
        // Unknown operators build nothing, as Dify's match falls through.
        params.pop();
        continue;
    }
  }
  if (parts.length === 0) return null;
  const joiner = String(filter?.logical_operator ?? "and").toLowerCase() === "or" ? " OR " : " AND ";
  return { sql: `(${parts.map((x) => `COALESCE(${x}, false)`).join(joiner)})`, params };
}

/** Replaces `{{var}}` / `{{#node.var#}}` style references in condition values (dsl §2.7, §4.5). */
export function resolveConditionValues(filter: MetadataFilter | null | undefined, render: (s: string) => string): MetadataFilter | null {
  if (!filter || !Array.isArray(filter.conditions)) return filter ?? null;
  return {
    logical_operator: filter.logical_operator ?? "and",
    conditions: filter.conditions.map((c) => ({ ...c, value: typeof c.value === "string" ? render(c.value) : c.value })),
  };
}

// Dify's resource endpoints answer with Python's `json.dumps` defaults: ", " and ": "
// separators and non-ASCII escaped as \uXXXX (apps spec §1.3). Blocking generation bodies use the
// same style without the trailing newline; SSE frames use compact JSON (sse writer).
// Key order is insertion order, so response builders construct objects field by field.

import { pyFloatRepr } from "./pyrepr.js";

const ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function str(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/["\\\u0000-\u001f\u007f-\uffff]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;
}

/** A number Python holds as a float: printed `0.0`, `1.0`, `0.5` (e.g. score thresholds, datasets
 * spec §3.2), where a JS number would print `0`, `1`. */
export class PyFloat {
  constructor(readonly value: number) {}
}

export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  switch (typeof value) {
    case "string":
      return str(value);
    case "number":
      return Number.isFinite(value) ? String(value) : value > 0 ? "Infinity" : Number.isNaN(value) ? "NaN" : "-Infinity";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "object": {
      if (value instanceof Date) return str(value.toISOString());
      const withJson = value as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === "function") return pyJson(withJson.toJSON());
      if (Array.isArray(value)) return `[${value.map((v) => pyJson(v === undefined ? null : v)).join(", ")}]`;
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined || typeof v === "function") continue;
        parts.push(`${str(k)}: ${pyJson(v)}`);
      }
      return `{${parts.join(", ")}}`;
    }
    default:
      return "null";
  }
}

// The variable pool of a graph run (dsl-and-workflow §3.4–§3.5): two-level selectors
// `[owner, name]` plus object-key walking, Dify's Python-flavoured text/markdown rendering
// (§3.4.2) and `{{#node.var#}}` template resolution (§3.5).
import type { Selector, VariablePool, WorkflowFile } from "./types.js";

/** §3.5: id `[A-Za-z0-9_]{1,50}` then 1–10 parts `.[A-Za-z_][A-Za-z0-9_]{0,29}`, no whitespace. */
export const TEMPLATE_PATTERN = /\{\{#([a-zA-Z0-9_]{1,50}(?:\.[a-zA-Z_][a-zA-Z0-9_]{0,29}){1,10})#\}\}/g;

/** Attributes a third selector element may read from a file value (§3.4). */
const FILE_ATTRS = new Set(["type", "size", "name", "mime_type", "transfer_method", "url", "extension", "related_id"]);

export type RenderMode = "text" | "markdown";

export interface TemplateSegment {
  kind: "text" | "var";
  text: string;
  selector?: Selector;
}

export function isFile(v: unknown): v is WorkflowFile {
  return typeof v === "object" && v !== null && (v as { dify_model_identity?: unknown }).dify_model_identity === "__dify__file__";
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !isFile(v);
}

/** SegmentType inference (§3.4): bool before number, files, typed arrays, else array[any]. */
export function segmentType(v: unknown): string {
  if (v === null || v === undefined) return "none";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  if (isFile(v)) return "file";
  if (Array.isArray(v)) {
    if (v.length === 0) return "array[any]";
    const inner = new Set(v.map((x) => (Array.isArray(x) ? "array" : segmentType(x))));
    if (inner.size !== 1) return "array[any]";
    const [t] = [...inner];
    return t === "string" || t === "number" || t === "object" || t === "boolean" || t === "file" ? `array[${t}]` : "array[any]";
  }
  if (typeof v === "object") return "object";
  return "none";
}

// ------------------------------------------------------------------ Python-flavoured rendering

/** Python `repr(float)` / `str(int)` (§3.4.2): `3`, `0.1`, `1e-05`, `1e+16`. */
export function pyNumber(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  // JS cannot tell 3 from 3.0: integral values render as Python ints (JSON input loses the ".0").
  if (Number.isInteger(n)) return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString();
  const [mant, expStr] = n.toExponential().split("e") as [string, string];
  const exp = Number(expStr);
  if (exp >= -4 && exp < 16) {
    const neg = mant.startsWith("-");
    const digits = mant.replace("-", "").replace(".", "");
    let out: string;
    if (exp < 0) out = `0.${"0".repeat(-exp - 1)}${digits}`;
    else if (digits.length > exp + 1) out = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    else out = `${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
    return neg ? `-${out}` : out;
  }
  const sign = exp < 0 ? "-" : "+";
  return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** Python `repr(str)`: single quotes unless the text has `'` and no `"`. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${quote}${out}${quote}`;
}

/** Python `repr` of a JSON-ish value (lists/dicts render their items with repr). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return pyNumber(v);
  if (typeof v === "string") return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (typeof v === "object") return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
  return String(v);
}

/** Python `str()` of a value: strings as is, everything else its repr. */
export function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

/** `json.dumps(v, ensure_ascii=False)`: separators ", " and ": ", floats as Python reprs. */
export function pyJsonUnicode(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Number.isFinite(v) ? pyNumber(v) : v > 0 ? "Infinity" : Number.isNaN(v) ? "NaN" : "-Infinity";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return `[${v.map(pyJsonUnicode).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}: ${pyJsonUnicode(x)}`)
      .join(", ")}}`;
  }
  return "null";
}

/** `json.dumps(v, ensure_ascii=False, indent=2)`: items separated by "," + newline. */
function pyJsonIndented(v: unknown, depth = 0): string {
  const pad = "  ".repeat(depth + 1);
  const end = "  ".repeat(depth);
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x) => pad + pyJsonIndented(x, depth + 1)).join(",\n")}\n${end}]`;
  }
  if (typeof v === "object" && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${pyJsonIndented(x, depth + 1)}`).join(",\n")}\n${end}}`;
  }
  return pyJsonUnicode(v);
}

export function fileUrl(f: WorkflowFile): string {
  return f.url ?? f.remote_url ?? "";
}

/** Dify `File.markdown`: images as `![name](url)`, others `[name or url](url)`. */
export function fileMarkdown(f: WorkflowFile): string {
  const url = fileUrl(f);
  return f.type === "image" ? `![${f.filename ?? ""}](${url})` : `[${f.filename ?? url}](${url})`;
}

/** The `text` column of §3.4.2 (prompts, HTTP, tool params, conditions). */
export function renderText(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return pyRepr(v);
  if (isFile(v)) return "";
  if (Array.isArray(v)) {
    if (v.length === 0) return "";
    const t = segmentType(v);
    if (t === "array[file]") return "";
    if (t === "array[string]") return pyJsonUnicode(v);
    return pyRepr(v);
  }
  return pyJsonUnicode(v);
}

/** The `markdown` column of §3.4.2 (answer nodes, streamed variable values). */
export function renderMarkdown(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return pyRepr(v);
  if (isFile(v)) return fileMarkdown(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return "";
    if (segmentType(v) === "array[file]") return (v as WorkflowFile[]).map(fileMarkdown).join("\n");
    return v.map((x) => `- ${pyStr(x)}`).join("\n");
  }
  return pyJsonIndented(v);
}

/** Splits a template into literal and `{{#…#}}` segments (§3.5 step 1). */
export function parseTemplate(template: string): TemplateSegment[] {
  const out: TemplateSegment[] = [];
  let last = 0;
  for (const m of template.matchAll(TEMPLATE_PATTERN)) {
    if (m.index > last) out.push({ kind: "text", text: template.slice(last, m.index) });
    out.push({ kind: "var", text: m[1]!, selector: m[1]!.split(".") });
    last = m.index + m[0].length;
  }
  if (last < template.length) out.push({ kind: "text", text: template.slice(last) });
  return out;
}

// ------------------------------------------------------------------ the pool

function fileAttr(f: WorkflowFile, attr: string): unknown {
  switch (attr) {
    case "name":
      return f.filename;
    case "url":
      return fileUrl(f);
    default:
      return (f as unknown as Record<string, unknown>)[attr];
  }
}

export class VariablePoolImpl implements VariablePool {
  /** owner (node id / sys / env / conversation) → name → value. */
  private readonly data = new Map<string, Map<string, unknown>>();

  get(selector: Selector): unknown {
    if (selector.length < 2) return undefined;
    const [owner, name, ...path] = selector as [string, string, ...string[]];
    const vars = this.data.get(owner);
    let value: unknown;
    if (vars?.has(name)) value = vars.get(name);
    else {
      // `[start_id, "sys.query"]` (pre-1.0 exports, §4.1): the start node republishes dotted keys;
      // before it ran (or for a missing copy) the namespace itself answers.
      const dot = name.indexOf(".");
      const ns = dot > 0 ? name.slice(0, dot) : "";
      if (ns !== "sys" && ns !== "env" && ns !== "conversation") return undefined;
      const nsVars = this.data.get(ns);
      if (!nsVars?.has(name.slice(dot + 1))) return undefined;
      value = nsVars.get(name.slice(dot + 1));
    }
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      if (isFile(value)) {
        // A file's attribute is only addressable as the element right after the variable name.
        if (i !== 0 || !FILE_ATTRS.has(key)) return undefined;
        value = fileAttr(value, key);
        continue;
      }
      // Object keys only: no array indexing (§3.4).
      if (!isPlainObject(value) || !Object.prototype.hasOwnProperty.call(value, key)) return undefined;
      value = value[key];
    }
    return value;
  }

  has(selector: Selector): boolean {
    return this.get(selector) !== undefined;
  }

  set(selector: Selector, value: unknown): void {
    if (selector.length < 2) throw new Error(`invalid selector ${JSON.stringify(selector)}`);
    const [owner, name, ...path] = selector as [string, string, ...string[]];
    let vars = this.data.get(owner);
    if (!vars) this.data.set(owner, (vars = new Map()));
    if (path.length === 0) {
      vars.set(name, value);
      return;
    }
    // Longer selectors update a key inside an object value (copy-on-write, the old value may be shared).
    const root: Record<string, unknown> = isPlainObject(vars.get(name)) ? { ...(vars.get(name) as Record<string, unknown>) } : {};
    let cur = root;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i]!;
      const next: Record<string, unknown> = isPlainObject(cur[k]) ? { ...(cur[k] as Record<string, unknown>) } : {};
      cur[k] = next;
      cur = next;
    }
    cur[path[path.length - 1]!] = value;
    vars.set(name, root);
  }

  /** Drops every variable of one owner (loop rounds clear inner outputs, §4.15 step 3). */
  removeNode(owner: string): void {
    this.data.delete(owner);
  }

  /** Variables of one owner, in insertion order. */
  entries(owner: string): [string, unknown][] {
    return [...(this.data.get(owner)?.entries() ?? [])];
  }

  /** Deep copy (iteration rounds run on copies, §4.14 step 2). */
  clone(): VariablePoolImpl {
    const copy = new VariablePoolImpl();
    for (const [owner, vars] of this.data) copy.data.set(owner, new Map([...vars].map(([k, v]) => [k, structuredClone(v)])));
    return copy;
  }

  /** `sys.*`, `env.*`, `conversation.*` flattened with dotted keys (start node outputs, §4.1). */
  flattenNamespaces(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const ns of ["sys", "env", "conversation"]) for (const [k, v] of this.entries(ns)) out[`${ns}.${k}`] = v;
    return out;
  }

  renderTemplate(template: string): string {
    return this.render(template, "text");
  }

  renderMarkdown(template: string): string {
    return this.render(template, "markdown");
  }

  /** §3.5: found → rendered value; not found → the literal `node.var` without braces. */
  render(template: string, mode: RenderMode): string {
    return parseTemplate(template)
      .map((seg) => {
        if (seg.kind === "text") return seg.text;
        const v = this.get(seg.selector!);
        if (v === undefined) return seg.text;
        return mode === "markdown" ? renderMarkdown(v) : renderText(v);
      })
      .join("");
  }

  toText(value: unknown): string {
    return renderText(value);
  }

  toMarkdown(value: unknown): string {
    return renderMarkdown(value);
  }
}

export function createVariablePool(init: {
  system: Record<string, unknown>;
  environment: Record<string, unknown>;
  conversation: Record<string, unknown>;
}): VariablePoolImpl {
  const pool = new VariablePoolImpl();
  for (const [k, v] of Object.entries(init.system)) pool.set(["sys", k], v);
  for (const [k, v] of Object.entries(init.environment)) pool.set(["env", k], v);
  for (const [k, v] of Object.entries(init.conversation)) pool.set(["conversation", k], v);
  return pool;
}

// list-operator (dsl-and-workflow §4.19): filter → extract → order → limit over array[string],
// array[number], array[boolean] or array[file]. Each filter condition applies to the result of the
// previous one (AND).
import { isFile, pyStr, segmentType } from "../variable-pool.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult, type WorkflowFile } from "../types.js";

interface FilterCondition {
  key?: string;
  comparison_operator?: string;
  value?: unknown;
}

interface ListOperatorData {
  variable?: string[];
  filter_by?: { enabled?: boolean; conditions?: FilterCondition[] };
  extract_by?: { enabled?: boolean; serial?: string | number };
  order_by?: { enabled?: boolean; key?: string; value?: string };
  limit?: { enabled?: boolean; size?: number };
}

class ListOperatorError extends NodeError {
  constructor(message: string) {
    super(message, "ListOperatorError");
  }
}

const SUPPORTED = new Set(["array[string]", "array[number]", "array[boolean]", "array[file]"]);

function pyFloat(s: string): number {
  const t = s.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) throw new ListOperatorError(`could not convert string to float: '${s}'`);
  return Number(t);
}

function stringFilter(op: string, value: string): (x: string) => boolean {
  switch (op) {
    case "contains":
      return (x) => x.includes(value);
    case "start with":
      return (x) => x.startsWith(value);
    case "end with":
      return (x) => x.endsWith(value);
    case "is":
      return (x) => x === value;
    case "in":
      return (x) => value.includes(x); // the element is a substring of the value
    case "empty":
      return (x) => x === "";
    case "not contains":
      return (x) => !x.includes(value);
    case "is not":
      return (x) => x !== value;
    case "not in":
      return (x) => !value.includes(x);
    case "not empty":
      return (x) => x !== "";
    default:
      throw new ListOperatorError(`Invalid condition: ${op}`);
  }
}

function numberFilter(op: string, value: number): (x: number) => boolean {
  switch (op) {
    case "=":
      return (x) => x === value;
    case "≠":
      return (x) => x !== value;
    case "<":
      return (x) => x < value;
    case "≤":
      return (x) => x <= value;
    case ">":
      return (x) => x > value;
    case "≥":
      return (x) => x >= value;
    default:
      throw new ListOperatorError(`Invalid condition: ${op}`);
  }
}

/** Dify `_get_file_extract_string_func`: missing attributes read as "". */
function fileString(f: WorkflowFile, key: string): string {
  switch (key) {
    case "name":
      return f.filename ?? "";
    case "type":
      return f.type;
    case "extension":
      return f.extension ?? "";
    case "mime_type":
      return f.mime_type ?? "";
    case "transfer_method":
      return f.transfer_method;
    case "url":
      return f.remote_url ?? "";
    case "related_id":
      return f.related_id ?? "";
    default:
      throw new ListOperatorError(`Invalid key: ${key}`);
  }
}

function fileFilter(key: string, op: string, value: unknown): (f: WorkflowFile) => boolean {
  if (["name", "extension", "mime_type", "url", "related_id"].includes(key) && typeof value === "string") {
    const fn = stringFilter(op, value);
    return (f) => fn(fileString(f, key));
  }
  if (key === "type" || key === "transfer_method") {
    const list = Array.isArray(value) ? value.map(String) : typeof value === "string" ? value : null;
    if (list === null) throw new ListOperatorError(`Invalid filter value: ${pyStr(value)}`);
    if (op === "in") return (f) => list.includes(fileString(f, key));
    if (op === "not in") return (f) => !list.includes(fileString(f, key));
    throw new ListOperatorError(`Invalid condition: ${op}`);
  }
  if (key === "size" && typeof value === "string") {
    const fn = numberFilter(op, pyFloat(value));
    return (f) => fn(f.size);
  }
  throw new ListOperatorError(`Invalid key: ${key}`);
}

/** Natural order: digit runs compare as numbers, the rest by code point. */
function naturalCompare(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return ta.length - tb.length;
}

function compareValues(a: unknown, b: unknown): number {
  if (typeof a === "string" && typeof b === "string") return naturalCompare(a, b);
  return Number(a) - Number(b);
}

export const listOperatorNode: NodeImplementation = {
  types: ["list-operator"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as GraphNode["data"] & ListOperatorData;
    const selector = Array.isArray(data.variable) ? data.variable.map(String) : [];
    const value = ctx.pool.get(selector);
    if (value === undefined) {
      return { status: "failed", inputs: {}, process_data: {}, outputs: {}, error: `Variable not found for selector: ${pyStr(selector)}`, errorType: "ListOperatorError" };
    }
    if (value === null || value === "" || value === false || value === 0 || (Array.isArray(value) && value.length === 0)) {
      return { status: "succeeded", inputs: { variable: [] }, process_data: { variable: [] }, outputs: { result: [], first_record: null, last_record: null } };
    }
    const type = segmentType(value);
    if (!SUPPORTED.has(type)) {
      return { status: "failed", inputs: {}, process_data: {}, outputs: {}, error: `Variable ${pyStr(selector)} is not an array type, actual type: ${type}`, errorType: "ListOperatorError" };
    }
    const inputs = { variable: value };
    let list = [...(value as unknown[])];
    try {
      if (data.filter_by?.enabled) {
        for (const c of data.filter_by.conditions ?? []) {
          const op = String(c.comparison_operator ?? "");
          if (type === "array[string]") {
            if (typeof c.value !== "string") throw new ListOperatorError(`Invalid filter value: ${pyStr(c.value)}`);
            const fn = stringFilter(op, ctx.pool.renderTemplate(c.value));
            list = list.filter((x) => fn(x as string));
          } else if (type === "array[number]") {
            if (typeof c.value !== "string") throw new ListOperatorError(`Invalid filter value: ${pyStr(c.value)}`);
            const fn = numberFilter(op, pyFloat(ctx.pool.renderTemplate(c.value)));
            list = list.filter((x) => fn(x as number));
          } else if (type === "array[file]") {
            if (typeof c.value === "boolean") throw new ListOperatorError("File filter expects a string value, got <class 'bool'>");
            const v = typeof c.value === "string" ? ctx.pool.renderTemplate(c.value) : c.value;
            const fn = fileFilter(String(c.key ?? ""), op, v);
            list = list.filter((x) => isFile(x) && fn(x));
          } else {
            if (typeof c.value !== "boolean") throw new ListOperatorError(`Invalid filter value: ${pyStr(c.value)}`);
            const want = c.value;
            if (op === "is") list = list.filter((x) => x === want);
            else if (op === "is not") list = list.filter((x) => x !== want);
            else throw new ListOperatorError(`Invalid condition: ${op}`);
          }
        }
      }
      if (data.extract_by?.enabled) {
        const raw = ctx.pool.renderTemplate(String(data.extract_by.serial ?? "")).trim();
        if (!/^[+-]?\d+$/.test(raw)) throw new ListOperatorError(`invalid literal for int() with base 10: '${raw}'`);
        const serial = Number.parseInt(raw, 10);
        if (serial < 1) throw new ListOperatorError(`Invalid serial index: must be >= 1, got ${serial}`);
        if (serial > list.length) throw new ListOperatorError(`Invalid serial index: must be <= ${list.length}, got ${serial}`);
        list = [list[serial - 1]];
      }
      if (data.order_by?.enabled) {
        const desc = data.order_by.value === "desc";
        if (type === "array[file]") {
          const key = String(data.order_by.key ?? "");
          const keyOf = (f: WorkflowFile): unknown => (key === "size" ? f.size : fileString(f, key));
          list.sort((a, b) => (desc ? -1 : 1) * compareValues(keyOf(a as WorkflowFile), keyOf(b as WorkflowFile)));
        } else {
          // Stable like Python's sorted(reverse=True): equal elements keep their order.
          list.sort((a, b) => (desc ? -1 : 1) * compareValues(a, b));
        }
      }
      if (data.limit?.enabled) list = list.slice(0, Math.max(0, Number(data.limit.size ?? 0)));
    } catch (e) {
      if (e instanceof ListOperatorError) return { status: "failed", inputs, process_data: inputs, outputs: {}, error: e.message, errorType: e.errorType };
      throw e;
    }
    return {
      status: "succeeded",
      inputs,
      process_data: inputs,
      outputs: { result: list, first_record: list.length ? list[0] : null, last_record: list.length ? list[list.length - 1] : null },
    };
  },
};

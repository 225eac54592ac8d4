// assigner (dsl-and-workflow §4.12 version 1, §4.13 version 2): writes conversation variables
// (advanced-chat) or loop variables. Writes go through ctx.pool.set; the engine persists
// `conversation.*` values. Target types are inferred from the current value (the pool keeps no
// declarations), so an empty array is `array[any]`.
import { pyStr, segmentType } from "../variable-pool.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult } from "../types.js";

export class VariableOperatorNodeError extends NodeError {
  constructor(message: string) {
    super(message, "VariableOperatorNodeError");
  }
}

interface UpdatedVariable {
  name: string;
  selector: string[];
  value_type: string;
  new_value: unknown;
}

const sel = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

function zeroValue(type: string): unknown {
  if (type.startsWith("array")) return [];
  switch (type) {
    case "string":
      return "";
    case "number":
      return 0;
    case "boolean":
      return false;
    case "object":
      return {};
    default:
      return null;
  }
}

const updated = (selector: string[], value: unknown): UpdatedVariable => ({
  name: selector[1]!,
  selector: selector.slice(0, 2),
  value_type: segmentType(value),
  new_value: value,
});

// ------------------------------------------------------------------ version 1

function runV1(node: GraphNode, ctx: NodeContext): NodeResult {
  const data = node.data;
  const target = sel(data.assigned_variable_selector);
  const original = ctx.pool.get(target);
  if (original === undefined) throw new VariableOperatorNodeError("assigned variable not found");
  const mode = String(data.write_mode ?? "over-write");
  let income: unknown;
  let next: unknown;
  if (mode === "clear") {
    next = zeroValue(segmentType(original));
    income = next;
  } else {
    income = ctx.pool.get(sel(data.input_variable_selector));
    if (income === undefined) throw new VariableOperatorNodeError("input value not found");
    if (mode === "over-write") next = income;
    else if (mode === "append") {
      if (!Array.isArray(original)) throw new VariableOperatorNodeError(`Operation append is not supported for type ${segmentType(original)}`);
      next = [...original, income];
    } else throw new VariableOperatorNodeError(`Unsupported write mode: ${mode}`);
  }
  ctx.pool.set(target, next);
  return { status: "succeeded", inputs: { value: income }, process_data: { __updated_variables: [updated(target, next)] }, outputs: {} };
}

// ------------------------------------------------------------------ version 2

const NUMBER_OPS = new Set(["+=", "-=", "*=", "/="]);
const ARRAY_OPS = new Set(["append", "extend", "remove-first", "remove-last"]);
const NO_INPUT_OPS = new Set(["clear", "remove-first", "remove-last"]);

function isOperationSupported(type: string, op: string): boolean {
  if (op === "over-write" || op === "clear") return true;
  if (op === "set") return ["object", "string", "number", "boolean"].includes(type);
  if (NUMBER_OPS.has(op)) return type === "number";
  if (ARRAY_OPS.has(op)) return type.startsWith("array");
  return false;
}

const isVariableInputSupported = (op: string) => !(op === "set" || NUMBER_OPS.has(op));

function isConstantInputSupported(type: string, op: string): boolean {
  if (type === "string" || type === "object" || type === "boolean") return op === "over-write" || op === "set";
  if (type === "number") return op === "over-write" || op === "set" || NUMBER_OPS.has(op);
  return false;
}

const isNum = (v: unknown) => typeof v === "number" || typeof v === "boolean"; // Python bool is an int
const isDict = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && (v as { dify_model_identity?: unknown }).dify_model_identity !== "__dify__file__";
const isFileV = (v: unknown) => typeof v === "object" && v !== null && (v as { dify_model_identity?: unknown }).dify_model_identity === "__dify__file__";

function elementOk(type: string, v: unknown): boolean {
  switch (type) {
    case "array[any]":
      return typeof v === "string" || typeof v === "number" || isDict(v);
    case "array[string]":
      return typeof v === "string";
    case "array[number]":
      return isNum(v);
    case "array[object]":
      return isDict(v);
    case "array[file]":
      return isFileV(v);
    case "array[boolean]":
      return typeof v === "boolean";
    default:
      return false;
  }
}

function isInputValueValid(type: string, op: string, value: unknown): boolean {
  if (NO_INPUT_OPS.has(op)) return true;
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "number":
      if (!isNum(value)) return false;
      return !(op === "/=" && Number(value) === 0);
    case "object":
      return isDict(value);
  }
  if (!type.startsWith("array")) return false;
  if (op === "append") return elementOk(type, value);
  if (op === "extend" || op === "over-write") {
    if (!Array.isArray(value)) return false;
    return type === "array[any]" || value.every((x) => elementOk(type, x));
  }
  return false;
}

function apply(current: unknown, type: string, op: string, value: unknown): unknown {
  const n = (v: unknown) => (typeof v === "boolean" ? (v ? 1 : 0) : (v as number));
  switch (op) {
    case "over-write":
    case "set":
      return value;
    case "clear":
      return zeroValue(type);
    case "append":
      return [...(current as unknown[]), value];
    case "extend":
      return [...(current as unknown[]), ...(value as unknown[])];
    case "+=":
      return n(current) + n(value);
    case "-=":
      return n(current) - n(value);
    case "*=":
      return n(current) * n(value);
    case "/=":
      return n(current) / n(value);
    case "remove-first":
      return (current as unknown[]).slice(1);
    case "remove-last":
      return (current as unknown[]).slice(0, -1);
    default:
      throw new VariableOperatorNodeError(`Unsupported operation: ${op}`);
  }
}

interface ItemV2 {
  variable_selector?: unknown;
  operation?: string;
  input_type?: string;
  value?: unknown;
}

function runV2(node: GraphNode, ctx: NodeContext): NodeResult {
  const { selected: _s, ...inputs } = node.data as Record<string, unknown>;
  const items = Array.isArray(node.data.items) ? (node.data.items as ItemV2[]) : [];
  // Items apply in order on a working copy (later items see earlier updates); nothing reaches the
  // pool unless every item is valid (§4.13).
  const work = new Map<string, { selector: string[]; value: unknown }>();
  const read = (s: string[]) => {
    const w = work.get(JSON.stringify(s.slice(0, 2)));
    return w && s.length === 2 ? w.value : ctx.pool.get(s);
  };
  try {
    for (const item of items) {
      const target = sel(item.variable_selector);
      const op = String(item.operation ?? "over-write");
      const inputType = item.input_type === "constant" ? "constant" : "variable";
      const current = read(target);
      if (current === undefined) throw new VariableOperatorNodeError(`Variable ${pyStr(target)} not found`);
      const type = segmentType(current);
      if (!isOperationSupported(type, op)) throw new VariableOperatorNodeError(`Operation ${op} is not supported for type ${type}`);
      if (inputType === "variable" && !isVariableInputSupported(op)) throw new VariableOperatorNodeError(`Input type variable is not supported for operation ${op}`);
      if (inputType === "constant" && !isConstantInputSupported(type, op)) throw new VariableOperatorNodeError(`Input type constant is not supported for operation ${op}`);
      let value = item.value;
      if (inputType === "variable" && !NO_INPUT_OPS.has(op)) {
        const src = sel(item.value);
        const v = read(src);
        if (v === undefined) throw new VariableOperatorNodeError(`Variable ${pyStr(src)} not found`);
        if (v === null) continue; // an existing `none` input skips the item silently
        value = v;
      }
      if (op === "set" && type === "object" && typeof value === "string") {
        try {
          value = JSON.parse(value);
        } catch {
          throw new VariableOperatorNodeError(`Invalid input value ${value as string}`);
        }
      }
      if (!isInputValueValid(type, op, value)) throw new VariableOperatorNodeError(`Invalid input value ${pyStr(value)}`);
      work.set(JSON.stringify(target.slice(0, 2)), { selector: target.slice(0, 2), value: apply(current, type, op, value) });
    }
  } catch (e) {
    if (e instanceof VariableOperatorNodeError) return { status: "failed", inputs, process_data: {}, error: e.message, errorType: e.errorType };
    throw e;
  }
  const processData: Record<string, unknown> = {};
  const updates: UpdatedVariable[] = [];
  for (const { selector, value } of work.values()) {
    ctx.pool.set(selector, value);
    processData[selector[1]!] = value;
    updates.push(updated(selector, value));
  }
  processData.__updated_variables = updates;
  return { status: "succeeded", inputs, process_data: processData, outputs: {} };
}

export const assignerNode: NodeImplementation = {
  types: ["assigner"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    return String(node.data.version ?? "1") === "2" ? runV2(node, ctx) : runV1(node, ctx);
  },
};

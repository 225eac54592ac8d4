// The code node (dsl-and-workflow §4.8): runs `main` in the sandbox and validates the returned
// object against the declared `outputs` the way Dify's CodeNode does (graphon), including its
// error texts, limits and quirks. `dependencies` (legacy) is ignored.
import { CodeExecutionError } from "../sandbox/index.js";
import type { GraphNode, NodeContext, NodeImplementation, NodeResult } from "../types.js";

// Dify's defaults (CODE_MAX_* settings).
export const CODE_LIMITS = {
  maxNumber: 9223372036854775807n,
  minNumber: -9223372036854775808n,
  maxPrecision: 20,
  maxDepth: 5,
  maxStringLength: 400_000,
  maxStringArrayLength: 30,
  maxObjectArrayLength: 30,
  maxNumberArrayLength: 1000,
};

interface OutputDecl {
  type: string;
  children?: Record<string, OutputDecl> | null;
}

/** Dify's error classes (their names become `error_type`). */
export class CodeNodeError extends Error {
  constructor(
    message: string,
    readonly errorType: string = "CodeNodeError",
  ) {
    super(message);
  }
}
const validationError = (msg: string) => new CodeNodeError(msg, "OutputValidationError");

type Dict = Record<string, unknown>;

const isDict = (v: unknown): v is Dict => v !== null && typeof v === "object" && !Array.isArray(v);
/** Python's isinstance(v, int | float): bools are ints there. */
const isNumberLike = (v: unknown): v is number | bigint | boolean => typeof v === "number" || typeof v === "bigint" || typeof v === "boolean";

/** Python's `type(v).__name__` for a JSON value. */
function pyName(v: unknown): string {
  if (v === null || v === undefined) return "NoneType";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (Array.isArray(v)) return "list";
  return "dict";
}
/** Python's `str(type(v))`. */
const pyClass = (v: unknown) => `<class '${pyName(v)}'>`;

const path = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

function checkString(value: unknown, variable: string): string | null {
  if (value === null || value === undefined) return null;
  const s = value as string;
  // Python counts code points; JS length counts UTF-16 units, so count exactly only when needed.
  if (s.length > CODE_LIMITS.maxStringLength && [...s].length > CODE_LIMITS.maxStringLength) {
    throw validationError(`The length of output variable \`${variable}\` must be less than ${CODE_LIMITS.maxStringLength} characters`);
  }
  return s.replaceAll("\u0000", "");
}

/** Digits after the point of Decimal(str(value)).normalize(), 0 for non-negative exponents. */
export function floatPrecision(value: number): number {
  const m = /^-?(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(String(value));
  if (!m) return 0; // NaN / Infinity: Decimal exponents are not ints there → precision 0
  const fraction = (m[2] ?? "").replace(/0+$/, "");
  const exponent = Number(m[3] ?? 0);
  return Math.max(0, fraction.length - exponent);
}

function outOfRange(value: number | bigint | boolean): boolean {
  if (typeof value === "boolean") return false;
  if (typeof value === "bigint") return value > CODE_LIMITS.maxNumber || value < CODE_LIMITS.minNumber;
  if (Number.isNaN(value)) return false;
  if (!Number.isFinite(value)) return true;
  // Python compares floats with ints exactly; doubles near 2^63 need BigInt to do the same.
  if (Number.isInteger(value) && Math.abs(value) >= 2 ** 53) {
    const b = BigInt(value);
    return b > CODE_LIMITS.maxNumber || b < CODE_LIMITS.minNumber;
  }
  return value > Number(CODE_LIMITS.maxNumber) || value < Number(CODE_LIMITS.minNumber);
}

function checkNumber(value: unknown, variable: string): number | bigint | boolean | null {
  if (value === null || value === undefined) return null;
  const n = value as number | bigint | boolean;
  if (outOfRange(n)) {
    throw validationError(`Output variable \`${variable}\` is out of range, it must be between ${CODE_LIMITS.minNumber} and ${CODE_LIMITS.maxNumber}.`);
  }
  if (typeof n === "number" && !Number.isInteger(n) && floatPrecision(n) > CODE_LIMITS.maxPrecision) {
    throw validationError(`Output variable \`${variable}\` has too high precision, it must be less than ${CODE_LIMITS.maxPrecision} digits.`);
  }
  return n;
}

const boolToInt = (v: number | bigint | boolean | null) => (typeof v === "boolean" ? (v ? 1 : 0) : v);

function validateUntypedList(name: string, list: unknown[], prefix: string, depth: number): void {
  const p = path(prefix, name);
  const first = list.length > 0 ? list[0] : null;
  if (first === null || first === undefined) return;
  const all = (pred: (v: unknown) => boolean) => list.every((v) => v === null || pred(v));
  if (isNumberLike(first) && all(isNumberLike)) {
    list.forEach((v, i) => checkNumber(v, `${p}[${i}]`));
    return;
  }
  if (typeof first === "string" && all((v) => typeof v === "string")) {
    list.forEach((v, i) => checkString(v, `${p}[${i}]`));
    return;
  }
  if ((isDict(first) && all(isDict)) || (Array.isArray(first) && all(Array.isArray))) {
    list.forEach((v, i) => {
      if (v === null) return;
      // Dify recurses with `.items()`, which a nested list does not have.
      if (Array.isArray(v)) throw new CodeNodeError("'list' object has no attribute 'items'", "AttributeError");
      transformResult(v as Dict, null, `${p}[${i}]`, depth + 1);
    });
    return;
  }
  throw validationError(`Output ${p} is not a valid array. make sure all elements are of the same type.`);
}

function validateUntyped(name: string, value: unknown, prefix: string, depth: number): void {
  const p = path(prefix, name);
  if (isDict(value)) transformResult(value, null, p, depth + 1);
  else if (typeof value === "boolean") return;
  else if (typeof value === "number" || typeof value === "bigint") checkNumber(value, p);
  else if (typeof value === "string") checkString(value, p);
  else if (Array.isArray(value)) validateUntypedList(name, value, prefix, depth);
  else if (value === null || value === undefined) return;
  else throw validationError(`Output ${p} is not a valid type.`);
}

function notArray(p: string, value: unknown): CodeNodeError {
  return validationError(`Output ${p} is not an array, got ${pyClass(value)} instead.`);
}

function transformOutput(name: string, decl: OutputDecl, value: unknown, prefix: string, depth: number): unknown {
  const p = path(prefix, name);
  switch (decl.type) {
    case "object":
      if (!isDict(value)) {
        if (value === null) return null;
        throw validationError(`Output ${p} is not an object, got ${pyClass(value)} instead.`);
      }
      return transformResult(value, decl.children ?? null, p, depth + 1);
    case "number":
      if (value !== null && !isNumberLike(value)) throw validationError(`Output ${p} is not a number, got ${pyClass(value)} instead.`);
      return boolToInt(checkNumber(value, p));
    case "string":
      if (value !== null && typeof value !== "string") throw validationError(`Output ${p} must be a string, got ${pyName(value)} instead.`);
      return checkString(value, p);
    case "boolean":
      // Dify does not check the type here.
      return value ?? null;
    case "array[number]": {
      if (!Array.isArray(value)) {
        if (value === null) return null;
        throw notArray(p, value);
      }
      if (value.length > CODE_LIMITS.maxNumberArrayLength) {
        throw validationError(`The length of output variable \`${p}\` must be less than ${CODE_LIMITS.maxNumberArrayLength} elements.`);
      }
      value.forEach((v, i) => {
        if (!isNumberLike(v)) throw validationError(`The element at index ${i} of output variable \`${p}\` must be a number.`);
      });
      return value.map((v, i) => boolToInt(checkNumber(v, `${p}[${i}]`)));
    }
    case "array[string]": {
      if (!Array.isArray(value)) {
        if (value === null) return null;
        throw notArray(p, value);
      }
      if (value.length > CODE_LIMITS.maxStringArrayLength) {
        throw validationError(`The length of output variable \`${p}\` must be less than ${CODE_LIMITS.maxStringArrayLength} elements.`);
      }
      return value.map((v, i) => {
        if (v !== null && typeof v !== "string") throw validationError(`Output ${p}[${i}] must be a string, got ${pyName(v)} instead.`);
        return checkString(v, `${p}[${i}]`);
      });
    }
    case "array[object]": {
      if (!Array.isArray(value)) {
        if (value === null) return null;
        throw notArray(p, value);
      }
      if (value.length > CODE_LIMITS.maxObjectArrayLength) {
        throw validationError(`The length of output variable \`${p}\` must be less than ${CODE_LIMITS.maxObjectArrayLength} elements.`);
      }
      value.forEach((v, i) => {
        if (v !== null && !isDict(v)) throw validationError(`Output ${p}[${i}] is not an object, got ${pyClass(v)} instead at index ${i}.`);
      });
      return value.map((v, i) => (v === null ? null : transformResult(v as Dict, decl.children ?? null, `${p}[${i}]`, depth + 1)));
    }
    case "array[boolean]": {
      if (!Array.isArray(value)) {
        if (value === null) return null;
        throw notArray(p, value);
      }
      value.forEach((v, i) => {
        if (v !== null && typeof v !== "boolean") throw validationError(`Output ${p}[${i}] is not a boolean, got ${pyClass(v)} instead.`);
      });
      return value;
    }
    default:
      throw validationError(`Output type ${decl.type} is not supported.`);
  }
}

/** Dify's CodeNode._transform_result: typed validation with a schema, inferred checks without. */
export function transformResult(result: Dict, schema: Record<string, OutputDecl> | null, prefix = "", depth = 1): Dict {
  if (depth > CODE_LIMITS.maxDepth) {
    throw new CodeNodeError(`Depth limit ${CODE_LIMITS.maxDepth} reached, object too deep.`, "DepthLimitError");
  }
  if (schema === null) {
    for (const [name, value] of Object.entries(result)) validateUntyped(name, value, prefix, depth);
    return result;
  }
  const out: Dict = {};
  let validated = 0;
  for (const [name, decl] of Object.entries(schema)) {
    if (!Object.hasOwn(result, name)) throw validationError(`Output ${path(prefix, name)} is missing.`);
    out[name] = transformOutput(name, decl, result[name], prefix, depth);
    validated++;
  }
  if (validated !== Object.keys(result).length) throw new CodeNodeError("Not all output parameters are validated.");
  return out;
}

/** BigInts (integers beyond 2^53 from Python) become numbers once validated: outputs are JSON. */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (isDict(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const isFile = (v: unknown) => isDict(v) && v.dify_model_identity === "__dify__file__";

function buildInputs(node: GraphNode, ctx: NodeContext): Dict {
  const inputs: Dict = {};
  const variables = Array.isArray(node.data.variables) ? (node.data.variables as Array<{ variable?: string; value_selector?: string[] }>) : [];
  for (const v of variables) {
    if (!v || typeof v.variable !== "string") continue;
    const value = Array.isArray(v.value_selector) && v.value_selector.length > 0 ? ctx.pool.get(v.value_selector) : undefined;
    // File arrays go in as lists of file dicts, or None when empty (Dify's ArrayFileSegment rule).
    if (Array.isArray(value) && value.length > 0 && value.every(isFile)) inputs[v.variable] = value;
    else inputs[v.variable] = value === undefined ? null : value;
  }
  return inputs;
}

export const codeNode: NodeImplementation = {
  types: ["code"],
  async run(node, ctx): Promise<NodeResult> {
    const inputs = buildInputs(node, ctx);
    const fail = (error: string, errorType: string): NodeResult => ({ status: "failed", inputs, error, errorType });
    const language = node.data.code_language;
    if (language !== "python3" && language !== "javascript") {
      return fail(`Unsupported code language: ${String(language)}`, "CodeNodeError");
    }
    const sandbox = ctx.services.sandbox;
    if (!sandbox) return fail("Code execution is not available: no code sandbox is configured on this server.", "CodeExecutionError");
    const code = typeof node.data.code === "string" ? node.data.code : "";
    const outputs = isDict(node.data.outputs) ? (node.data.outputs as Record<string, OutputDecl>) : null;

    let result: Dict;
    try {
      result = await sandbox.run({ language, code, inputs, timeoutMs: ctx.services.config.CODE_EXECUTION_TIMEOUT_MS, signal: ctx.signal });
    } catch (err) {
      // A stopped run is the engine's business, not a node failure.
      if (ctx.signal.aborted) throw err;
      if (err instanceof CodeExecutionError) return fail(err.message, err.errorType);
      ctx.services.logger.error({ err, nodeId: node.id }, "code node: sandbox failure");
      return fail(err instanceof Error ? err.message : String(err), "CodeExecutionError");
    }
    try {
      return { status: "succeeded", inputs, outputs: plain(transformResult(result, outputs)) as Dict };
    } catch (err) {
      if (err instanceof CodeNodeError) return fail(err.message, err.errorType);
      throw err;
    }
  },
};

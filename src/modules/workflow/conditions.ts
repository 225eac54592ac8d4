// Condition evaluation shared by if-else (dsl-and-workflow §4.7) and the loop node's
// break_conditions (§4.15). A port of Dify's ConditionProcessor: every operator keeps its Python
// quirks (falsy actuals, `int("3.5")` failing, booleans counting as numbers, any/all for file
// sub-conditions), because apps depend on which branch is taken (§7 item 5).
import { isFile, pyStr } from "./variable-pool.js";
import type { Selector, VariablePool, WorkflowFile } from "./types.js";

export interface SubCondition {
  key: string;
  comparison_operator: string;
  value?: unknown;
}

export interface Condition {
  variable_selector: Selector;
  comparison_operator: string;
  value?: unknown;
  sub_variable_condition?: { logical_operator?: string; conditions?: SubCondition[] } | null;
  [k: string]: unknown;
}

export interface ConditionInput {
  actual_value: unknown;
  expected_value: unknown;
  comparison_operator: string;
}

export interface ConditionsResult {
  /** `{actual_value, expected_value, comparison_operator}` of the evaluated conditions (file-array and exists ones are not listed). */
  inputs: ConditionInput[];
  /** One boolean per evaluated condition (stops early on short-circuit). */
  results: boolean[];
  finalResult: boolean;
}

/** Thrown for a condition Dify rejects (missing variable, wrong types): the node fails with the message. */
export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConditionError";
  }
}

// ------------------------------------------------------------------ Python helpers

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Python truthiness: None, "", 0, False, [], {} are falsy. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObj(v) && !isFile(v)) return Object.keys(v).length > 0;
  return true;
}

/** Python `==` on JSON values: True == 1 == 1.0; lists/dicts compare element-wise. */
export function pyEquals(a: unknown, b: unknown): boolean {
  const num = (x: unknown) => (typeof x === "boolean" ? (x ? 1 : 0) : x);
  if ((typeof a === "number" || typeof a === "boolean") && (typeof b === "number" || typeof b === "boolean")) return num(a) === num(b);
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a !== typeof b) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  if (isObj(a)) {
    if (!isObj(b) || Array.isArray(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && pyEquals(a[k], b[k]));
  }
  return a === b;
}

const pyIn = (item: unknown, list: unknown[]): boolean => list.some((x) => pyEquals(item, x));

/** Python `int(x)` for str/float/bool. */
function pyInt(v: unknown): number {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return Math.trunc(v);
  if (typeof v === "string") {
    const s = v.trim().replace(/(\d)_(?=\d)/g, "$1");
    if (/^[+-]?\d+$/.test(s)) return Number.parseInt(s, 10);
    throw new ConditionError(`invalid literal for int() with base 10: ${pyReprStr(v)}`);
  }
  throw new ConditionError(`Cannot convert ${typeName(v)} to int`);
}

/** Python `float(x)` for str/int/bool. */
function pyFloat(v: unknown): number {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const s = v.trim().replace(/(\d)_(?=\d)/g, "$1").toLowerCase();
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s)) return Number(s);
    if (/^[+-]?(inf|infinity)$/.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(s)) return Number.NaN;
    throw new ConditionError(`could not convert string to float: ${pyReprStr(v)}`);
  }
  throw new ConditionError(`Cannot convert ${typeName(v)} to float`);
}

const pyReprStr = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "<class 'NoneType'>";
  if (typeof v === "boolean") return "<class 'bool'>";
  if (typeof v === "number") return Number.isInteger(v) ? "<class 'int'>" : "<class 'float'>";
  if (typeof v === "string") return "<class 'str'>";
  if (Array.isArray(v)) return "<class 'list'>";
  return "<class 'dict'>";
}

const isNumberLike = (v: unknown): v is number | boolean => typeof v === "number" || typeof v === "boolean";

// ------------------------------------------------------------------ operators

function assertContains(value: unknown, expected: unknown): boolean {
  if (!pyTruthy(value)) return false;
  if (typeof value === "string") return value.includes(typeof expected === "string" ? expected : pyStr(expected));
  if (Array.isArray(value)) return pyIn(expected, value);
  throw new ConditionError("Invalid actual value type: string or array");
}

function assertNotContains(value: unknown, expected: unknown): boolean {
  if (!pyTruthy(value)) return true;
  if (typeof value === "string") return !value.includes(typeof expected === "string" ? expected : pyStr(expected));
  if (Array.isArray(value)) return !pyIn(expected, value);
  throw new ConditionError("Invalid actual value type: string or array");
}

function assertAffix(value: unknown, expected: unknown, op: "start with" | "end with"): boolean {
  if (!pyTruthy(value)) return false;
  if (typeof value !== "string") throw new ConditionError("Invalid actual value type: string");
  if (typeof expected !== "string") throw new ConditionError(`Expected value must be a string for ${op === "start with" ? "startswith" : "endswith"}`);
  return op === "start with" ? value.startsWith(expected) : value.endsWith(expected);
}

function assertIs(value: unknown, expected: unknown, negate: boolean): boolean {
  // §4.7: a null actual is false for both `is` and `is not`.
  if (value === null || value === undefined) return false;
  if (typeof value !== "string" && typeof value !== "boolean") throw new ConditionError("Invalid actual value type: string or boolean");
  const eq = pyEquals(value, expected);
  return negate ? !eq : eq;
}

function assertEqual(value: unknown, expected: unknown, negate: boolean): boolean {
  if (value === null || value === undefined) return false;
  if (!isNumberLike(value)) throw new ConditionError("Invalid actual value type: number or boolean");
  let exp: number | boolean;
  if (typeof value === "boolean") {
    if (!isNumberLike(expected) && typeof expected !== "string") throw new ConditionError(`Cannot convert ${typeName(expected)} to bool`);
    exp = pyTruthy(expected);
  } else if (Number.isInteger(value)) {
    // Python `int(expected)`: "3.5" raises, 3.5 truncates.
    if (!isNumberLike(expected) && typeof expected !== "string") throw new ConditionError(`Cannot convert ${typeName(expected)} to int`);
    exp = pyInt(expected);
  } else {
    if (!isNumberLike(expected) && typeof expected !== "string") throw new ConditionError(`Cannot convert ${typeName(expected)} to float`);
    exp = pyFloat(expected);
  }
  const eq = pyEquals(value, exp);
  return negate ? !eq : eq;
}

function normalizeNumeric(value: number, expected: unknown): [number, number] {
  if (typeof expected === "number") return [value, expected];
  if (typeof expected === "boolean") return [value, expected ? 1 : 0];
  if (typeof expected !== "string") throw new ConditionError(`Cannot convert ${typeName(expected)} to number`);
  let f: number;
  try {
    f = pyFloat(expected);
  } catch {
    throw new ConditionError(`Cannot convert '${expected}' to number`);
  }
  return [value, f];
}

function assertCompare(value: unknown, expected: unknown, op: string): boolean {
  if (value === null || value === undefined) return false;
  if (!isNumberLike(value)) throw new ConditionError("Invalid actual value type: number");
  const [a, b] = normalizeNumeric(typeof value === "boolean" ? (value ? 1 : 0) : value, expected);
  switch (op) {
    case ">":
      return a > b;
    case "<":
      return a < b;
    case "≥":
    case ">=":
      return a >= b;
    default:
      return a <= b;
  }
}

function assertIn(value: unknown, expected: unknown, negate: boolean): boolean {
  if (!pyTruthy(value)) return negate;
  if (!Array.isArray(expected)) throw new ConditionError("Invalid expected value type: array");
  return negate ? !pyIn(value, expected) : pyIn(value, expected);
}

function assertAllOf(value: unknown, expected: unknown): boolean {
  if (!pyTruthy(value)) return false;
  if (!Array.isArray(expected)) throw new ConditionError("Invalid expected value type: array");
  if (typeof value === "string") return expected.every((e) => typeof e === "string" && value.includes(e));
  if (Array.isArray(value)) return expected.every((e) => pyIn(e, value));
  throw new ConditionError("Invalid actual value type: string or array");
}

/** One comparison (Dify `_evaluate_condition`). */
export function evaluateOperator(operator: string, value: unknown, expected: unknown): boolean {
  switch (operator) {
    case "contains":
      return assertContains(value, expected);
    case "not contains":
      return assertNotContains(value, expected);
    case "start with":
    case "end with":
      return assertAffix(value, expected, operator);
    case "is":
      return assertIs(value, expected, false);
    case "is not":
      return assertIs(value, expected, true);
    case "empty":
      return !pyTruthy(value);
    case "not empty":
      return pyTruthy(value);
    case "=":
      return assertEqual(value, expected, false);
    case "≠":
    case "!=":
      return assertEqual(value, expected, true);
    case ">":
    case "<":
    case "≥":
    case "≤":
    case ">=":
    case "<=":
      return assertCompare(value, expected, operator);
    case "null":
      return value === null || value === undefined;
    case "not null":
      return !(value === null || value === undefined);
    case "in":
      return assertIn(value, expected, false);
    case "not in":
      return assertIn(value, expected, true);
    case "all of":
      return assertAllOf(value, expected);
    case "exists":
      return !(value === null || value === undefined);
    case "not exists":
      return value === null || value === undefined;
    default:
      throw new ConditionError(`Unsupported operator: ${operator}`);
  }
}

// ------------------------------------------------------------------ files

/** A file attribute as Dify's file_manager.get_attr reads it (§4.7 sub-conditions, §4.19). */
export function fileAttribute(f: WorkflowFile, key: string): unknown {
  switch (key) {
    case "type":
      return f.type;
    case "size":
      return f.size;
    case "name":
      return f.filename;
    case "mime_type":
      return f.mime_type;
    case "transfer_method":
      return f.transfer_method;
    case "url":
      return f.url ?? f.remote_url ?? null;
    case "extension":
      return f.extension;
    case "related_id":
      return f.related_id;
    default:
      throw new ConditionError(`'${key}' is not a valid FileAttribute`);
  }
}

const dotted = (v: unknown) => (typeof v === "string" && v && !v.startsWith(".") ? `.${v}` : v);

function evaluateSubConditions(files: WorkflowFile[], subs: SubCondition[], logicalOperator: string): boolean {
  const results: boolean[] = [];
  for (const sub of subs) {
    let values = files.map((f) => fileAttribute(f, sub.key));
    let expected = sub.value;
    if (sub.key === "extension") {
      // Extensions are compared with their leading dot on both sides.
      if (typeof expected !== "string") throw new ConditionError("Expected value must be a string when key is FileAttribute.EXTENSION");
      expected = dotted(expected);
      values = values.map(dotted);
    }
    const per = values.map((v) => evaluateOperator(sub.comparison_operator, v, expected));
    // "not …" operators must hold for every file, the others for any file (§4.7).
    results.push(sub.comparison_operator.includes("not") ? per.every(Boolean) : per.some(Boolean));
  }
  return logicalOperator === "or" ? results.some(Boolean) : results.every(Boolean);
}

const isFileArray = (v: unknown): v is WorkflowFile[] => Array.isArray(v) && v.length > 0 && v.every(isFile);

/** Dify `_convert_to_bool`: ints/bools, or strings holding JSON ints/bools ("true", "0"). */
function toBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "number" && Number.isInteger(v)) return v !== 0;
  if (typeof v === "string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new ConditionError(`unexpected value: type=<class 'str'>, value=${v}`);
    }
    if (typeof parsed === "boolean") return parsed;
    if (typeof parsed === "number" && Number.isInteger(parsed)) return parsed !== 0;
  }
  throw new ConditionError(`unexpected value: type=${typeName(v)}, value=${pyStr(v)}`);
}

const isBoolValue = (v: unknown) => typeof v === "boolean" || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "boolean"));

/**
 * Evaluates a condition group with short-circuit (`and` stops at the first false, `or` at the
 * first true). Throws ConditionError when a variable is missing or a comparison is invalid.
 */
export function evaluateConditions(conditions: readonly Condition[], logicalOperator: string | undefined, pool: VariablePool): ConditionsResult {
  const op = logicalOperator === "or" ? "or" : "and";
  const inputs: ConditionInput[] = [];
  const results: boolean[] = [];
  for (const c of conditions ?? []) {
    const selector = Array.isArray(c.variable_selector) ? c.variable_selector.map(String) : [];
    const actual = pool.get(selector);
    // A variable that is not in the pool (e.g. from a skipped branch) fails the node (§4.7).
    if (actual === undefined) throw new ConditionError(`Variable ${pyStr(selector)} not found`);
    const operator = String(c.comparison_operator ?? "");
    let result: boolean;
    if (isFileArray(actual) && (operator === "contains" || operator === "not contains" || operator === "all of")) {
      const sub = c.sub_variable_condition;
      if (!sub) throw new ConditionError("Sub variable is required");
      result = evaluateSubConditions(actual, sub.conditions ?? [], sub.logical_operator ?? "and");
    } else if (operator === "exists" || operator === "not exists") {
      result = evaluateOperator(operator, actual, null);
    } else {
      let expected: unknown = c.value;
      if (typeof expected === "string") expected = pool.renderTemplate(expected);
      if (isBoolValue(actual) && expected !== null && expected !== undefined) {
        expected = Array.isArray(expected) ? expected.map(toBool) : toBool(expected);
      }
      inputs.push({ actual_value: actual, expected_value: expected ?? null, comparison_operator: operator });
      result = evaluateOperator(operator, actual, expected ?? null);
    }
    results.push(result);
    if ((op === "and" && !result) || (op === "or" && result)) return { inputs, results, finalResult: result };
  }
  return { inputs, results, finalResult: op === "and" ? results.every(Boolean) : results.some(Boolean) };
}

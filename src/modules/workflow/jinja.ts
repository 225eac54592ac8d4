// Jinja2 rendering for template-transform (dsl-and-workflow §4.9) and jinja2 prompts (§3.5).
//
// Library: @huggingface/jinja. Chosen over nunjucks after running Dify-style templates through
// both: it implements Python-side semantics the templates rely on — `|tojson`, `dict.items()`,
// `.get()`, `.strip()`/`.split()`, slicing `x[0:2]`, `map(attribute=…)`, `loop.*`, Python
// truthiness of []/{} — where nunjucks fails on `.items()`, `|tojson` and slices and prints
// lists as "a,b" and dicts as "[object Object]".
// Two adjustments bring it closer to Python's jinja2.Template defaults (what Dify's sandbox runs):
//   * trim_blocks / lstrip_blocks are OFF (HF's Template turns them on for chat templates);
//   * printed values use Python `str()`: True/False, None, `['a', 1]`, `{'k': 'v'}`, `3.0` for
//     float literals (HF prints true, "", and JSON).
// Known gaps (render errors, the node fails): filters `round`, `truncate`, `e`/`escape`, `first`
// on strings, `%`-formatting of strings.
import * as hf from "@huggingface/jinja";
import { pyRepr } from "./variable-pool.js";

interface RuntimeValueLike {
  type: string;
  value: unknown;
  toString(): string;
}

/** A runtime value back to plain JS (for Python `str()` of containers). */
function toPlain(v: RuntimeValueLike): unknown {
  switch (v.type) {
    case "ArrayValue":
    case "TupleValue":
      return (v.value as RuntimeValueLike[]).map(toPlain);
    case "ObjectValue":
    case "KeywordArgumentsValue":
    case "NamespaceValue": {
      const out: Record<string, unknown> = {};
      for (const [k, x] of v.value as Map<string, RuntimeValueLike>) out[k] = toPlain(x);
      return out;
    }
    case "UndefinedValue":
    case "NullValue":
      return null;
    default:
      return v.value;
  }
}

/** Python `str()` of a printed value. */
function pyPrint(v: RuntimeValueLike): string {
  switch (v.type) {
    case "StringValue":
      return v.value as string;
    case "BooleanValue":
      return v.value ? "True" : "False";
    case "NullValue":
      return "None";
    case "UndefinedValue":
      return "";
    case "IntegerValue":
    case "FloatValue":
      return v.toString(); // HF already prints float literals as "3.0"
    case "ArrayValue":
    case "TupleValue":
    case "ObjectValue":
    case "NamespaceValue":
      return pyRepr(toPlain(v));
    default:
      return v.toString();
  }
}

// Statements whose value is not printed (they return NullValue/Undefined as "no output").
const SILENT = new Set(["Set", "Macro", "Comment", "Break", "Continue", "If", "For", "CallStatement", "FilterStatement", "Program"]);

// The package's .d.ts re-exports from extension-less paths that NodeNext resolution cannot
// follow, so the runtime classes are typed here by what we use.
interface Environment {
  set(name: string, value: unknown): unknown;
}
const { parse, tokenize } = hf as unknown as {
  parse(tokens: unknown): unknown;
  tokenize(source: string, options: { lstrip_blocks: boolean; trim_blocks: boolean }): unknown;
};
const Interpreter = hf.Interpreter as unknown as new (env: Environment) => { run(program: unknown): unknown };
const EnvironmentCtor = hf.Environment as unknown as new () => Environment;

class PyInterpreter extends Interpreter {}
// Replace the block evaluator (where every printed value is stringified) so output follows
// Python's str(); the method is TS-private in the library, hence the prototype assignment.
(PyInterpreter.prototype as unknown as Record<string, unknown>)["evaluateBlock"] = function evaluateBlock(
  this: { evaluate(s: unknown, env: Environment): RuntimeValueLike },
  statements: { type: string }[],
  env: Environment,
) {
  let out = "";
  for (const st of statements) {
    const v = this.evaluate(st, env);
    if (SILENT.has(st.type) && (v.type === "NullValue" || v.type === "UndefinedValue")) continue;
    out += pyPrint(v);
  }
  // Same shape as the library's StringValue result: callers read `.value`/`.type`.
  const sv = this.evaluate({ type: "StringLiteral", value: out } as unknown, env);
  return sv;
};

function pyRange(...args: number[]): number[] {
  let [start, stop, step] = [0, 0, 1];
  if (args.length === 1) stop = args[0]!;
  else [start, stop, step = 1] = args as [number, number, number?];
  if (step === 0) throw new Error("range() arg 3 must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** Renders a Jinja2 template with the given variables; throws on syntax/render errors. */
export function renderJinja2(template: string, variables: Record<string, unknown>): string {
  const program = parse(tokenize(template, { lstrip_blocks: false, trim_blocks: false }));
  const env = new EnvironmentCtor();
  for (const [k, v] of [["true", true], ["false", false], ["none", null], ["True", true], ["False", false], ["None", null]] as const) env.set(k, v);
  env.set("range", pyRange);
  env.set("raise_exception", (msg: string) => {
    throw new Error(msg);
  });
  for (const [k, v] of Object.entries(variables)) env.set(k, v === undefined ? null : v);
  const result = new PyInterpreter(env).run(program) as unknown as RuntimeValueLike;
  return String(result.value);
}

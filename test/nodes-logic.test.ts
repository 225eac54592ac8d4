// if-else and the shared condition evaluator (dsl-and-workflow §4.7, §7 item 5).
import { describe, expect, it } from "vitest";
import { evaluateConditions, evaluateOperator } from "../src/modules/workflow/conditions.js";
import { ifElseNode } from "../src/modules/workflow/nodes/if-else.js";
import { file, makeCtx, node } from "./support/node-ctx.js";

const op = evaluateOperator;

describe("condition operators", () => {
  it("contains / not contains on strings and arrays, falsy actuals", () => {
    expect(op("contains", "hello world", "world")).toBe(true);
    expect(op("contains", "hello", "x")).toBe(false);
    expect(op("contains", "a1", 1)).toBe(true); // str(expected)
    expect(op("contains", ["a", "b"], "b")).toBe(true);
    expect(op("contains", [1, 2], 1)).toBe(true);
    expect(op("contains", "", "x")).toBe(false);
    expect(op("contains", null, "x")).toBe(false);
    expect(() => op("contains", 5, "5")).toThrow("Invalid actual value type");
    expect(op("not contains", "", "x")).toBe(true);
    expect(op("not contains", null, "x")).toBe(true);
    expect(op("not contains", [], "x")).toBe(true);
    expect(op("not contains", "abc", "b")).toBe(false);
    expect(op("not contains", ["a"], "b")).toBe(true);
  });

  it("start with / end with", () => {
    expect(op("start with", "abc", "ab")).toBe(true);
    expect(op("end with", "abc", "bc")).toBe(true);
    expect(op("start with", "abc", "b")).toBe(false);
    expect(op("start with", "", "a")).toBe(false);
    expect(op("end with", null, "a")).toBe(false);
    expect(() => op("start with", 3, "3")).toThrow();
    expect(() => op("end with", "abc", 3)).toThrow("Expected value must be a string");
  });

  it("is / is not: null actual is false for both", () => {
    expect(op("is", "a", "a")).toBe(true);
    expect(op("is", "a", "b")).toBe(false);
    expect(op("is not", "a", "b")).toBe(true);
    expect(op("is", null, "a")).toBe(false);
    expect(op("is not", null, "a")).toBe(false);
    expect(op("is", true, true)).toBe(true);
    expect(() => op("is", 3, "3")).toThrow();
  });

  it("empty / not empty use Python falsiness (0 and false are empty)", () => {
    for (const v of [null, "", 0, false, [], {}]) expect(op("empty", v, null)).toBe(true);
    for (const v of ["a", 1, true, [0], { a: 1 }]) expect(op("not empty", v, null)).toBe(true);
    expect(op("not empty", 0, null)).toBe(false);
  });

  it("= and ≠: int parsing of the expected value, floats, booleans, null", () => {
    expect(op("=", 3, "3")).toBe(true);
    expect(op("=", 3, " 3 ")).toBe(true);
    expect(() => op("=", 3, "3.5")).toThrow("invalid literal for int()");
    expect(op("=", 3, 3.9)).toBe(true); // int(3.9) == 3
    expect(op("=", 2.5, "2.5")).toBe(true);
    expect(op("≠", 2.5, "2.4")).toBe(true);
    expect(op("=", null, "1")).toBe(false);
    expect(op("≠", null, "1")).toBe(false);
    expect(op("=", true, true)).toBe(true);
    expect(op("=", false, "")).toBe(true); // bool("") is False
    expect(() => op("=", "3", "3")).toThrow("number or boolean");
  });

  it("> < ≥ ≤ parse the expected value as float; booleans count as numbers", () => {
    expect(op(">", 5, "3")).toBe(true);
    expect(op("<", 5, "5.5")).toBe(true);
    expect(op("≥", 5, "5")).toBe(true);
    expect(op("≤", 5.5, "5")).toBe(false);
    expect(op(">", true, "0")).toBe(true);
    expect(op(">", null, "1")).toBe(false);
    expect(() => op(">", "5", "1")).toThrow("Invalid actual value type: number");
    expect(() => op(">", 5, "abc")).toThrow("Cannot convert 'abc' to number");
  });

  it("null / not null / exists / not exists", () => {
    expect(op("null", null, null)).toBe(true);
    expect(op("null", "", null)).toBe(false);
    expect(op("not null", 0, null)).toBe(true);
    expect(op("exists", file(), null)).toBe(true);
    expect(op("not exists", null, null)).toBe(true);
  });

  it("in / not in / all of", () => {
    expect(op("in", "a", ["a", "b"])).toBe(true);
    expect(op("in", "c", ["a", "b"])).toBe(false);
    expect(op("in", "", ["a"])).toBe(false);
    expect(op("not in", "", ["a"])).toBe(true);
    expect(op("not in", "c", ["a"])).toBe(true);
    expect(() => op("in", "a", "abc")).toThrow("Invalid expected value type: array");
    expect(op("all of", ["a", "b", "c"], ["a", "c"])).toBe(true);
    expect(op("all of", ["a"], ["a", "c"])).toBe(false);
    expect(op("all of", "hello world", ["hello", "world"])).toBe(true);
    expect(op("all of", [], ["a"])).toBe(false);
  });

  it("unknown operator fails", () => {
    expect(() => op("between", 1, 2)).toThrow("Unsupported operator: between");
  });
});

describe("evaluateConditions", () => {
  it("renders {{#…#}} in expected values, short-circuits and reports inputs", () => {
    const { pool } = makeCtx({ nodes: { start: { age: 20, name: "Ann" }, limits: { min: 18 } } });
    const r = evaluateConditions(
      [
        { variable_selector: ["start", "age"], comparison_operator: "≥", value: "{{#limits.min#}}" },
        { variable_selector: ["start", "name"], comparison_operator: "is", value: "Bob" },
        { variable_selector: ["start", "missing"], comparison_operator: "is", value: "x" },
      ],
      "and",
      pool,
    );
    expect(r.finalResult).toBe(false);
    expect(r.results).toEqual([true, false]); // the third (missing) is never reached
    expect(r.inputs).toEqual([
      { actual_value: 20, expected_value: "18", comparison_operator: "≥" },
      { actual_value: "Ann", expected_value: "Bob", comparison_operator: "is" },
    ]);
    const or = evaluateConditions([{ variable_selector: ["start", "name"], comparison_operator: "is", value: "Ann" }, { variable_selector: ["x", "y"], comparison_operator: "is", value: "" }], "or", pool);
    expect(or.finalResult).toBe(true);
  });

  it("a missing variable fails", () => {
    const { pool } = makeCtx();
    expect(() => evaluateConditions([{ variable_selector: ["nope", "x"], comparison_operator: "empty" }], "and", pool)).toThrow("Variable ['nope', 'x'] not found");
  });

  it("boolean variables convert expected strings by JSON parsing", () => {
    const { pool } = makeCtx({ nodes: { s: { flag: false, flags: [true, false] } } });
    expect(evaluateConditions([{ variable_selector: ["s", "flag"], comparison_operator: "is", value: "false" }], "and", pool).finalResult).toBe(true);
    expect(evaluateConditions([{ variable_selector: ["s", "flag"], comparison_operator: "=", value: "0" }], "and", pool).finalResult).toBe(true);
    expect(evaluateConditions([{ variable_selector: ["s", "flags"], comparison_operator: "contains", value: "true" }], "and", pool).finalResult).toBe(true);
    expect(() => evaluateConditions([{ variable_selector: ["s", "flag"], comparison_operator: "is", value: "yes" }], "and", pool)).toThrow("unexpected value");
  });

  it("file arrays: sub-conditions replace the operator (any, or all for `not` operators)", () => {
    const files = [file({ filename: "a.pdf", extension: ".pdf", type: "document", size: 10 }), file({ filename: "b.png", extension: "png", type: "image", size: 500 })];
    const { pool } = makeCtx({ nodes: { s: { files } } });
    const sub = (logical: string, conditions: { key: string; comparison_operator: string; value: unknown }[], operator = "contains") =>
      evaluateConditions([{ variable_selector: ["s", "files"], comparison_operator: operator, sub_variable_condition: { logical_operator: logical, conditions } }], "and", pool);
    expect(sub("and", [{ key: "extension", comparison_operator: "is", value: "pdf" }]).finalResult).toBe(true); // normalised to ".pdf"
    expect(sub("and", [{ key: "extension", comparison_operator: "is", value: ".png" }]).finalResult).toBe(true); // "png" → ".png"
    expect(sub("and", [{ key: "type", comparison_operator: "is", value: "audio" }]).finalResult).toBe(false);
    expect(sub("and", [{ key: "type", comparison_operator: "is not", value: "audio" }]).finalResult).toBe(true); // all files
    expect(sub("and", [{ key: "type", comparison_operator: "is not", value: "image" }]).finalResult).toBe(false);
    expect(sub("or", [{ key: "size", comparison_operator: ">", value: "1000" }, { key: "name", comparison_operator: "start with", value: "b" }]).finalResult).toBe(true);
    expect(sub("and", [{ key: "type", comparison_operator: "in", value: ["image", "document"] }], "all of").finalResult).toBe(true);
    expect(() => evaluateConditions([{ variable_selector: ["s", "files"], comparison_operator: "contains", value: "x" }], "and", pool)).toThrow("Sub variable is required");
    // exists on a file is a plain null check and is not listed in inputs
    const { pool: p2 } = makeCtx({ nodes: { s: { f: file(), none: null } } });
    const ex = evaluateConditions([{ variable_selector: ["s", "f"], comparison_operator: "exists" }, { variable_selector: ["s", "none"], comparison_operator: "not exists" }], "and", p2);
    expect(ex.finalResult).toBe(true);
    expect(ex.inputs).toEqual([]);
  });
});

describe("if-else node", () => {
  const cases = [
    { case_id: "true", id: "true", logical_operator: "and", conditions: [{ variable_selector: ["start", "n"], comparison_operator: ">", value: "10" }] },
    { case_id: "9a1c", logical_operator: "or", conditions: [{ variable_selector: ["start", "n"], comparison_operator: "=", value: "5" }, { variable_selector: ["start", "s"], comparison_operator: "empty", value: "" }] },
  ];

  it("selects the first true case, its case_id as handle", async () => {
    const { ctx } = makeCtx({ nodes: { start: { n: 11, s: "x" } } });
    const r = await ifElseNode.run(node("if-else", { cases }), ctx);
    expect(r.status).toBe("succeeded");
    expect(r.edgeSourceHandle).toBe("true");
    expect(r.outputs).toEqual({ result: true, selected_case_id: "true" });
    expect(r.inputs).toEqual({ conditions: [{ actual_value: 11, expected_value: "10", comparison_operator: ">" }] });
  });

  it("ELIF, then ELSE (false) with records of every evaluated case", async () => {
    const { ctx } = makeCtx({ nodes: { start: { n: 5, s: "x" } } });
    const r = await ifElseNode.run(node("if-else", { cases }), ctx);
    expect(r.edgeSourceHandle).toBe("9a1c");
    const { ctx: c2 } = makeCtx({ nodes: { start: { n: 1, s: "x" } } });
    const r2 = await ifElseNode.run(node("if-else", { cases }), c2);
    expect(r2.edgeSourceHandle).toBe("false");
    expect(r2.outputs).toEqual({ result: false, selected_case_id: "false" });
    const results = (r2.process_data as { condition_results: { results: boolean[]; final_result: boolean }[] }).condition_results;
    expect(results.map((c) => [c.results, c.final_result])).toEqual([[[false], false], [[false, false], false]]);
  });

  it("legacy shape: top-level conditions, handles true/false", async () => {
    const { ctx } = makeCtx({ nodes: { start: { q: "hello" } } });
    const data = { logical_operator: "and", conditions: [{ variable_selector: ["start", "q"], comparison_operator: "contains", value: "ell" }] };
    const r = await ifElseNode.run(node("if-else", data), ctx);
    expect(r.edgeSourceHandle).toBe("true");
    expect((r.process_data as { condition_results: { group: string }[] }).condition_results[0]!.group).toBe("default");
    const { ctx: c2 } = makeCtx({ nodes: { start: { q: "bye" } } });
    expect((await ifElseNode.run(node("if-else", data), c2)).edgeSourceHandle).toBe("false");
  });

  it("fixture shape: `empty` on a string; a missing variable fails the node", async () => {
    const fixtureCases = [{ case_id: "true", id: "true", logical_operator: "and", conditions: [{ comparison_operator: "empty", id: "e76e", value: "", varType: "string", variable_selector: ["1726981615323", "imageUrl"] }] }];
    const { ctx } = makeCtx({ nodes: { "1726981615323": { imageUrl: "" } } });
    expect((await ifElseNode.run(node("if-else", { cases: fixtureCases }), ctx)).edgeSourceHandle).toBe("true");
    const { ctx: c2 } = makeCtx();
    const r = await ifElseNode.run(node("if-else", { cases: fixtureCases }), c2);
    expect(r.status).toBe("failed");
    expect(r.error).toBe("Variable ['1726981615323', 'imageUrl'] not found");
  });

  it("sys and conversation selectors", async () => {
    const { ctx } = makeCtx({ sys: { query: "hi there" }, conversation: { count: 3 } });
    const data = { cases: [{ case_id: "true", logical_operator: "and", conditions: [{ variable_selector: ["sys", "query"], comparison_operator: "start with", value: "hi" }, { variable_selector: ["conversation", "count"], comparison_operator: "≤", value: "3" }] }] };
    expect((await ifElseNode.run(node("if-else", data), ctx)).edgeSourceHandle).toBe("true");
  });
});

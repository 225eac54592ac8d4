// variable-aggregator (§4.11), assigner v1/v2 (§4.12–4.13), list-operator (§4.19),
// document-extractor (§4.18) — dsl-and-workflow.
import { describe, expect, it } from "vitest";
import { assignerNode } from "../src/modules/workflow/nodes/assigner.js";
import { documentExtractorNode } from "../src/modules/workflow/nodes/document-extractor.js";
import { nodeImplementation } from "../src/modules/workflow/nodes/index.js";
import { listOperatorNode } from "../src/modules/workflow/nodes/list-operator.js";
import { variableAggregatorNode } from "../src/modules/workflow/nodes/variable-aggregator.js";
import type { WorkflowFile } from "../src/modules/workflow/types.js";
import { file, makeCtx, node } from "./support/node-ctx.js";

describe("registry", () => {
  it("serves every node type of this group, legacy variable-assigner included", () => {
    for (const t of ["if-else", "template-transform", "http-request", "variable-aggregator", "variable-assigner", "assigner", "document-extractor", "list-operator"]) {
      expect(nodeImplementation(t), t).toBeDefined();
    }
    expect(nodeImplementation("variable-assigner")).toBe(variableAggregatorNode);
  });
});

describe("variable-aggregator", () => {
  it("returns the first existing selector (fixture shape)", async () => {
    const { ctx } = makeCtx({ nodes: { "1718246959048": { text: "from b" } } });
    const r = await variableAggregatorNode.run(node("variable-aggregator", { output_type: "string", variables: [["1718246916748", "text"], ["1718246959048", "text"]] }), ctx);
    expect(r).toMatchObject({ status: "succeeded", outputs: { output: "from b" }, inputs: { text: "from b" } });
  });

  it("nothing found → empty outputs", async () => {
    const { ctx } = makeCtx();
    expect(await variableAggregatorNode.run(node("variable-assigner", { variables: [["a", "x"]] }), ctx)).toMatchObject({ status: "succeeded", outputs: {} });
  });

  it("groups: one {output} object per group", async () => {
    const { ctx } = makeCtx({ nodes: { a: { text: "A", obj: { k: 1 } }, b: { n: 0 } } });
    const r = await variableAggregatorNode.run(
      node("variable-aggregator", {
        advanced_settings: {
          group_enabled: true,
          groups: [
            { group_name: "Group1", variables: [["x", "text"], ["a", "text"]] },
            { group_name: "Nums", variables: [["b", "n"]] },
            { group_name: "Empty", variables: [["zz", "y"]] },
            { group_name: "Nested", variables: [["a", "obj", "k"]] },
          ],
        },
      }),
      ctx,
    );
    expect(r.outputs).toEqual({ Group1: { output: "A" }, Nums: { output: 0 }, Nested: { output: 1 } });
    expect(r.inputs).toEqual({ text: "A", n: 0, "obj.k": 1 });
  });
});

describe("assigner v1", () => {
  it("over-write, append, clear; writes go to the pool", async () => {
    const { ctx, pool } = makeCtx({ sys: { query: "hi" }, conversation: { language: "en", history: ["a"], count: 5, obj: { a: 1 } } });
    const run = (d: Record<string, unknown>) => assignerNode.run(node("assigner", d), ctx);
    let r = await run({ assigned_variable_selector: ["conversation", "language"], write_mode: "over-write", input_variable_selector: ["sys", "query"] });
    expect(r).toMatchObject({ status: "succeeded", inputs: { value: "hi" }, outputs: {} });
    expect(r.process_data).toEqual({ __updated_variables: [{ name: "language", selector: ["conversation", "language"], value_type: "string", new_value: "hi" }] });
    expect(pool.get(["conversation", "language"])).toBe("hi");
    await run({ assigned_variable_selector: ["conversation", "history"], write_mode: "append", input_variable_selector: ["sys", "query"] });
    expect(pool.get(["conversation", "history"])).toEqual(["a", "hi"]);
    for (const [name, zero] of [["count", 0], ["obj", {}], ["history", []], ["language", ""]] as const) {
      await run({ assigned_variable_selector: ["conversation", name], write_mode: "clear" });
      expect(pool.get(["conversation", name])).toEqual(zero);
    }
  });

  it("a missing target or input fails", async () => {
    const { ctx } = makeCtx({ conversation: { a: "x" } });
    await expect(assignerNode.run(node("assigner", { assigned_variable_selector: ["conversation", "nope"], write_mode: "clear" }), ctx)).rejects.toThrow("assigned variable not found");
    await expect(assignerNode.run(node("assigner", { version: "1", assigned_variable_selector: ["conversation", "a"], write_mode: "over-write", input_variable_selector: ["sys", "x"] }), ctx)).rejects.toThrow("input value not found");
  });
});

describe("assigner v2", () => {
  const v2 = (items: Record<string, unknown>[]) => node("assigner", { version: "2", items });

  it("fixture: over-write conversation.str from sys.query", async () => {
    const { ctx, pool } = makeCtx({ sys: { query: "hello" }, conversation: { str: "" } });
    const r = await assignerNode.run(v2([{ input_type: "variable", operation: "over-write", value: ["sys", "query"], variable_selector: ["conversation", "str"], write_mode: "over-write" }]), ctx);
    expect(r.status).toBe("succeeded");
    expect(pool.get(["conversation", "str"])).toBe("hello");
    expect(r.process_data).toMatchObject({ str: "hello", __updated_variables: [{ name: "str", selector: ["conversation", "str"], value_type: "string", new_value: "hello" }] });
    expect((r.inputs as { items: unknown[] }).items).toHaveLength(1);
  });

  it("fixture: += on a loop variable", async () => {
    const { ctx, pool } = makeCtx({ nodes: { "1754827949615": { num: 1 } } });
    await assignerNode.run(v2([{ input_type: "constant", operation: "+=", value: 1, variable_selector: ["1754827949615", "num"] }]), ctx);
    expect(pool.get(["1754827949615", "num"])).toBe(2);
  });

  it("every operation, applied in order on a working copy", async () => {
    const { ctx, pool } = makeCtx({
      conversation: { n: 10, s: "a", o: { a: 1 }, b: false, list: ["x"], nums: [1, 2, 3], empty: [] },
      nodes: { llm: { text: "t", more: ["y", "z"] } },
    });
    const r = await assignerNode.run(
      v2([
        { variable_selector: ["conversation", "n"], operation: "-=", input_type: "constant", value: 4 },
        { variable_selector: ["conversation", "n"], operation: "*=", input_type: "constant", value: 3 },
        { variable_selector: ["conversation", "n"], operation: "/=", input_type: "constant", value: 4 },
        { variable_selector: ["conversation", "s"], operation: "set", input_type: "constant", value: "b" },
        { variable_selector: ["conversation", "o"], operation: "set", input_type: "constant", value: '{"k": [1]}' },
        { variable_selector: ["conversation", "b"], operation: "over-write", input_type: "constant", value: true },
        { variable_selector: ["conversation", "list"], operation: "append", input_type: "variable", value: ["llm", "text"] },
        { variable_selector: ["conversation", "list"], operation: "extend", input_type: "variable", value: ["llm", "more"] },
        { variable_selector: ["conversation", "list"], operation: "remove-first", input_type: "variable" },
        { variable_selector: ["conversation", "nums"], operation: "remove-last" },
        { variable_selector: ["conversation", "empty"], operation: "remove-first" },
        { variable_selector: ["conversation", "empty"], operation: "append", input_type: "variable", value: ["llm", "text"] },
        { variable_selector: ["conversation", "nums"], operation: "clear" },
      ]),
      ctx,
    );
    expect(r.status).toBe("succeeded");
    expect(pool.get(["conversation", "n"])).toBe(4.5);
    expect(pool.get(["conversation", "s"])).toBe("b");
    expect(pool.get(["conversation", "o"])).toEqual({ k: [1] });
    expect(pool.get(["conversation", "b"])).toBe(true);
    expect(pool.get(["conversation", "list"])).toEqual(["t", "y", "z"]);
    expect(pool.get(["conversation", "nums"])).toEqual([]);
    expect(pool.get(["conversation", "empty"])).toEqual(["t"]);
    const updates = (r.process_data as { __updated_variables: { name: string }[] }).__updated_variables;
    expect(updates.map((u) => u.name)).toEqual(["n", "s", "o", "b", "list", "nums", "empty"]); // one per variable
  });

  it("an invalid item fails the node with nothing applied", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ variable_selector: ["conversation", "missing"], operation: "clear" }, "Variable ['conversation', 'missing'] not found"],
      [{ variable_selector: ["conversation", "s"], operation: "+=", input_type: "constant", value: 1 }, "Operation += is not supported for type string"],
      [{ variable_selector: ["conversation", "n"], operation: "+=", input_type: "variable", value: ["x", "y"] }, "Input type variable is not supported for operation +="],
      [{ variable_selector: ["conversation", "list"], operation: "append", input_type: "constant", value: "c" }, "Input type constant is not supported for operation append"],
      [{ variable_selector: ["conversation", "n"], operation: "/=", input_type: "constant", value: 0 }, "Invalid input value 0"],
      [{ variable_selector: ["conversation", "s"], operation: "over-write", input_type: "constant", value: 3 }, "Invalid input value 3"],
      [{ variable_selector: ["conversation", "o"], operation: "set", input_type: "constant", value: "{bad" }, "Invalid input value {bad"],
      [{ variable_selector: ["conversation", "list"], operation: "append", input_type: "variable", value: ["conversation", "n"] }, "Invalid input value 1"],
      [{ variable_selector: ["conversation", "s"], operation: "over-write", input_type: "variable", value: ["nowhere", "x"] }, "Variable ['nowhere', 'x'] not found"],
    ];
    for (const [item, error] of cases) {
      const { ctx, pool } = makeCtx({ conversation: { s: "a", n: 1, o: {}, list: ["x"] } });
      const r = await assignerNode.run(v2([{ variable_selector: ["conversation", "s"], operation: "set", input_type: "constant", value: "changed" }, item]), ctx);
      expect(r, error).toMatchObject({ status: "failed", error });
      expect(pool.get(["conversation", "s"])).toBe("a");
    }
  });

  it("an existing none input skips the item silently", async () => {
    const { ctx, pool } = makeCtx({ conversation: { s: "a" }, nodes: { x: { v: null } } });
    const r = await assignerNode.run(v2([{ variable_selector: ["conversation", "s"], operation: "over-write", input_type: "variable", value: ["x", "v"] }]), ctx);
    expect(r.status).toBe("succeeded");
    expect(pool.get(["conversation", "s"])).toBe("a");
    expect(r.process_data).toEqual({ __updated_variables: [] });
  });
});

describe("list-operator", () => {
  const lo = (variable: string[], over: Record<string, unknown> = {}) =>
    node("list-operator", { variable, filter_by: { enabled: false, conditions: [] }, extract_by: { enabled: false, serial: "1" }, order_by: { enabled: false, key: "", value: "asc" }, limit: { enabled: false, size: 10 }, ...over });

  it("strings: filter (successive), order (natural), limit", async () => {
    const { ctx } = makeCtx({ nodes: { s: { items: ["file10", "file2", "apple", "file1", "bar"] }, p: { pre: "file" } } });
    const r = await listOperatorNode.run(
      lo(["s", "items"], {
        filter_by: { enabled: true, conditions: [{ comparison_operator: "start with", value: "{{#p.pre#}}" }, { comparison_operator: "not contains", value: "1" }] },
        order_by: { enabled: true, value: "asc" },
      }),
      ctx,
    );
    expect(r.outputs).toEqual({ result: ["file2"], first_record: "file2", last_record: "file2" });
    const r2 = await listOperatorNode.run(lo(["s", "items"], { order_by: { enabled: true, value: "asc" }, limit: { enabled: true, size: 3 } }), ctx);
    expect(r2.outputs!.result).toEqual(["apple", "bar", "file1"]);
    const r3 = await listOperatorNode.run(lo(["s", "items"], { filter_by: { enabled: true, conditions: [{ comparison_operator: "in", value: "file10, bar" }] }, order_by: { enabled: true, value: "desc" } }), ctx);
    expect(r3.outputs!.result).toEqual(["file10", "file1", "bar"]);
    expect(r3.inputs).toEqual({ variable: ["file10", "file2", "apple", "file1", "bar"] });
  });

  it("numbers and booleans; extract by serial (templated)", async () => {
    const { ctx } = makeCtx({ nodes: { s: { nums: [5, 1, 10, 3], flags: [true, false, true] }, k: { idx: 2 } } });
    const r = await listOperatorNode.run(lo(["s", "nums"], { filter_by: { enabled: true, conditions: [{ comparison_operator: "≥", value: "3" }] }, order_by: { enabled: true, value: "desc" } }), ctx);
    expect(r.outputs!.result).toEqual([10, 5, 3]);
    const ex = await listOperatorNode.run(lo(["s", "nums"], { extract_by: { enabled: true, serial: "{{#k.idx#}}" } }), ctx);
    expect(ex.outputs).toEqual({ result: [1], first_record: 1, last_record: 1 });
    const bad = await listOperatorNode.run(lo(["s", "nums"], { extract_by: { enabled: true, serial: "9" } }), ctx);
    expect(bad).toMatchObject({ status: "failed", error: "Invalid serial index: must be <= 4, got 9" });
    const b = await listOperatorNode.run(lo(["s", "flags"], { filter_by: { enabled: true, conditions: [{ comparison_operator: "is", value: true }] } }), ctx);
    expect(b.outputs!.result).toEqual([true, true]);
  });

  it("files: filter by type/extension/size, order by name", async () => {
    const files = [file({ filename: "b.png", extension: ".png", type: "image", size: 300 }), file({ filename: "a.pdf", extension: ".pdf", type: "document", size: 10 }), file({ filename: "c.jpg", extension: ".jpg", type: "image", size: 50 })];
    const { ctx } = makeCtx({ nodes: { http: { files } } });
    const r = await listOperatorNode.run(lo(["http", "files"], { filter_by: { enabled: true, conditions: [{ key: "type", comparison_operator: "in", value: ["image"] }] }, order_by: { enabled: true, key: "name", value: "asc" } }), ctx);
    expect((r.outputs!.result as WorkflowFile[]).map((f) => f.filename)).toEqual(["b.png", "c.jpg"]);
    expect((r.outputs!.first_record as WorkflowFile).filename).toBe("b.png");
    const s = await listOperatorNode.run(lo(["http", "files"], { filter_by: { enabled: true, conditions: [{ key: "size", comparison_operator: "<", value: "100" }] }, order_by: { enabled: true, key: "size", value: "desc" } }), ctx);
    expect((s.outputs!.result as WorkflowFile[]).map((f) => f.size)).toEqual([50, 10]);
    const e = await listOperatorNode.run(lo(["http", "files"], { filter_by: { enabled: true, conditions: [{ key: "extension", comparison_operator: "is", value: ".pdf" }] } }), ctx);
    expect((e.outputs!.result as WorkflowFile[]).map((f) => f.filename)).toEqual(["a.pdf"]);
  });

  it("empty → empty result; missing and unsupported types fail", async () => {
    const { ctx } = makeCtx({ nodes: { s: { none: [], objs: [{ a: 1 }] } } });
    expect(await listOperatorNode.run(lo(["s", "none"]), ctx)).toMatchObject({ status: "succeeded", outputs: { result: [], first_record: null, last_record: null } });
    expect(await listOperatorNode.run(lo(["s", "zzz"]), ctx)).toMatchObject({ status: "failed", error: "Variable not found for selector: ['s', 'zzz']" });
    expect((await listOperatorNode.run(lo(["s", "objs"]), ctx)).status).toBe("failed");
  });
});

describe("document-extractor", () => {
  const extractText = async (f: WorkflowFile) => {
    if (f.extension === ".xyz") throw new Error("Unsupported Extension Type: .xyz");
    return `text of ${f.filename}`;
  };

  it("single file → string, list → array of strings", async () => {
    const a = file({ filename: "a.pdf" });
    const b = file({ filename: "b.docx", extension: ".docx" });
    const { ctx } = makeCtx({ nodes: { start: { one: a, many: [a, b], none: [] } }, services: { extractText } });
    expect(await documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "one"] }), ctx)).toMatchObject({
      status: "succeeded",
      inputs: { variable_selector: ["start", "one"] },
      process_data: { documents: [a] },
      outputs: { text: "text of a.pdf" },
    });
    expect((await documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "many"], is_array_file: true }), ctx)).outputs).toEqual({ text: ["text of a.pdf", "text of b.docx"] });
    expect((await documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "none"] }), ctx)).outputs).toEqual({ text: [] });
  });

  it("fails: missing variable, non-file value, extractor error, no extractor", async () => {
    const { ctx } = makeCtx({ nodes: { start: { s: "text", bad: file({ extension: ".xyz" }) } }, services: { extractText } });
    await expect(documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "x"] }), ctx)).rejects.toThrow("File variable not found");
    await expect(documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "s"] }), ctx)).rejects.toThrow("is not an ArrayFileSegment");
    expect(await documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "bad"] }), ctx)).toMatchObject({ status: "failed", error: "Unsupported Extension Type: .xyz" });
    const { ctx: noSvc } = makeCtx({ nodes: { start: { f: file() } } });
    expect(await documentExtractorNode.run(node("document-extractor", { variable_selector: ["start", "f"] }), noSvc)).toMatchObject({ status: "failed", error: expect.stringContaining("no text extractor") });
  });
});

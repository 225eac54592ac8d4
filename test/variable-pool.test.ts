// Unit tests for the workflow variable pool (dsl-and-workflow §3.4–§3.5).
import { describe, expect, it } from "vitest";
import type { WorkflowFile } from "../src/modules/workflow/types.js";
import { createVariablePool, parseTemplate, pyNumber, renderMarkdown, renderText, segmentType } from "../src/modules/workflow/variable-pool.js";

function file(over: Partial<WorkflowFile> = {}): WorkflowFile {
  return {
    dify_model_identity: "__dify__file__",
    id: "f1",
    tenant_id: "t",
    type: "image",
    transfer_method: "remote_url",
    remote_url: "https://x/a.png",
    related_id: null,
    filename: "a.png",
    extension: ".png",
    mime_type: "image/png",
    size: 10,
    ...over,
  };
}

function pool() {
  return createVariablePool({ system: { query: "hi", files: [] }, environment: { key: "secret" }, conversation: { memo: "m" } });
}

describe("selectors", () => {
  it("reads namespaces and node outputs", () => {
    const p = pool();
    expect(p.get(["sys", "query"])).toBe("hi");
    expect(p.get(["env", "key"])).toBe("secret");
    expect(p.get(["conversation", "memo"])).toBe("m");
    expect(p.get(["sys", "nope"])).toBeUndefined();
    expect(p.get(["sys"])).toBeUndefined();
    p.set(["llm", "text"], "out");
    expect(p.get(["llm", "text"])).toBe("out");
  });

  it("walks object keys only, never array indexes", () => {
    const p = pool();
    p.set(["n", "obj"], { a: { b: 1 }, list: [1, 2] });
    expect(p.get(["n", "obj", "a", "b"])).toBe(1);
    expect(p.get(["n", "obj", "a", "c"])).toBeUndefined();
    expect(p.get(["n", "obj", "list", "0"])).toBeUndefined();
  });

  it("reads file attributes as the third element", () => {
    const p = pool();
    p.set(["n", "f"], file());
    expect(p.get(["n", "f", "name"])).toBe("a.png");
    expect(p.get(["n", "f", "url"])).toBe("https://x/a.png");
    expect(p.get(["n", "f", "size"])).toBe(10);
    expect(p.get(["n", "f", "tenant_id"])).toBeUndefined();
  });

  it("resolves the legacy [start_id, 'sys.query'] form", () => {
    const p = pool();
    expect(p.get(["start", "sys.query"])).toBe("hi");
    expect(p.get(["start", "env.key"])).toBe("secret");
    p.set(["start", "sys.query"], "republished");
    expect(p.get(["start", "sys.query"])).toBe("republished");
    expect(p.flattenNamespaces()).toEqual({ "sys.query": "hi", "sys.files": [], "env.key": "secret", "conversation.memo": "m" });
  });

  it("nested set updates a copy", () => {
    const p = pool();
    const orig = { a: 1 };
    p.set(["n", "o"], orig);
    p.set(["n", "o", "b"], 2);
    expect(p.get(["n", "o"])).toEqual({ a: 1, b: 2 });
    expect(orig).toEqual({ a: 1 });
  });

  it("clone is deep", () => {
    const p = pool();
    p.set(["n", "o"], { a: [1] });
    const c = p.clone();
    (c.get(["n", "o", "a"]) as number[]).push(2);
    c.set(["n", "x"], 1);
    expect(p.get(["n", "o"])).toEqual({ a: [1] });
    expect(p.get(["n", "x"])).toBeUndefined();
  });
});

describe("rendering §3.4.2", () => {
  it("numbers as Python str", () => {
    expect(pyNumber(3)).toBe("3");
    expect(pyNumber(0.1)).toBe("0.1");
    expect(pyNumber(1e-5)).toBe("1e-05");
    expect(pyNumber(2.5e-7)).toBe("2.5e-07");
    // integral values are Python ints (JSON cannot carry 1e+16 as a float)
    expect(pyNumber(1.5e16)).toBe("15000000000000000");
    expect(pyNumber(-2.5)).toBe("-2.5");
    expect(pyNumber(0.0001)).toBe("0.0001");
    expect(pyNumber(123.456)).toBe("123.456");
  });

  it("text rendering", () => {
    expect(renderText(null)).toBe("");
    expect(renderText(true)).toBe("True");
    expect(renderText({ a: "é", b: [1] })).toBe('{"a": "é", "b": [1]}');
    expect(renderText(["a", "b"])).toBe('["a", "b"]');
    expect(renderText([1, 2.5])).toBe("[1, 2.5]");
    expect(renderText([{ k: "v" }])).toBe("[{'k': 'v'}]");
    expect(renderText([true])).toBe("[True]");
    expect(renderText([])).toBe("");
    expect(renderText(file())).toBe("");
    expect(renderText([file()])).toBe("");
  });

  it("markdown rendering", () => {
    expect(renderMarkdown({ a: 1 })).toBe('{\n  "a": 1\n}');
    expect(renderMarkdown(["a", "b"])).toBe("- a\n- b");
    expect(renderMarkdown([1, { k: "v" }])).toBe("- 1\n- {'k': 'v'}");
    expect(renderMarkdown(file())).toBe("![a.png](https://x/a.png)");
    expect(renderMarkdown(file({ type: "document", filename: "d.pdf", remote_url: "u" }))).toBe("[d.pdf](u)");
    expect(renderMarkdown([file(), file({ filename: "b.png" })])).toBe("![a.png](https://x/a.png)\n![b.png](https://x/a.png)");
    expect(renderMarkdown(false)).toBe("False");
  });

  it("segment types", () => {
    expect(segmentType([1, 2.5])).toBe("array[number]");
    expect(segmentType([1, "a"])).toBe("array[any]");
    expect(segmentType([[1]])).toBe("array[any]");
    expect(segmentType([true])).toBe("array[boolean]");
    expect(segmentType([file()])).toBe("array[file]");
  });
});

describe("templates §3.5", () => {
  it("renders found references and leaves unresolved ones as node.var", () => {
    const p = pool();
    p.set(["llm", "text"], "Hello");
    p.set(["n", "obj"], { k: { s: 1 } });
    expect(p.renderTemplate("Q: {{#sys.query#}} A: {{#llm.text#}} {{#n.obj.k.s#}} {{#x.y#}}")).toBe("Q: hi A: Hello 1 x.y");
    expect(p.renderTemplate("{{#n.obj#}}")).toBe('{"k": {"s": 1}}');
    expect(p.renderMarkdown("{{#n.obj#}}")).toBe('{\n  "k": {\n    "s": 1\n  }\n}');
  });

  it("grammar: no whitespace, id limits, part limits", () => {
    expect(parseTemplate("{{# sys.query #}}")).toEqual([{ kind: "text", text: "{{# sys.query #}}" }]);
    expect(parseTemplate("{{#a-b.c#}}")).toEqual([{ kind: "text", text: "{{#a-b.c#}}" }]);
    expect(parseTemplate("{{#sys#}}")).toEqual([{ kind: "text", text: "{{#sys#}}" }]);
    expect(parseTemplate("a{{#x.y#}}b")).toEqual([
      { kind: "text", text: "a" },
      { kind: "var", text: "x.y", selector: ["x", "y"] },
      { kind: "text", text: "b" },
    ]);
  });
});

// Graph engine semantics (dsl-and-workflow §3.6–§3.10, §3.7 streaming, §4.14–§4.15 containers)
// on small graphs built here, with test node implementations passed through `resolve`.
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/lib/logger.js";
import { runGraph, type EngineEvent, type EngineOptions } from "../src/modules/workflow/engine.js";
import { NodeError, type NodeImplementation, type NodeServices, type RunInfo } from "../src/modules/workflow/types.js";
import { createVariablePool } from "../src/modules/workflow/variable-pool.js";

const run: RunInfo = {
  workflowRunId: "r",
  workflowId: "w",
  appId: "a",
  tenantId: "t",
  mode: "workflow",
  taskId: "task",
  endUserId: "eu",
  userId: "u",
  conversationId: null,
  messageId: null,
};
const services = { logger: createLogger({ level: "silent" }) } as unknown as NodeServices;

type N = { id: string; data: Record<string, unknown> };
const n = (id: string, type: string, extra: Record<string, unknown> = {}): N => ({ id, data: { type, title: id, ...extra } });
const e = (source: string, target: string, sourceHandle = "source") => ({ id: `${source}-${target}-${sourceHandle}`, source, target, sourceHandle });

/** Test nodes: `value` outputs data.value; `branch` selects data.handle; `fail` fails; `stream` emits chunks; `slow` waits. */
const attempts = new Map<string, number>();
const testNodes: Record<string, NodeImplementation> = {
  value: { types: ["value"], run: async (node) => ({ status: "succeeded", outputs: { text: node.data.value } }) },
  branch: { types: ["branch"], run: async (node) => ({ status: "succeeded", outputs: {}, edgeSourceHandle: String(node.data.handle) }) },
  fail: {
    types: ["fail"],
    run: async (node) => {
      const k = `${String(node.data.key ?? node.id)}`;
      attempts.set(k, (attempts.get(k) ?? 0) + 1);
      if (typeof node.data.succeedOn === "number" && attempts.get(k)! >= node.data.succeedOn) return { status: "succeeded", outputs: { text: "ok" } };
      throw new NodeError("boom", "TestError");
    },
  },
  stream: {
    types: ["stream"],
    run: async (node, ctx) => {
      let text = "";
      for (const t of node.data.chunks as string[]) {
        text += t;
        await ctx.emitChunk({ selector: [node.id, "text"], text: t });
      }
      return { status: "succeeded", outputs: { text }, usage: { prompt_tokens: 3, completion_tokens: 2 } };
    },
  },
  slow: {
    types: ["slow"],
    run: (node, ctx) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve({ status: "succeeded", outputs: { text: node.data.value } }), Number(node.data.ms ?? 50));
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(new Error("aborted"));
        });
      }),
  },
  append: {
    // Appends data.value to a loop variable (a stand-in for assigner v2 `+=`).
    types: ["append"],
    run: async (node, ctx) => {
      const sel = node.data.target as string[];
      ctx.pool.set(sel, Number(ctx.pool.get(sel) ?? 0) + Number(node.data.value));
      return { status: "succeeded", outputs: {} };
    },
  },
};

async function exec(nodes: N[], edges: unknown[], opts: Partial<EngineOptions> = {}, sys: Record<string, unknown> = {}) {
  const events: EngineEvent[] = [];
  const pool = createVariablePool({ system: { files: [], ...sys }, environment: {}, conversation: {} });
  const result = await runGraph({
    graph: { nodes, edges },
    pool,
    run,
    services,
    signal: opts.signal ?? new AbortController().signal,
    resolve: (t) => testNodes[t],
    onEvent: async (ev) => {
      events.push(ev);
    },
    ...opts,
  });
  const names = events.map((ev) => (ev.kind === "chunk" ? `chunk:${ev.text}` : `${ev.event}:${String(ev.data.node_id ?? "")}`));
  const finished = (id: string) => events.find((ev) => ev.kind === "event" && ev.event === "node_finished" && ev.data.node_id === id) as { data: Record<string, unknown> } | undefined;
  const ran = events.filter((ev) => ev.kind === "event" && ev.event === "node_started").map((ev) => (ev as unknown as { data: { node_id: string } }).data.node_id);
  return { result, events, names, finished, ran, pool };
}

describe("scheduling", () => {
  it("runs a linear graph and reports end outputs and steps", async () => {
    const { result, ran, finished } = await exec(
      [n("start", "start"), n("a", "value", { value: "x" }), n("end", "end", { outputs: [{ variable: "out", value_selector: ["a", "text"] }] })],
      [e("start", "a"), e("a", "end")],
    );
    expect(result.status).toBe("succeeded");
    expect(result.outputs).toEqual({ out: "x" });
    expect(result.totalSteps).toBe(3);
    expect(ran).toEqual(["start", "a", "end"]);
    expect(finished("a")!.data).toMatchObject({ node_type: "value", status: "succeeded", index: 2, predecessor_node_id: "start", outputs: { text: "x" } });
  });

  it("drops custom-note nodes and fails unknown node types with a clear error", async () => {
    const { result, finished } = await exec(
      [n("start", "start"), { id: "note", data: { type: "" } }, n("t", "tool"), n("end", "end", { outputs: [] })],
      [e("start", "t"), e("t", "end")],
    );
    expect(result.status).toBe("failed");
    expect(result.error).toBe("Node type tool is not supported yet");
    expect(finished("t")!.data.status).toBe("failed");
    expect(finished("end")).toBeUndefined();
  });

  it("branches: only the selected handle runs; a join after both branches runs once", async () => {
    const { ran, result } = await exec(
      [
        n("start", "start"),
        n("if", "branch", { handle: "true" }),
        n("yes", "value", { value: "Y" }),
        n("no", "value", { value: "N" }),
        n("no2", "value", { value: "N2" }),
        n("join", "value", { value: "J" }),
        n("end", "end", { outputs: [{ variable: "y", value_selector: ["yes", "text"] }, { variable: "n", value_selector: ["no", "text"] }] }),
      ],
      [e("start", "if"), e("if", "yes", "true"), e("if", "no", "false"), e("no", "no2"), e("yes", "join"), e("no2", "join"), e("join", "end")],
    );
    expect(ran).toEqual(["start", "if", "yes", "join", "end"]);
    expect(result.outputs).toEqual({ y: "Y", n: null });
  });

  it("a handle with no edge ends that path without error", async () => {
    const { ran, result } = await exec([n("start", "start"), n("if", "branch", { handle: "other" }), n("a", "value", { value: 1 })], [e("start", "if"), e("if", "a", "true")]);
    expect(ran).toEqual(["start", "if"]);
    expect(result.status).toBe("succeeded");
  });

  it("join waits for every incoming edge (parallel branches run concurrently)", async () => {
    const t0 = Date.now();
    const { ran, result } = await exec(
      [
        n("start", "start"),
        n("a", "slow", { ms: 150, value: "A" }),
        n("b", "slow", { ms: 150, value: "B" }),
        n("join", "value", { value: "J" }),
        n("end", "end", { outputs: [{ variable: "a", value_selector: ["a", "text"] }, { variable: "b", value_selector: ["b", "text"] }] }),
      ],
      [e("start", "a"), e("start", "b"), e("a", "join"), e("b", "join"), e("join", "end")],
    );
    expect(Date.now() - t0).toBeLessThan(290);
    expect(ran.slice(-2)).toEqual(["join", "end"]);
    expect(result.outputs).toEqual({ a: "A", b: "B" });
  });
});

describe("error strategies and retries", () => {
  it("default-value continues on source with defaults and error fields; run is partial-succeeded", async () => {
    const { result, finished } = await exec(
      [
        n("start", "start"),
        n("f", "fail", { error_strategy: "default-value", default_value: [{ key: "text", type: "string", value: "dflt" }, { key: "n", type: "number", value: "2.5" }] }),
        n("end", "end", { outputs: [{ variable: "t", value_selector: ["f", "text"] }, { variable: "n", value_selector: ["f", "n"] }] }),
      ],
      [e("start", "f"), e("f", "end")],
    );
    expect(result.status).toBe("partial-succeeded");
    expect(result.exceptionsCount).toBe(1);
    expect(result.outputs).toEqual({ t: "dflt", n: 2.5 });
    expect(finished("f")!.data).toMatchObject({ status: "exception", error: "boom", outputs: { text: "dflt", n: 2.5, error_message: "boom", error_type: "TestError" } });
    expect((finished("f")!.data.execution_metadata as Record<string, unknown>).error_strategy).toBe("default-value");
  });

  it("fail-branch follows only the fail-branch edge", async () => {
    const { ran, result } = await exec(
      [n("start", "start"), n("f", "fail", { error_strategy: "fail-branch" }), n("ok", "value", { value: 1 }), n("handler", "value", { value: 2 })],
      [e("start", "f"), e("f", "ok"), e("f", "handler", "fail-branch")],
    );
    expect(ran).toEqual(["start", "f", "handler"]);
    expect(result.status).toBe("partial-succeeded");
  });

  it("retries with node_retry events, then succeeds", async () => {
    const { names, result, finished } = await exec(
      [n("start", "start"), n("f", "fail", { type: "code", key: "retry1", succeedOn: 3, retry_config: { retry_enabled: true, max_retries: 3, retry_interval: 10 } })],
      [e("start", "f")],
      { resolve: (t) => (t === "code" ? testNodes.fail : testNodes[t]) },
    );
    expect(names.filter((x) => x === "node_retry:f")).toHaveLength(2);
    expect(names.filter((x) => x === "node_started:f")).toHaveLength(1);
    expect(finished("f")!.data.status).toBe("succeeded");
    // §3.6: every failure event counts, retried attempts included.
    expect(result.status).toBe("partial-succeeded");
  });

  it("a failure without strategy fails the run and nothing after it starts", async () => {
    const { ran, result } = await exec([n("start", "start"), n("f", "fail"), n("after", "value", { value: 1 })], [e("start", "f"), e("f", "after")]);
    expect(result).toMatchObject({ status: "failed", error: "boom" });
    expect(ran).toEqual(["start", "f"]);
  });
});

describe("limits and stop", () => {
  it("max steps aborts the run as failed", async () => {
    const nodes = [n("start", "start"), ...Array.from({ length: 5 }, (_, i) => n(`v${i}`, "value", { value: i }))];
    const edges = [e("start", "v0"), ...Array.from({ length: 4 }, (_, i) => e(`v${i}`, `v${i + 1}`))];
    const { result } = await exec(nodes, edges, { limits: { maxSteps: 3 } });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/^Maximum execution steps exceeded/);
  });

  it("stop aborts running nodes and reports stopped", async () => {
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 50);
    const { result, finished } = await exec([n("start", "start"), n("s", "slow", { ms: 5000 }), n("after", "value")], [e("start", "s"), e("s", "after")], { signal: ctrl.signal });
    expect(result.status).toBe("stopped");
    expect(result.error).toBe("Stopped by user.");
    expect(finished("s")!.data.status).toBe("stopped");
    expect(finished("after")).toBeUndefined();
  });
});

describe("response streaming §3.7", () => {
  it("answer literal prefix streams before node_finished(start); LLM text streams through the session", async () => {
    const { names, result } = await exec(
      [n("start", "start"), n("llm", "stream", { chunks: ["Hel", "lo"] }), n("answer", "answer", { answer: "Result: {{#llm.text#}}!" })],
      [e("start", "llm"), e("llm", "answer")],
    );
    expect(names).toEqual([
      "node_started:start",
      "chunk:Result: ",
      "node_finished:start",
      "node_started:llm",
      "chunk:Hel",
      "chunk:lo",
      "chunk:!",
      "node_finished:llm",
      "node_started:answer",
      "node_finished:answer",
    ]);
    expect(result.outputs).toEqual({ answer: "Result: Hello!", files: [] });
    expect(result.totalTokens).toBe(5);
  });

  it("two answers on one path stream one after another; skipped segments are dropped", async () => {
    const { events } = await exec(
      [
        n("start", "start"),
        n("if", "branch", { handle: "false" }),
        n("x", "value", { value: "X" }),
        n("a1", "answer", { answer: "A{{#x.text#}}B" }),
        n("a2", "answer", { answer: "C{{#sys.query#}}" }),
      ],
      [e("start", "if"), e("if", "x", "true"), e("if", "a1", "false"), e("x", "a1"), e("a1", "a2")],
      {},
      { query: "Q" },
    );
    const chunks = events.filter((ev) => ev.kind === "chunk").map((ev) => (ev as { text: string; selector: string[] }));
    expect(chunks.map((c) => c.text)).toEqual(["A", "B", "C", "Q"]);
    expect(chunks[0]!.selector).toEqual(["a1", "answer"]);
    expect(chunks[3]!.selector).toEqual(["sys", "query"]);
  });

  it("end node streams its values separated by newlines", async () => {
    const { events } = await exec(
      [n("start", "start"), n("a", "value", { value: "one" }), n("b", "value", { value: { k: 1 } }), n("end", "end", { outputs: [{ variable: "a", value_selector: ["a", "text"] }, { variable: "b", value_selector: ["b", "text"] }] })],
      [e("start", "a"), e("a", "b"), e("b", "end")],
    );
    const text = events.filter((ev) => ev.kind === "chunk").map((ev) => (ev as { text: string }).text).join("");
    expect(text).toBe('one\n{\n  "k": 1\n}');
  });
});

describe("containers", () => {
  const iterGraph = (extra: Record<string, unknown>, inner: N[] = [n("it_value", "value", { value: "v", iteration_id: "it" })]) => ({
    nodes: [
      n("start", "start"),
      n("src", "value", { value: [["a"], ["b", "c"]] }),
      n("it", "iteration", { iterator_selector: ["src", "text"], output_selector: ["tpl", "text"], start_node_id: "itstart", ...extra }),
      n("itstart", "iteration-start", { iteration_id: "it" }),
      n("tpl", "value", { value: "x", iteration_id: "it" }),
      ...inner,
      n("end", "end", { outputs: [{ variable: "out", value_selector: ["it", "output"] }] }),
    ],
    edges: [e("start", "src"), e("src", "it"), e("itstart", "tpl"), e("it", "end")],
  });

  it("iteration runs rounds with item/index, emits iteration events, and collects outputs", async () => {
    const itemNode: NodeImplementation = { types: ["item"], run: async (_node, ctx) => ({ status: "succeeded", outputs: { text: [ctx.pool.get(["it", "index"]), ...(ctx.pool.get(["it", "item"]) as string[])] } }) };
    const g = iterGraph({});
    g.nodes = g.nodes.map((x) => (x.id === "tpl" ? n("tpl", "item", { iteration_id: "it" }) : x));
    const { result, names, events } = await exec(g.nodes, g.edges, { resolve: (t) => (t === "item" ? itemNode : testNodes[t]) });
    expect(result.status).toBe("succeeded");
    // flatten_output (default true): every round output is a list → concatenated
    expect(result.outputs).toEqual({ out: [0, "a", 1, "b", "c"] });
    expect(names).toEqual([
      "node_started:start",
      "node_finished:start",
      "node_started:src",
      "node_finished:src",
      "node_started:it",
      "iteration_started:it",
      "iteration_next:it",
      "node_started:tpl",
      "node_finished:tpl",
      "iteration_next:it",
      "node_started:tpl",
      "node_finished:tpl",
      "iteration_completed:it",
      // the end node's session activates when it→end is taken: its value streams before node_finished(it)
      "chunk:- 0\n- a\n- 1\n- b\n- c",
      "node_finished:it",
      "node_started:end",
      "node_finished:end",
    ]);
    const inner = events.find((ev) => ev.kind === "event" && ev.event === "node_finished" && ev.data.node_id === "tpl") as { data: Record<string, unknown> };
    expect(inner.data.iteration_id).toBe("it");
    expect(inner.data.execution_metadata).toMatchObject({ iteration_id: "it", iteration_index: 0 });
    const completed = events.find((ev) => ev.kind === "event" && ev.event === "iteration_completed") as { data: Record<string, unknown> };
    expect(completed.data).toMatchObject({ status: "succeeded", steps: 2, outputs: { output: [0, "a", 1, "b", "c"] } });
  });

  it("iteration error modes and parallel order", async () => {
    const flaky: NodeImplementation = {
      types: ["flaky"],
      run: async (_node, ctx) => {
        const i = ctx.pool.get(["it", "index"]) as number;
        await new Promise((r) => setTimeout(r, (2 - i) * 20));
        if (i === 1) throw new NodeError("bad round");
        return { status: "succeeded", outputs: { text: `r${i}` } };
      },
    };
    const mk = (extra: Record<string, unknown>) => {
      const g = iterGraph({ flatten_output: false, ...extra });
      g.nodes = g.nodes.map((x) => (x.id === "src" ? n("src", "value", { value: [1, 2, 3] }) : x.id === "tpl" ? n("tpl", "flaky", { iteration_id: "it" }) : x));
      return g;
    };
    const resolve = (t: string) => (t === "flaky" ? flaky : testNodes[t]);
    let g = mk({ error_handle_mode: "continue-on-error", is_parallel: true, parallel_nums: 3 });
    let r = await exec(g.nodes, g.edges, { resolve });
    expect(r.result.outputs).toEqual({ out: ["r0", null, "r2"] });
    g = mk({ error_handle_mode: "remove-abnormal-output" });
    r = await exec(g.nodes, g.edges, { resolve });
    expect(r.result.outputs).toEqual({ out: ["r0", "r2"] });
    g = mk({ error_handle_mode: "terminated" });
    r = await exec(g.nodes, g.edges, { resolve });
    expect(r.result).toMatchObject({ status: "failed", error: "bad round" });
  });

  it("loop with a loop variable, break condition and loop outputs", async () => {
    const { result, names } = await exec(
      [
        n("start", "start"),
        n("lp", "loop", {
          start_node_id: "lpstart",
          loop_count: 10,
          logical_operator: "and",
          break_conditions: [{ variable_selector: ["lp", "num"], comparison_operator: "≥", value: "5" }],
          loop_variables: [{ label: "num", var_type: "number", value_type: "constant", value: "1" }],
        }),
        n("lpstart", "loop-start", { loop_id: "lp" }),
        n("inc", "append", { loop_id: "lp", target: ["lp", "num"], value: 1 }),
        n("end", "end", { outputs: [{ variable: "num", value_selector: ["lp", "num"] }] }),
      ],
      [e("start", "lp"), e("lpstart", "inc"), e("lp", "end")],
    );
    expect(result.status).toBe("succeeded");
    expect(result.outputs).toEqual({ num: 5 });
    expect(names.filter((x) => x === "loop_next:lp")).toHaveLength(3);
    expect(names).toContain("loop_completed:lp");
    expect(names).not.toContain("node_started:lpstart");
  });

  it("loop-end stops the loop", async () => {
    const { result } = await exec(
      [
        n("start", "start"),
        n("lp", "loop", { start_node_id: "lpstart", loop_count: 10, loop_variables: [{ label: "num", var_type: "number", value_type: "constant", value: 0 }] }),
        n("lpstart", "loop-start", { loop_id: "lp" }),
        n("inc", "append", { loop_id: "lp", target: ["lp", "num"], value: 2 }),
        n("stop", "loop-end", { loop_id: "lp" }),
        n("end", "end", { outputs: [{ variable: "num", value_selector: ["lp", "num"] }, { variable: "round", value_selector: ["lp", "loop_round"] }] }),
      ],
      [e("start", "lp"), e("lpstart", "inc"), e("inc", "stop"), e("lp", "end")],
    );
    expect(result.outputs).toEqual({ num: 2, round: 1 });
  });
});

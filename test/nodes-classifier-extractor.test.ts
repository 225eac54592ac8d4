// question-classifier (§4.6), parameter-extractor (§4.16) and knowledge-retrieval (§4.5) nodes,
// against the fake model server and a tiny in-test KnowledgeRetriever (the external seam).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import type { Config } from "../src/config/index.js";
import type { Models } from "../src/modules/models/index.js";
import { knowledgeRetrievalNode } from "../src/modules/workflow/nodes/knowledge-retrieval.js";
import { parameterExtractorNode } from "../src/modules/workflow/nodes/parameter-extractor.js";
import { questionClassifierNode, QUESTION_CLASSIFIER_USER_PROMPT_1 } from "../src/modules/workflow/nodes/question-classifier.js";
import type { GraphNode, KnowledgeRetriever, RetrievalRequest } from "../src/modules/workflow/types.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { makeCtx, modelsFor, poolWith } from "./support/node-context.js";

let fake: FakeOpenAI;
let models: Models;
let config: Config;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  ({ models, config } = modelsFor(fake.baseURL));
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const model = { provider: "openai", name: "gpt-4o-mini", mode: "chat", completion_params: {} };

describe("question-classifier", () => {
  const node = (extra: Record<string, unknown> = {}): GraphNode => ({
    id: "qc",
    data: {
      type: "question-classifier",
      model,
      query_variable_selector: ["start", "q"],
      classes: [
        { id: "c1", name: "Health" },
        { id: "c2", name: "How to use {{#start.app#}}" },
      ],
      instruction: "Prefer {{#start.app#}}",
      ...extra,
    },
  });
  const pool = () => poolWith({ nodes: { start: { q: "how do I pair the band?", app: "FitBand" } } });

  it("sends Dify's prompt, picks the class by category_id and follows its handle", async () => {
    fake.enqueue("chat", { text: '```json\n{"keywords": ["pair"], "category_id": "c2", "category_name": "How to use"}\n```', usage: { prompt_tokens: 300, completion_tokens: 20 } });
    const { ctx, chunks } = makeCtx({ models, config, pool: pool() });
    const res = await questionClassifierNode.run(node(), ctx);
    expect(res.status).toBe("succeeded");
    expect(res.edgeSourceHandle).toBe("c2");
    expect(res.outputs).toMatchObject({ class_name: "How to use FitBand", class_id: "c2" });
    expect(res.outputs!.usage).toMatchObject({ prompt_tokens: 300, completion_tokens: 20, total_tokens: 320 });
    expect(res.metadata).toMatchObject({ total_tokens: 320 });
    expect(res.inputs).toMatchObject({ query: "how do I pair the band?" });
    expect(chunks).toHaveLength(0);

    const messages = fake.lastRequest("chat")!.body.messages as { role: string; content: string }[];
    expect(messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant", "user"]);
    expect(messages[0]!.content).toContain("<histories>\n    \n    </histories>");
    expect(messages[1]!.content).toBe(QUESTION_CLASSIFIER_USER_PROMPT_1);
    // Class names go to the model unrendered (Dify renders them for the outputs only).
    expect(messages[5]!.content).toBe(
      '\n    \'{"input_text": ["how do I pair the band?"],\',\n' +
        '    \'"categories": [{"category_id": "c1", "category_name": "Health"}, {"category_id": "c2", "category_name": "How to use {{#start.app#}}"}], \',\n' +
        '    \'"classification_instructions": ["Prefer FitBand"]}\'\n',
    );
  });

  it("an unknown category_id falls back to the first class", async () => {
    fake.enqueue("chat", { text: '<think>hmm</think>{"category_id": "zzz", "category_name": "x"}' });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await questionClassifierNode.run(node(), ctx);
    expect(res.status).toBe("succeeded");
    expect(res.edgeSourceHandle).toBe("c1");
    expect(res.outputs).toMatchObject({ class_name: "Health", class_id: "c1" });
  });

  it("a reply without JSON fails the node", async () => {
    fake.enqueue("chat", { text: "I think it is health." });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await questionClassifierNode.run(node(), ctx);
    expect(res.status).toBe("failed");
    expect(res.edgeSourceHandle).toBeUndefined();
  });

  it("completion-mode models get one prompt", async () => {
    fake.enqueue("completion", { text: '{"category_id": "c1", "category_name": "Health"}' });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await questionClassifierNode.run(node({ model: { name: "gpt-3.5-turbo-instruct", mode: "completion" } }), ctx);
    expect(res.status).toBe("succeeded");
    const prompt = fake.lastRequest("completion")!.body.prompt as string;
    expect(prompt.startsWith("\n### Job Description\n")).toBe(true);
    expect(prompt).toContain('{"input_text" : ["how do I pair the band?"], "categories" : [{"category_id": "c1", "category_name": "Health"}');
    expect(prompt.endsWith("### Assistant Output\n")).toBe(true);
  });
});

describe("parameter-extractor", () => {
  const params = [
    { name: "city", type: "string", description: "City", required: true },
    { name: "days", type: "number", description: "Days", required: false },
    { name: "metric", type: "bool", description: "Metric units", required: false },
    { name: "unit", type: "select", options: ["C", "F"], description: "Unit", required: false },
  ];
  const node = (extra: Record<string, unknown> = {}): GraphNode => ({
    id: "pe",
    data: { type: "parameter-extractor", model, query: ["start", "text"], parameters: params, instruction: "Be exact", reasoning_mode: "function_call", ...extra },
  });
  const pool = () => poolWith({ nodes: { start: { text: "Paris for 3 days, in Celsius" } } });

  it("function_call mode: sends the tool and few-shot calls, reads the tool call's arguments", async () => {
    fake.enqueue("chat", { toolCalls: [{ name: "extract_parameters", arguments: { city: "Paris", days: "3", metric: 1, unit: "C" } }] });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node(), ctx);
    expect(res.status).toBe("succeeded");
    const body = fake.lastRequest("chat")!.body;
    expect(body.tools).toEqual([
      {
        type: "function",
        function: {
          name: "extract_parameters",
          description: "Extract parameters from the natural language text",
          parameters: {
            type: "object",
            properties: {
              city: { description: "City", type: "string" },
              days: { description: "Days", type: "number" },
              metric: { description: "Metric units", type: "boolean" },
              unit: { description: "Unit", type: "string", enum: ["C", "F"] },
            },
            required: ["city"],
          },
        },
      },
    ]);
    const roles = (body.messages as { role: string }[]).map((m) => m.role);
    expect(roles).toEqual(["system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant", "user"]);
    const last = body.messages.at(-1).content as string;
    expect(last).toContain("<context>\nParis for 3 days, in Celsius\n</context>");
    expect(last).toContain('<structure>\n{"type": "object", "properties": {"city": {"description": "City", "type": "string"}');
    expect(body.messages[0].content).toContain("<instruction>\nBe exact\n</instruction>");
    // "3" is a string where a number was asked: the validation reason is kept, values coerced.
    expect(res.outputs).toMatchObject({ __is_success: 0, city: "Paris", days: 3, metric: true, unit: "C" });
    expect(res.outputs!.__reason).toMatch(/^Invalid value for parameter days/);
    expect(res.process_data).toMatchObject({
      model_mode: "chat",
      function: { name: "extract_parameters" },
      tool_call: { type: "function", function: { name: "extract_parameters" } },
      llm_text: "",
    });
    expect(res.inputs).toMatchObject({ query: "Paris for 3 days, in Celsius", instruction: "Be exact" });
  });

  it("a valid complete answer succeeds with __is_success 1", async () => {
    fake.enqueue("chat", { toolCalls: [{ name: "extract_parameters", arguments: { city: "Paris", days: 3, metric: true, unit: "C" } }] });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node(), ctx);
    expect(res.outputs).toEqual(expect.objectContaining({ __is_success: 1, __reason: null, city: "Paris", days: 3, metric: true, unit: "C" }));
    expect(Object.keys(res.outputs!).slice(0, 3)).toEqual(["__is_success", "__reason", "__usage"]);
  });

  it("prompt mode: JSON in the text; a missing required parameter sets __reason, zero values fill in", async () => {
    fake.enqueue("chat", { text: 'Sure: {"days": 2, "metric": false, "unit": "K", "x": 1} done' });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node({ reasoning_mode: "prompt" }), ctx);
    expect(res.status).toBe("succeeded");
    const body = fake.lastRequest("chat")!.body;
    expect(body.tools).toBeUndefined();
    expect((body.messages as { role: string }[]).map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant", "user"]);
    expect(body.messages[0].content.startsWith("You should always follow the instructions and output a valid JSON object.")).toBe(true);
    expect(res.outputs).toMatchObject({ __is_success: 0, __reason: "Parameter city is required", city: "", days: 2, metric: false, unit: "K" });
  });

  it("no JSON at all: defaults and Dify's reason (a later validation error takes precedence)", async () => {
    fake.enqueue("chat", { text: "I cannot tell." });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node({ reasoning_mode: "prompt", parameters: params.slice(0, 3) }), ctx);
    expect(res.outputs).toMatchObject({
      __is_success: 0,
      __reason: "Failed to extract result from function call or text response, using empty result.",
      city: "",
      days: 0,
      metric: false,
    });

    // The default "" of a select is not among its options: Dify reports that instead.
    fake.enqueue("chat", { text: "I cannot tell." });
    const res2 = await parameterExtractorNode.run(node({ reasoning_mode: "prompt" }), ctx);
    expect(res2.outputs).toMatchObject({ __is_success: 0, __reason: "Invalid `select` value for parameter unit", unit: "" });
  });

  it("a failed model call fails the node with __is_success 0", async () => {
    fake.enqueue("chat", { error: "server_error" });
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node(), ctx);
    expect(res.status).toBe("failed");
    expect(res.outputs).toMatchObject({ __is_success: 0, __reason: "Failed to invoke model" });
    expect(res.error).toBeTruthy();
  });

  it("reserved parameter names fail", async () => {
    const { ctx } = makeCtx({ models, config, pool: pool() });
    const res = await parameterExtractorNode.run(node({ parameters: [{ name: "__reason", type: "string", description: "", required: false }] }), ctx);
    expect(res.status).toBe("failed");
    expect(fake.requestsOf("chat")).toHaveLength(0);
  });
});

describe("knowledge-retrieval", () => {
  const node = (extra: Record<string, unknown> = {}): GraphNode => ({
    id: "kr",
    data: {
      type: "knowledge-retrieval",
      query_variable_selector: ["start", "q"],
      dataset_ids: ["ds-1", "ds-2"],
      retrieval_mode: "multiple",
      multiple_retrieval_config: { top_k: 4, score_threshold: null, reranking_enable: false },
      ...extra,
    },
  });

  function retriever(): KnowledgeRetriever & { calls: RetrievalRequest[] } {
    const calls: RetrievalRequest[] = [];
    return {
      calls,
      async retrieve(req) {
        calls.push(req);
        return {
          chunks: [
            { content: "low", title: "a.txt", score: 0.2, metadata: { dataset_id: "ds-1", document_id: "doc-a", segment_id: "s1" } },
            { content: "high", title: "b.txt", score: 0.9, metadata: { dataset_id: "ds-2", document_id: "doc-b", segment_id: "s2" } },
          ],
          citations: [],
        };
      },
    };
  }

  it("passes query, datasets, config and resolved metadata filter; outputs result best first", async () => {
    const r = retriever();
    const pool = poolWith({ nodes: { start: { q: "tea?", year: 2024, who: "  Ann\nLee " } } });
    const { ctx } = makeCtx({ models, config, pool, retrieval: r });
    const res = await knowledgeRetrievalNode.run(
      node({
        metadata_filtering_mode: "manual",
        metadata_filtering_conditions: {
          logical_operator: "or",
          conditions: [
            { name: "year", comparison_operator: "≥", value: "{{#start.year#}}" },
            { name: "author", comparison_operator: "is", value: "{{#start.who#}}" },
            { name: "tag", comparison_operator: "empty", value: null },
          ],
        },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(r.calls[0]).toMatchObject({
      tenantId: ctx.run.tenantId,
      datasetIds: ["ds-1", "ds-2"],
      query: "tea?",
      retrievalModel: { retrieval_mode: "multiple", top_k: 4, score_threshold: null, reranking_enable: false },
      metadataFilter: {
        mode: "manual",
        logical_operator: "or",
        conditions: [
          { name: "year", comparison_operator: "≥", value: 2024 },
          { name: "author", comparison_operator: "is", value: "Ann Lee" },
          { name: "tag", comparison_operator: "empty", value: null },
        ],
      },
    });
    expect(res.inputs).toEqual({ query: "tea?" });
    expect(res.outputs!.result).toEqual([
      {
        content: "high",
        title: "b.txt",
        metadata: { _source: "knowledge", position: 1, dataset_id: "ds-2", document_id: "doc-b", segment_id: "s2", retriever_from: "workflow", score: 0.9 },
      },
      {
        content: "low",
        title: "a.txt",
        metadata: { _source: "knowledge", position: 2, dataset_id: "ds-1", document_id: "doc-a", segment_id: "s1", retriever_from: "workflow", score: 0.2 },
      },
    ]);
  });

  it("fails clearly without a retriever, and on an empty query", async () => {
    const { ctx } = makeCtx({ models, config, pool: poolWith({ nodes: { start: { q: "tea?" } } }) });
    const res = await knowledgeRetrievalNode.run(node(), ctx);
    expect(res.status).toBe("failed");
    expect(res.error).toMatch(/no knowledge base service is configured/);

    const { ctx: ctx2 } = makeCtx({ models, config, pool: poolWith({ nodes: { start: { q: "" } } }), retrieval: retriever() });
    const res2 = await knowledgeRetrievalNode.run(node(), ctx2);
    expect(res2).toMatchObject({ status: "failed", error: "Query is required." });
  });

  it("single mode hands the router model to the retriever; retriever errors fail the node", async () => {
    const r = retriever();
    const { ctx } = makeCtx({ models, config, pool: poolWith({ nodes: { start: { q: "tea?" } } }), retrieval: r });
    await knowledgeRetrievalNode.run(node({ retrieval_mode: "single", single_retrieval_config: { model } }), ctx);
    expect(r.calls[0]!.retrievalModel).toEqual({ retrieval_mode: "single", model });

    const broken: KnowledgeRetriever = {
      async retrieve() {
        throw new Error("vector store down");
      },
    };
    const { ctx: ctx2 } = makeCtx({ models, config, pool: poolWith({ nodes: { start: { q: "tea?" } } }), retrieval: broken });
    const res = await knowledgeRetrievalNode.run(node(), ctx2);
    expect(res).toMatchObject({ status: "failed", error: "vector store down" });
  });
});

// The llm node (dsl-and-workflow §4.4) against the fake model server: exact prompts sent for chat
// and completion templates with context and memory, streamed chunks, outputs / process_data /
// usage, and failures. Memory cases need Postgres (run with `npx tsx scripts/test.ts`).
import { randomUUID } from "node:crypto";

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { createPrisma, type PrismaClient } from "../src/lib/prisma.js";
import type { Config } from "../src/config/index.js";
import type { Models } from "../src/modules/models/index.js";
import { llmNode } from "../src/modules/workflow/nodes/llm.js";
import { nodeImplementation } from "../src/modules/workflow/nodes/index.js";
import type { GraphNode, WorkflowFile } from "../src/modules/workflow/types.js";
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

const chatModel = { provider: "openai", name: "gpt-4o-mini", mode: "chat", completion_params: { temperature: 0.2 } };

function llm(data: Record<string, unknown>, id = "llm1"): GraphNode {
  return { id, data: { type: "llm", title: "LLM", model: chatModel, ...data } };
}

const knowledgeItem = (content: string, extra: Record<string, unknown> = {}) => ({
  content,
  title: "doc.txt",
  metadata: { _source: "knowledge", dataset_id: "d1", segment_id: "s1", score: 0.9 },
  ...extra,
});

describe("llm node: chat template", () => {
  it("renders references and {{#context#}}, streams every delta, records Dify's outputs", async () => {
    fake.enqueue("chat", { text: "Hello there, Bob!", usage: { prompt_tokens: 21, completion_tokens: 5 } });
    const pool = poolWith({
      nodes: {
        start: { name: "Bob", n: 3 },
        kr: { result: [knowledgeItem("Fact A", { summary: "Sum A" }), "Fact B"] },
      },
    });
    const { ctx, chunks } = makeCtx({ models, config, pool });
    const node = llm({
      prompt_template: [
        { role: "system", text: "Use: {{#context#}}" },
        { role: "user", text: "Hi, I am {{#start.name#}} ({{#start.n#}})" },
        { role: "assistant", text: "" },
      ],
      context: { enabled: true, variable_selector: ["kr", "result"] },
    });
    const res = await llmNode.run(node, ctx);
    expect(res.status).toBe("succeeded");

    const body = fake.lastRequest("chat")!.body;
    expect(body.messages).toEqual([
      { role: "system", content: "Use: Sum A\nFact A\nFact B" },
      { role: "user", content: "Hi, I am Bob (3)" },
    ]);
    expect(body.model).toBe("gpt-4o-mini");
    expect(body.temperature).toBe(0.2);
    expect(body.stream).toBe(true);

    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c) => c.selector.join(".") === "llm1.text")).toBe(true);
    expect(chunks.map((c) => c.text).join("")).toBe("Hello there, Bob!");

    expect(res.inputs).toMatchObject({ "#start.name#": "Bob", "#start.n#": 3, "#context#": "Sum A\nFact A\nFact B" });
    const out = res.outputs!;
    expect(out.text).toBe("Hello there, Bob!");
    expect(out.reasoning_content).toBe("");
    expect(out.finish_reason).toBe("stop");
    expect(out).not.toHaveProperty("structured_output");
    expect(out.usage).toMatchObject({ prompt_tokens: 21, completion_tokens: 5, total_tokens: 26, total_price: "0.0", currency: "USD" });

    expect(res.process_data).toMatchObject({
      model_mode: "chat",
      prompts: [
        { role: "system", text: "Use: Sum A\nFact A\nFact B", files: [] },
        { role: "user", text: "Hi, I am Bob (3)", files: [] },
      ],
      finish_reason: "stop",
      model_provider: "openai",
      model_name: "gpt-4o-mini",
    });
    expect(res.metadata).toEqual({ total_tokens: 26, total_price: "0.0", currency: "USD" });
    expect(res.usage).toMatchObject({ prompt_tokens: 21, completion_tokens: 5 });
  });

  it("is registered for data.type llm", () => {
    expect(nodeImplementation("llm")).toBe(llmNode);
  });

  it("fails when a referenced variable is missing, without calling the model", async () => {
    const { ctx } = makeCtx({ models, config, pool: poolWith() });
    const res = await llmNode.run(llm({ prompt_template: [{ role: "user", text: "x {{#start.nope#}}" }] }), ctx);
    expect(res.status).toBe("failed");
    expect(res.error).toBe("Variable #start.nope# not found");
    expect(fake.requestsOf("chat")).toHaveLength(0);
  });

  it("fails with the model error when the provider rejects the call", async () => {
    fake.enqueue("chat", { error: "invalid_request" });
    const { ctx, chunks } = makeCtx({ models, config, pool: poolWith() });
    const res = await llmNode.run(llm({ prompt_template: [{ role: "user", text: "hello" }] }), ctx);
    expect(res.status).toBe("failed");
    expect(res.error).toContain("Invalid request");
    expect(chunks).toHaveLength(0);
  });

  it("fails with Dify's message when no prompt remains", async () => {
    const { ctx } = makeCtx({ models, config, pool: poolWith() });
    const res = await llmNode.run(llm({ prompt_template: [{ role: "system", text: "" }] }), ctx);
    expect(res.status).toBe("failed");
    expect(res.error).toMatch(/^No prompt found in the LLM configuration/);
  });

  it("without memory adds no query message; with memory but no conversation appends the query only", async () => {
    const pool = poolWith({ system: { query: "What now?" } });
    const { ctx } = makeCtx({ models, config, pool });
    const res = await llmNode.run(
      llm({
        prompt_template: [{ role: "system", text: "Be brief." }],
        memory: { window: { enabled: false, size: 10 }, query_prompt_template: "Q: {{#sys.query#}}" },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("chat")!.body.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Q: What now?" },
    ]);
    expect(res.outputs!.text).toBe("Echo: Q: What now?");
  });

  it("vision: files from the selector go in front of the last user message's text", async () => {
    const img: WorkflowFile = {
      dify_model_identity: "__dify__file__",
      id: null,
      tenant_id: "t",
      type: "image",
      transfer_method: "remote_url",
      remote_url: "https://example.com/cat.png",
      related_id: null,
      filename: "cat.png",
      extension: ".png",
      mime_type: "image/png",
      size: 10,
    };
    const pool = poolWith({ system: { files: [img] }, nodes: { start: { q: "what is it?" } } });
    const { ctx } = makeCtx({ models, config, pool });
    const res = await llmNode.run(
      llm({
        prompt_template: [{ role: "user", text: "{{#start.q#}}" }],
        vision: { enabled: true, configs: { variable_selector: ["sys", "files"], detail: "low" } },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("chat")!.body.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "low" } },
          { type: "text", text: "what is it?" },
        ],
      },
    ]);
    expect(res.inputs!["#files#"]).toEqual([img]);
    expect((res.process_data!.prompts as { files: unknown[] }[])[0]!.files).toEqual([
      { type: "image", data: "https://ex...[TRUNCATED]...om/cat.png", detail: "low" },
    ]);
  });

  it("structured output: asks for the JSON schema and parses the reply", async () => {
    fake.enqueue("chat", { text: '```json\n{"city": "Paris", "days": 3}\n```' });
    const { ctx } = makeCtx({ models, config, pool: poolWith() });
    const schema = { type: "object", properties: { city: { type: "string" }, days: { type: "number" } }, required: ["city"] };
    const res = await llmNode.run(
      llm({ prompt_template: [{ role: "user", text: "Trip?" }], structured_output_enabled: true, structured_output: { schema } }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("chat")!.body.response_format).toEqual({ type: "json_schema", json_schema: { name: "response", schema } });
    expect(res.outputs!.structured_output).toEqual({ city: "Paris", days: 3 });
  });

  it("structured output that is not JSON fails the node", async () => {
    fake.enqueue("chat", { text: "no json here" });
    const { ctx } = makeCtx({ models, config, pool: poolWith() });
    const res = await llmNode.run(
      llm({ prompt_template: [{ role: "user", text: "Trip?" }], structured_output_switch_on: true, structured_output: { schema: { type: "object" } } }),
      ctx,
    );
    expect(res.status).toBe("failed");
    expect(res.error).toMatch(/^Failed to parse structured output/);
  });

  it("reasoning_format separated: think blocks leave the stream and text, land in reasoning_content", async () => {
    fake.enqueue("chat", { text: "<think>\nLet me see.\n</think>\n\nThe answer is 4.", chunks: 7 });
    const { ctx, chunks } = makeCtx({ models, config, pool: poolWith() });
    const res = await llmNode.run(llm({ prompt_template: [{ role: "user", text: "2+2?" }], reasoning_format: "separated" }), ctx);
    expect(res.status).toBe("succeeded");
    expect(chunks.map((c) => c.text).join("")).toBe("The answer is 4.");
    expect(res.outputs).toMatchObject({ text: "The answer is 4.", reasoning_content: "Let me see." });
  });

  it("jinja2 edition renders the declared variables", async () => {
    const pool = poolWith({ nodes: { start: { items: ["a", "b"] } } });
    const { ctx } = makeCtx({ models, config, pool });
    const res = await llmNode.run(
      llm({
        prompt_template: [
          { role: "user", edition_type: "jinja2", text: "", jinja2_text: "{% for i in items %}[{{ i }}]{% endfor %}" },
        ],
        prompt_config: { jinja2_variables: [{ variable: "items", value_selector: ["start", "items"] }] },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("chat")!.body.messages).toEqual([{ role: "user", content: "[a][b]" }]);
  });

  it("a stop aborts the model request and the node does not report success", async () => {
    fake.enqueue("chat", { text: "one two three four", hangAfterChunks: 2 });
    const ac = new AbortController();
    const { ctx, chunks } = makeCtx({ models, config, pool: poolWith(), signal: ac.signal });
    const running = llmNode.run(llm({ prompt_template: [{ role: "user", text: "go" }] }), ctx);
    const req = await fake.waitForRequest("chat");
    while (chunks.length < 2) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    const res = await running;
    await fake.waitForAbort(req);
    expect(res.status).toBe("failed");
    expect(chunks.map((c) => c.text).join("")).toBe("one two ");
  });
});

describe("llm node: completion template", () => {
  const completionModel = { provider: "openai", name: "gpt-3.5-turbo-instruct", mode: "completion", completion_params: {} };

  it("sends one prompt; without #histories# the (empty) history and a newline go first", async () => {
    fake.enqueue("completion", { text: "Done." });
    const pool = poolWith({ nodes: { start: { topic: "tea" }, kr: { result: "Green tea is..." } } });
    const { ctx, chunks } = makeCtx({ models, config, pool });
    const res = await llmNode.run(
      llm({
        model: completionModel,
        prompt_template: { text: "Context: {{#context#}}\nWrite about {{#start.topic#}}." },
        context: { enabled: true, variable_selector: ["kr", "result"] },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("completion")!.body.prompt).toBe("\nContext: Green tea is...\nWrite about tea.");
    expect(chunks.map((c) => c.text).join("")).toBe("Done.");
    expect(res.process_data).toMatchObject({
      model_mode: "completion",
      prompts: [{ role: "user", text: "\nContext: Green tea is...\nWrite about tea." }],
    });
  });
});

// ------------------------------------------------------------------ memory (needs Postgres)

describe.skipIf(!process.env.DATABASE_URL)("llm node: conversation memory", () => {
  let prisma: PrismaClient;
  beforeAll(() => {
    prisma = createPrisma(process.env.DATABASE_URL!, { max: 2 });
  });
  afterAll(async () => {
    await prisma.$disconnect();
  });

  /** A conversation with answered turns and the current (empty) message, as the engine leaves it. */
  async function conversation(turns: [string, string][], current: string) {
    const tenantId = randomUUID();
    const appId = randomUUID();
    const conv = await prisma.conversation.create({ data: { tenant_id: tenantId, app_id: appId, mode: "advanced-chat" } });
    let parent: string | null = null;
    const t0 = Date.now() - 60_000;
    let i = 0;
    for (const [query, answer] of turns) {
      const m: { id: string } = await prisma.message.create({
        data: { tenant_id: tenantId, app_id: appId, conversation_id: conv.id, query, answer, parent_message_id: parent, created_at: new Date(t0 + i++ * 1000) },
      });
      parent = m.id;
    }
    const cur = await prisma.message.create({
      data: { tenant_id: tenantId, app_id: appId, conversation_id: conv.id, query: current, answer: "", parent_message_id: parent, created_at: new Date(t0 + i * 1000) },
    });
    return { conversationId: conv.id, messageId: cur.id, tenantId, appId };
  }

  it("chat model: template, then history, then the query as the last user message", async () => {
    const ids = await conversation([["q1", "a1"], ["q2", "a2"]], "q3");
    const pool = poolWith({ system: { query: "q3" } });
    const { ctx } = makeCtx({ models, config, pool, prisma, run: { mode: "advanced-chat", ...ids } });
    const res = await llmNode.run(
      llm({
        prompt_template: [{ role: "system", text: "You are helpful." }],
        memory: { window: { enabled: false, size: 10 }, query_prompt_template: "{{#sys.query#}}", role_prefix: { user: "", assistant: "" } },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    expect(fake.lastRequest("chat")!.body.messages).toEqual([
      { role: "system", content: "You are helpful." },
      { role: "user", content: "q1" },
      { role: "assistant", content: "a1" },
      { role: "user", content: "q2" },
      { role: "assistant", content: "a2" },
      { role: "user", content: "q3" },
    ]);
  });

  it("window.size counts rows including the current turn (size 2 → one earlier pair)", async () => {
    const ids = await conversation([["q1", "a1"], ["q2", "a2"]], "q3");
    const pool = poolWith({ system: { query: "q3" } });
    const { ctx } = makeCtx({ models, config, pool, prisma, run: { mode: "advanced-chat", ...ids } });
    await llmNode.run(
      llm({ prompt_template: [{ role: "system", text: "S" }], memory: { window: { enabled: true, size: 2 }, query_prompt_template: "" } }),
      ctx,
    );
    expect(fake.lastRequest("chat")!.body.messages).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: "q2" },
      { role: "assistant", content: "a2" },
      { role: "user", content: "q3" },
    ]);
  });

  it("completion model: history with role prefixes replaces #histories#", async () => {
    const ids = await conversation([["hi", "hello"]], "bye");
    const pool = poolWith({ system: { query: "bye" } });
    const { ctx } = makeCtx({ models, config, pool, prisma, run: { mode: "advanced-chat", ...ids } });
    fake.enqueue("completion", { text: "ok" });
    const res = await llmNode.run(
      llm({
        model: { name: "gpt-3.5-turbo-instruct", mode: "completion" },
        prompt_template: { text: "<histories>\n{{#histories#}}\n</histories>\nHuman: {{#sys.query#}}\nAssistant:" },
        memory: { window: { enabled: false, size: 10 }, role_prefix: { user: "Human", assistant: "Assistant" } },
      }),
      ctx,
    );
    expect(res.status).toBe("succeeded");
    // graphon: the memory query (here sys.query's text) is put in front of the prompt.
    expect(fake.lastRequest("completion")!.body.prompt).toBe("bye\n<histories>\n{{Human: hi\nAssistant: hello}}\n</histories>\nHuman: bye\nAssistant:");
  });

  it("completion model with memory but no role prefix fails", async () => {
    const ids = await conversation([["hi", "hello"]], "bye");
    const { ctx } = makeCtx({ models, config, pool: poolWith({ system: { query: "bye" } }), prisma, run: { mode: "advanced-chat", ...ids } });
    const res = await llmNode.run(
      llm({ model: { name: "gpt-3.5-turbo-instruct", mode: "completion" }, prompt_template: { text: "x" }, memory: { window: { enabled: false } } }),
      ctx,
    );
    expect(res.status).toBe("failed");
    expect(res.error).toBe("Memory role prefix is required for completion model.");
  });
});

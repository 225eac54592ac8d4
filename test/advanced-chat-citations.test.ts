// Citations from knowledge-retrieval nodes in advanced-chat (apps spec §7.1, §7.3, §8.2;
// dsl-and-workflow §1.4 `retriever_resource`, §4.5): start → knowledge-retrieval ×2 → llm (context
// = the second node's result) → answer. The nodes' citations are merged as Dify merges
// retriever-resource events (a (dataset, document) pair cited twice is kept once, positions
// renumbered 1..n), land in message_end / the blocking body and in the stored message (GET /messages).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mergeCitations } from "../src/modules/workflow/citations.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { createAppKey, createTenant, importApp } from "./support/factories.js";
import { DIM, seedDataset, seedDocument } from "./support/corpus.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { postSse } from "./support/sse.js";

let fake: FakeOpenAI;
let t: TestApp;
let base: string;
let tenantId: string;
let dsA: Awaited<ReturnType<typeof seedDataset>>;
let dsB: Awaited<ReturnType<typeof seedDataset>>;

const INSTALL = "To install Servify run npm install servify and start it with servify all.";
const HELM = "Servify install on Kubernetes uses the helm chart.";
const FULL_TEXT = { search_method: "full_text_search", reranking_enable: false, top_k: 4, score_threshold_enabled: false };

const chatflowYaml = (name: string, citations: boolean) => `app:
  name: ${name}
  mode: advanced-chat
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables: []
  environment_variables: []
  features:
    retriever_resource: {enabled: ${citations}}
  graph:
    nodes:
      - id: start
        type: custom
        data: {type: start, title: Start, variables: []}
      - id: kr1
        type: custom
        data:
          type: knowledge-retrieval
          title: Handbook
          query_variable_selector: [sys, query]
          dataset_ids: [${dsA.id}]
          retrieval_mode: multiple
          multiple_retrieval_config: {top_k: 4, score_threshold: null, reranking_enable: false}
      - id: kr2
        type: custom
        data:
          type: knowledge-retrieval
          title: Handbook and ops
          query_variable_selector: [sys, query]
          dataset_ids: [${dsA.id}, ${dsB.id}]
          retrieval_mode: multiple
          multiple_retrieval_config: {top_k: 4, score_threshold: null, reranking_enable: false}
      - id: llm
        type: custom
        data:
          type: llm
          title: LLM
          model: {provider: langgenius/openai/openai, name: gpt-4o-mini, mode: chat, completion_params: {}}
          prompt_template:
            - {role: system, text: "Answer from this context:\\n{{#context#}}"}
            - {role: user, text: "{{#sys.query#}}"}
          context: {enabled: true, variable_selector: [kr2, result]}
          vision: {enabled: false}
      - id: answer
        type: custom
        data: {type: answer, title: Answer, answer: "{{#llm.text#}}"}
    edges:
      - {id: e1, source: start, target: kr1}
      - {id: e2, source: kr1, target: kr2}
      - {id: e3, source: kr2, target: llm}
      - {id: e4, source: llm, target: answer}
`;

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: DIM });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  base = await t.app.listen({ port: 0, host: "127.0.0.1" });
  tenantId = await createTenant(t);
  dsA = await seedDataset(t, tenantId, { name: "Servify handbook", retrievalModel: FULL_TEXT });
  await seedDocument(t, dsA, { name: "install.md", segments: [{ content: INSTALL }, { content: "Redis holds the run events." }] });
  dsB = await seedDataset(t, tenantId, { name: "Ops notes", retrievalModel: FULL_TEXT });
  await seedDocument(t, dsB, { name: "ops.md", segments: [{ content: HELM }] });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

async function chatflow(citations: boolean) {
  const appId = await importApp(t, chatflowYaml(`cite-${citations}`, citations), tenantId);
  return { appId, auth: { authorization: `Bearer ${await createAppKey(t, appId)}` } };
}

function lastPrompt(): string {
  const req = fake.requestsOf("chat").at(-1)!;
  const messages = (req.body as { messages: Array<{ role: string; content: unknown }> }).messages;
  return messages.map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).join("\n");
}

const CITATION_KEYS = [
  "position", "dataset_id", "dataset_name", "document_id", "document_name", "data_source_type", "segment_id", "retriever_from",
  "score", "hit_count", "word_count", "segment_position", "index_node_hash", "content", "page", "doc_metadata", "title", "files", "summary",
];

describe("advanced-chat citations from knowledge-retrieval nodes", () => {
  it("message_end carries the merged, renumbered citations; the context reached the model; GET /messages shows them", async () => {
    const { auth } = await chatflow(true);
    fake.enqueue("chat", { text: "Run npm install servify.", usage: { prompt_tokens: 20, completion_tokens: 5 } });
    const cap = await postSse(base, "/v1/chat-messages", auth, { query: "install servify", inputs: {}, user: "u1", response_mode: "streaming", auto_generate_name: false });
    expect(cap.status).toBe(200);
    const end = cap.events.find((e) => e.event === "message_end")!;
    expect(end).toBeDefined();
    const resources = (end.metadata as { retriever_resources: Array<Record<string, unknown>> }).retriever_resources;
    // kr1 cites install.md; kr2 cites install.md again (dropped) and ops.md (renumbered to 2).
    expect(resources).toHaveLength(2);
    expect(Object.keys(resources[0]!)).toEqual(CITATION_KEYS);
    expect(resources[0]).toMatchObject({
      position: 1,
      dataset_id: dsA.id,
      dataset_name: "Servify handbook",
      document_name: "install.md",
      data_source_type: "upload_file",
      retriever_from: "workflow",
      segment_position: 1,
      content: INSTALL,
    });
    expect(resources[1]).toMatchObject({ position: 2, dataset_id: dsB.id, dataset_name: "Ops notes", document_name: "ops.md", retriever_from: "workflow", content: HELM });
    expect(typeof resources[0]!.score).toBe("number");

    // The llm node's context is kr2's result (both chunks), the unrelated chunk is absent.
    const prompt = lastPrompt();
    expect(prompt).toContain("Answer from this context:\n");
    expect(prompt).toContain(INSTALL);
    expect(prompt).toContain(HELM);
    expect(prompt).not.toContain("Redis holds the run events.");
    expect(cap.events.filter((e) => e.event === "message").map((e) => e.answer).join("")).toBe("Run npm install servify.");

    // Persisted with the message; GET /v1/messages re-shapes them (§7.3 message shape).
    const conversationId = end.conversation_id as string;
    const stored = await t.prisma.message.findUnique({ where: { id: end.message_id as string } });
    expect((stored!.message_metadata as { retriever_resources: unknown[] }).retriever_resources).toEqual(resources);
    const list = await t.app.inject({ method: "GET", url: `/v1/messages?conversation_id=${conversationId}&user=u1`, headers: auth });
    expect(list.statusCode).toBe(200);
    const msg = list.json().data[0];
    expect(msg.answer).toBe("Run npm install servify.");
    expect(msg.retriever_resources).toHaveLength(2);
    expect(Object.keys(msg.retriever_resources[0])).toEqual([
      "id", "message_id", "position", "dataset_id", "dataset_name", "document_id", "document_name", "data_source_type", "segment_id",
      "score", "hit_count", "word_count", "segment_position", "index_node_hash", "content", "summary", "created_at",
    ]);
    expect(msg.retriever_resources.map((r: Record<string, unknown>) => [r.position, r.document_name])).toEqual([
      [1, "install.md"],
      [2, "ops.md"],
    ]);
  });

  it("blocking body carries the citations; with the feature off they are [] but the context is still used", async () => {
    const on = await chatflow(true);
    fake.enqueue("chat", { text: "ok" });
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: on.auth, payload: { query: "install servify", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res.statusCode).toBe(200);
    expect(res.json().metadata.retriever_resources.map((r: Record<string, unknown>) => [r.position, r.document_name])).toEqual([
      [1, "install.md"],
      [2, "ops.md"],
    ]);

    const off = await chatflow(false);
    fake.enqueue("chat", { text: "ok" });
    const res2 = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: off.auth, payload: { query: "install servify", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res2.statusCode).toBe(200);
    expect(res2.json().metadata.retriever_resources).toEqual([]);
    expect(lastPrompt()).toContain(INSTALL);
    const stored = await t.prisma.message.findUnique({ where: { id: res2.json().message_id as string } });
    expect((stored!.message_metadata as { retriever_resources: unknown[] }).retriever_resources).toEqual([]);
  });

  it("no hit → retriever_resources []", async () => {
    const { auth } = await chatflow(true);
    fake.enqueue("chat", { text: "no idea" });
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: auth, payload: { query: "unrelated words", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res.statusCode).toBe(200);
    expect(res.json().metadata.retriever_resources).toEqual([]);
  });
});

describe("mergeCitations", () => {
  it("drops a repeated (dataset, document) pair, keeps ones without ids, renumbers positions", () => {
    const c = (d: string | null, doc: string | null, pos: number) => ({ position: pos, dataset_id: d, document_id: doc });
    expect(mergeCitations([[c("a", "1", 1), c("a", "1", 2), c("a", "2", 3)], [c("b", "9", 1), c("a", "2", 2), c(null, null, 3), c(null, null, 4)]])).toEqual([
      c("a", "1", 1),
      c("a", "2", 2),
      c("b", "9", 3),
      c(null, null, 4),
      c(null, null, 5),
    ]);
  });
});

// Knowledge in a basic chat app (dsl-and-workflow §2.7; apps spec §7.1, §7.3): the DSL's dataset
// id is mapped to a local dataset through the admin API, the retrieved chunk reaches the model
// inside the context block, and the citation comes back in message_end / the blocking body.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { adminHeaders, createAppKey, createTenant, importApp } from "./support/factories.js";
import { DIM, seedDataset, seedDocument } from "./support/corpus.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { postSse } from "./support/sse.js";

let fake: FakeOpenAI;
let t: TestApp;
let base: string;
let tenantId: string;
let ds: Awaited<ReturnType<typeof seedDataset>>;

const ragYaml = (name: string, citations: boolean, datasetId = "dsl-dataset-1") => `app:
  name: ${name}
  mode: chat
kind: app
version: 0.1.5
model_config:
  model: { provider: langgenius/openai/openai, name: gpt-4o-mini, mode: chat, completion_params: {} }
  pre_prompt: You answer questions about Servify.
  prompt_type: simple
  retriever_resource:
    enabled: ${citations}
  dataset_configs:
    retrieval_model: multiple
    reranking_enabled: false
    top_k: 2
    datasets:
      datasets:
        - dataset: { enabled: true, id: ${datasetId} }
`;

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: DIM });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  base = await t.app.listen({ port: 0, host: "127.0.0.1" });
  tenantId = await createTenant(t);
  ds = await seedDataset(t, tenantId, {
    name: "Servify handbook",
    retrievalModel: { search_method: "full_text_search", reranking_enable: false, top_k: 4, score_threshold_enabled: false },
  });
  await seedDocument(t, ds, {
    name: "install.md",
    segments: [{ content: "To install Servify run npm install servify and start it with servify all." }, { content: "Redis holds the run events." }],
  });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

async function mappedApp(citations: boolean) {
  const appId = await importApp(t, ragYaml(`rag-${citations}`, citations), tenantId);
  const res = await t.app.inject({ method: "PUT", url: `/admin/v1/apps/${appId}/datasets`, headers: adminHeaders, payload: { mappings: { "dsl-dataset-1": ds.id } } });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ data: [{ dsl_dataset_id: "dsl-dataset-1", dataset_id: ds.id }] });
  return { appId, auth: { authorization: `Bearer ${await createAppKey(t, appId)}` } };
}

function systemText(): string {
  const req = fake.requestsOf("chat").at(-1)!;
  const messages = (req.body as { messages: Array<{ role: string; content: string }> }).messages;
  return messages.map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).join("\n");
}

describe("RAG in a chat app", () => {
  it("streams message_end with the citation; the model saw the context", async () => {
    const { auth } = await mappedApp(true);
    const cap = await postSse(base, "/v1/chat-messages", auth, { query: "install servify", inputs: {}, user: "u1", response_mode: "streaming", auto_generate_name: false });
    expect(cap.status).toBe(200);
    const end = cap.events.find((e) => e.event === "message_end")!;
    const resources = (end.metadata as { retriever_resources: Array<Record<string, unknown>> }).retriever_resources;
    expect(resources).toHaveLength(1);
    expect(Object.keys(resources[0]!)).toEqual([
      "position", "dataset_id", "dataset_name", "document_id", "document_name", "data_source_type", "segment_id", "retriever_from",
      "score", "hit_count", "word_count", "segment_position", "index_node_hash", "content", "page", "doc_metadata", "title", "files", "summary",
    ]);
    expect(resources[0]).toMatchObject({
      position: 1,
      dataset_id: ds.id,
      dataset_name: "Servify handbook",
      document_name: "install.md",
      data_source_type: "upload_file",
      retriever_from: "dev",
      hit_count: 1,
      segment_position: 1,
      content: "To install Servify run npm install servify and start it with servify all.",
    });
    const prompt = systemText();
    expect(prompt).toContain("<context>\nTo install Servify run npm install servify and start it with servify all.\n</context>");
    expect(prompt).not.toContain("Redis holds the run events.");
  });

  it("blocking body carries the same metadata; citations off → [] but the context is still used", async () => {
    const on = await mappedApp(true);
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: on.auth, payload: { query: "install servify", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res.statusCode).toBe(200);
    expect(res.json().metadata.retriever_resources[0]).toMatchObject({ position: 1, document_name: "install.md" });

    const off = await mappedApp(false);
    const res2 = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: off.auth, payload: { query: "install servify", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res2.statusCode).toBe(200);
    expect(res2.json().metadata.retriever_resources).toEqual([]);
    expect(systemText()).toContain("<context>");
  });

  it("no hit → no context block", async () => {
    const { auth } = await mappedApp(true);
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: auth, payload: { query: "unrelated words", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res.json().metadata.retriever_resources).toEqual([]);
    expect(systemText()).not.toContain("<context>");
  });
});

describe("PUT /admin/v1/apps/{id}/datasets and the import warning", () => {
  it("a dataset of another tenant is 404; an unknown app is 404; a bad body is 400", async () => {
    const appId = await importApp(t, ragYaml("m1", true), tenantId);
    const other = await seedDataset(t, await createTenant(t));
    const r1 = await t.app.inject({ method: "PUT", url: `/admin/v1/apps/${appId}/datasets`, headers: adminHeaders, payload: { mappings: { "dsl-dataset-1": other.id } } });
    expect(r1.statusCode).toBe(404);
    expect(r1.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
    const r2 = await t.app.inject({ method: "PUT", url: `/admin/v1/apps/00000000-0000-4000-8000-000000000000/datasets`, headers: adminHeaders, payload: { mappings: {} } });
    expect(r2.statusCode).toBe(404);
    const r3 = await t.app.inject({ method: "PUT", url: `/admin/v1/apps/${appId}/datasets`, headers: adminHeaders, payload: { mappings: { x: "not-a-uuid" } } });
    expect(r3.statusCode).toBe(400);
    expect(r3.json().code).toBe("invalid_param");
  });

  it("the import warning lists only ids that are not local datasets", async () => {
    const res = await t.app.inject({ method: "POST", url: `/admin/v1/apps/import?tenant_id=${tenantId}`, headers: { ...adminHeaders, "content-type": "application/yaml" }, payload: ragYaml("w1", true) });
    expect(res.json().warnings.join("\n")).toContain("dsl-dataset-1");
    const res2 = await t.app.inject({ method: "POST", url: `/admin/v1/apps/import?tenant_id=${tenantId}`, headers: { ...adminHeaders, "content-type": "application/yaml" }, payload: ragYaml("w2", true, ds.id) });
    expect(res2.json().warnings.join("\n")).not.toContain("not mapped");
  });

  it("a local dataset id in the DSL is used as is", async () => {
    const appId = await importApp(t, ragYaml("local", true, ds.id), tenantId);
    const auth = { authorization: `Bearer ${await createAppKey(t, appId)}` };
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: auth, payload: { query: "install servify", inputs: {}, user: "u1", auto_generate_name: false } });
    expect(res.json().metadata.retriever_resources).toHaveLength(1);
  });
});

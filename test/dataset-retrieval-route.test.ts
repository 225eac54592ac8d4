// POST /v1/datasets/{id}/retrieve and /hit-testing (datasets spec §7): request validation, the
// response shape and key order, auth and dataset scope, no hit_count change, the query log row.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";
import { DIM, seedDataset, seedDocument } from "./support/corpus.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";

let fake: FakeOpenAI;
let t: TestApp;
let tenantId: string;
let key: string;
let appKey: string;
let ds: Awaited<ReturnType<typeof seedDataset>>;
let hier: Awaited<ReturnType<typeof seedDataset>>;
let auth: Record<string, string>;

const FT = { search_method: "full_text_search", reranking_enable: false, top_k: 3, score_threshold_enabled: false };

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: DIM });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" });
  tenantId = await createTenant(t);
  ds = await seedDataset(t, tenantId);
  await seedDocument(t, ds, { name: "readme.txt", metadata: { author: "alice" }, segments: [{ content: "how to install servify quickly" }, { content: "servify needs redis" }] });
  hier = await seedDataset(t, tenantId);
  await seedDocument(t, hier, { name: "pc.txt", docForm: "hierarchical_model", segments: [{ content: "parent text about lemons", children: ["lemons are sour", "limes too"] }] });
  key = await createDatasetKey(t, tenantId);
  auth = { authorization: `Bearer ${key}` };
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

const post = (path: string, payload: unknown, headers = auth) => t.app.inject({ method: "POST", url: `/v1/datasets/${ds.id}/${path}`, headers, payload: payload as object });

describe("auth and scope", () => {
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "POST", url: "/v1/datasets/00000000-0000-4000-8000-000000000000/retrieve", payload: { query: "x" } },
    { method: "POST", url: "/v1/datasets/00000000-0000-4000-8000-000000000000/hit-testing", payload: { query: "x" } },
  ]);

  it("a dataset of another tenant is 404; api disabled is 403; a non-UUID id is the generic 404", async () => {
    const otherKey = await createDatasetKey(t, await createTenant(t));
    const r1 = await post("retrieve", { query: "servify" }, { authorization: `Bearer ${otherKey}` });
    expect(r1.statusCode).toBe(404);
    expect(r1.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
    const off = await seedDataset(t, tenantId);
    await t.prisma.dataset.update({ where: { id: off.id }, data: { enable_api: false } });
    const r2 = await t.app.inject({ method: "POST", url: `/v1/datasets/${off.id}/retrieve`, headers: auth, payload: { query: "x" } });
    expect(r2.statusCode).toBe(403);
    expect(r2.json()).toEqual({ code: "forbidden", message: "Dataset api access is not enabled.", status: 403 });
    const r3 = await t.app.inject({ method: "POST", url: `/v1/datasets/nope/retrieve`, headers: auth, payload: { query: "x" } });
    expect(r3.statusCode).toBe(404);
  });
});

describe("validation", () => {
  it("query is required, non-empty and at most 250 characters", async () => {
    const r1 = await post("retrieve", {});
    expect(r1.statusCode).toBe(400);
    expect(r1.json().code).toBe("invalid_param");
    expect(r1.json().message).toContain("query");
    const r2 = await post("retrieve", { query: "" });
    expect(r2.json()).toEqual({ code: "invalid_param", message: "Query or attachment_ids is required", status: 400 });
    const r3 = await post("retrieve", { query: "字".repeat(251) });
    expect(r3.json()).toEqual({ code: "invalid_param", message: "Query cannot exceed 250 characters", status: 400 });
    expect((await post("retrieve", { query: "字".repeat(250), retrieval_model: FT })).statusCode).toBe(200);
  });

  it("a retrieval_model must carry its four required keys", async () => {
    const r = await post("hit-testing", { query: "servify", retrieval_model: { search_method: "semantic_search" } });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe("invalid_param");
    expect(r.json().message).toMatch(/^3 validation errors for HitTestingPayload\nretrieval_model.reranking_enable\n {2}Field required/);
    const bad = await post("hit-testing", { query: "servify", retrieval_model: { ...FT, search_method: "magic" } });
    expect(bad.statusCode).toBe(400);
  });
});

describe("response", () => {
  it("{query: {content}, records} with Dify's record and segment keys; retrieve = hit-testing", async () => {
    const res = await post("retrieve", { query: "install servify", retrieval_model: FT });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["query", "records"]);
    expect(body.query).toEqual({ content: "install servify" });
    expect(body.records).toHaveLength(1);
    const rec = body.records[0];
    expect(Object.keys(rec)).toEqual(["segment", "child_chunks", "score", "tsne_position", "files", "summary"]);
    expect(Object.keys(rec.segment)).toEqual([
      "id", "position", "document_id", "content", "sign_content", "answer", "word_count", "tokens", "keywords", "index_node_id",
      "index_node_hash", "hit_count", "enabled", "disabled_at", "disabled_by", "status", "created_by", "created_at", "indexing_at",
      "completed_at", "error", "stopped_at", "document",
    ]);
    expect(rec.segment).toMatchObject({ content: "how to install servify quickly", sign_content: "how to install servify quickly", keywords: [], hit_count: 0, status: "completed" });
    expect(rec.segment.document).toEqual({ id: rec.segment.document_id, data_source_type: "upload_file", name: "readme.txt", doc_type: null, doc_metadata: { author: "alice" } });
    expect(rec).toMatchObject({ child_chunks: [], tsne_position: null, files: [], summary: null });
    expect(typeof rec.score).toBe("number");
    const again = await post("hit-testing", { query: "install servify", retrieval_model: FT });
    expect(again.json().records.map((r: { segment: { id: string } }) => r.segment.id)).toEqual([rec.segment.id]);
  });

  it("child chunks of hierarchical documents come with their scores", async () => {
    const res = await t.app.inject({ method: "POST", url: `/v1/datasets/${hier.id}/retrieve`, headers: auth, payload: { query: "lemons", retrieval_model: FT } });
    const rec = res.json().records[0];
    expect(rec.segment.content).toBe("parent text about lemons");
    expect(rec.child_chunks).toHaveLength(1);
    expect(Object.keys(rec.child_chunks[0])).toEqual(["id", "content", "position", "score"]);
    expect(rec.child_chunks[0]).toMatchObject({ content: "lemons are sour", position: 1 });
    expect(rec.score).toBe(rec.child_chunks[0].score);
  });

  it("without retrieval_model the dataset's stored model (else semantic, top_k 4) is used", async () => {
    const res = await post("retrieve", { query: "servify" });
    expect(res.statusCode).toBe(200);
    expect(res.json().records.length).toBeGreaterThan(0);
    expect(fake.requestsOf("embeddings").at(-1)!.body).toMatchObject({ input: ["servify"] });
  });

  it("metadata_filtering_conditions restrict the documents; no match → no records", async () => {
    const none = await post("retrieve", { query: "servify", retrieval_model: { ...FT, metadata_filtering_conditions: { logical_operator: "and", conditions: [{ name: "author", comparison_operator: "is", value: "bob" }] } } });
    expect(none.json()).toEqual({ query: { content: "servify" }, records: [] });
    const some = await post("retrieve", { query: "servify", retrieval_model: { ...FT, metadata_filtering_conditions: { conditions: [{ name: "author", comparison_operator: "is", value: "alice" }] } } });
    expect(some.json().records.length).toBe(2);
  });

  it("never changes hit_count and logs the query as hit_testing", async () => {
    await post("retrieve", { query: "redis", retrieval_model: FT });
    const segs = await t.prisma.documentSegment.findMany({ where: { dataset_id: ds.id } });
    expect(segs.every((s) => s.hit_count === 0)).toBe(true);
    const log = await t.prisma.datasetQuery.findFirst({ where: { dataset_id: ds.id, content: { contains: "redis" } } });
    expect(log).toMatchObject({ source: "hit_testing", content: JSON.stringify([{ content_type: "text_query", content: "redis" }]) });
  });

  it("semantic search on an economy dataset is dataset_not_initialized", async () => {
    const eco = await seedDataset(t, tenantId, { technique: "economy" });
    const res = await t.app.inject({ method: "POST", url: `/v1/datasets/${eco.id}/retrieve`, headers: auth, payload: { query: "x" } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "dataset_not_initialized", message: "The dataset is still being initialized or indexing. Please wait a moment.", status: 400 });
  });
});

// Datasets (datasets spec §4, §3.1, §10): object shape and key order, create/update/delete
// semantics and errors, list pagination and visibility, key scope, tenant isolation, models list.
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workspaceOwnerId } from "../src/modules/tenants/owner.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

const DATASET_KEYS = [
  "id", "name", "description", "provider", "permission", "data_source_type", "indexing_technique", "app_count",
  "document_count", "word_count", "created_by", "author_name", "created_at", "updated_by", "updated_at",
  "embedding_model", "embedding_model_provider", "embedding_available", "retrieval_model_dict", "summary_index_setting",
  "tags", "doc_form", "external_knowledge_info", "external_retrieval_model", "doc_metadata", "built_in_field_enabled",
  "pipeline_id", "runtime_mode", "chunk_structure", "icon_info", "is_published", "total_documents",
  "total_available_documents", "enable_api", "is_multimodal",
];
const RMD_KEYS = ["search_method", "reranking_enable", "reranking_mode", "reranking_model", "weights", "top_k", "score_threshold_enabled", "score_threshold"];
const NO_EMBEDDING = "No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.";

let t: TestApp;
let appKey: string;

beforeAll(async () => {
  // A configured default endpoint makes OpenAI's predefined embedding models active; no request
  // is ever sent to it by these tests.
  t = await buildTestApp({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" });
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
});

async function workspace() {
  const tenantId = await createTenant(t);
  const key = await createDatasetKey(t, tenantId);
  return { tenantId, key, h: { authorization: `Bearer ${key}` } };
}

type H = Record<string, string>;
const create = (h: H, payload: object) => t.app.inject({ method: "POST", url: "/v1/datasets", headers: h, payload });
async function createOk(h: H, payload: object) {
  const res = await create(h, payload);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

describe("auth", () => {
  const id = randomUUID();
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "GET", url: "/v1/datasets" },
    { method: "POST", url: "/v1/datasets", payload: { name: "x" } },
    { method: "GET", url: `/v1/datasets/${id}` },
    { method: "PATCH", url: `/v1/datasets/${id}`, payload: {} },
    { method: "DELETE", url: `/v1/datasets/${id}` },
    { method: "GET", url: "/v1/workspaces/current/models/model-types/text-embedding" },
  ]);
});

describe("POST /v1/datasets", () => {
  it("creates an empty dataset: 200, every key in Dify's order, defaults", async () => {
    const { tenantId, h } = await workspace();
    const res = await create(h, { name: "Docs" });
    expect(res.statusCode).toBe(200);
    expect(res.body.endsWith("}\n")).toBe(true);
    const d = res.json();
    expect(Object.keys(d)).toEqual(DATASET_KEYS);
    expect(Object.keys(d.retrieval_model_dict)).toEqual(RMD_KEYS);
    const owner = workspaceOwnerId(tenantId);
    expect(d).toMatchObject({
      name: "Docs", description: "", provider: "vendor", permission: "only_me", data_source_type: null,
      indexing_technique: null, app_count: 0, document_count: 0, word_count: 0, created_by: owner, updated_by: owner,
      embedding_model: null, embedding_model_provider: null, embedding_available: null,
      retrieval_model_dict: {
        search_method: "semantic_search", reranking_enable: false, reranking_mode: null,
        reranking_model: { reranking_provider_name: "", reranking_model_name: "" }, weights: null, top_k: 2,
        score_threshold_enabled: false, score_threshold: null,
      },
      summary_index_setting: null, tags: [], doc_form: null, external_knowledge_info: null,
      external_retrieval_model: { top_k: 2, score_threshold: 0, score_threshold_enabled: null },
      doc_metadata: [], built_in_field_enabled: false, pipeline_id: null, runtime_mode: "general", chunk_structure: null,
      icon_info: null, is_published: false, total_documents: 0, total_available_documents: 0, enable_api: true, is_multimodal: false,
    });
    expect(typeof d.author_name).toBe("string");
    expect(Number.isInteger(d.created_at)).toBe(true);
    // Python floats stay floats on the wire.
    expect(res.body).toContain('"external_retrieval_model": {"top_k": 2, "score_threshold": 0.0, "score_threshold_enabled": null}');
  });

  it("high_quality without a model takes the workspace default, stored with the plugin provider id", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "HQ", indexing_technique: "high_quality" });
    expect(d.embedding_model).toBe("text-embedding-3-small");
    expect(d.embedding_model_provider).toBe("langgenius/openai/openai");
  });

  it("high_quality with a short provider name stores the full id; retrieval model echoed with floats", async () => {
    const { h } = await workspace();
    const res = await create(h, {
      name: "HQ2", indexing_technique: "high_quality", embedding_model: "text-embedding-3-large", embedding_model_provider: "openai",
      retrieval_model: {
        search_method: "hybrid_search", reranking_enable: false, top_k: 5, score_threshold_enabled: true, score_threshold: 1,
        reranking_mode: "weighted_score",
        weights: { weight_type: "customized", vector_setting: { vector_weight: 1, embedding_provider_name: "openai", embedding_model_name: "text-embedding-3-large" }, keyword_setting: { keyword_weight: 0 } },
        metadata_filtering_conditions: { logical_operator: "and", conditions: [] },
      },
    });
    expect(res.statusCode).toBe(200);
    const d = res.json();
    expect(d.embedding_model_provider).toBe("langgenius/openai/openai");
    expect(d.retrieval_model_dict).toEqual({
      search_method: "hybrid_search", reranking_enable: false, reranking_mode: "weighted_score", reranking_model: null,
      weights: { weight_type: "customized", vector_setting: { vector_weight: 1, embedding_provider_name: "openai", embedding_model_name: "text-embedding-3-large" }, keyword_setting: { keyword_weight: 0 } },
      top_k: 5, score_threshold_enabled: true, score_threshold: 1,
    });
    expect(res.body).toContain('"score_threshold": 1.0}');
    expect(res.body).toContain('"vector_weight": 1.0');
    expect(res.body).toContain('"keyword_weight": 0.0');
    expect(d.external_retrieval_model).toEqual({ top_k: 5, score_threshold: 1, score_threshold_enabled: true });
  });

  it("economy ignores embedding fields", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "Eco", indexing_technique: "economy", embedding_model: "text-embedding-3-small", embedding_model_provider: "openai" });
    expect(d.embedding_model).toBeNull();
    expect(d.embedding_model_provider).toBeNull();
  });

  it("409 dataset_name_duplicate for an existing name (exact, case-sensitive)", async () => {
    const { h } = await workspace();
    await createOk(h, { name: "Same" });
    const res = await create(h, { name: "Same" });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ code: "dataset_name_duplicate", message: "The dataset name already exists. Please modify your dataset name.", status: 409 });
    expect((await create(h, { name: "same" })).statusCode).toBe(200);
  });

  it("the same name in another tenant is fine", async () => {
    const a = await workspace();
    const b = await workspace();
    await createOk(a.h, { name: "Shared name" });
    await createOk(b.h, { name: "Shared name" });
  });

  it("400 for an unknown embedding model", async () => {
    const { h } = await workspace();
    const res = await create(h, { name: "X", indexing_technique: "high_quality", embedding_model: "nope-embed", embedding_model_provider: "openai" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: NO_EMBEDDING, status: 400 });
  });

  it("400 for an unknown rerank model", async () => {
    const { h } = await workspace();
    const res = await create(h, {
      name: "X",
      retrieval_model: { search_method: "semantic_search", reranking_enable: true, top_k: 3, score_threshold_enabled: false, reranking_model: { reranking_provider_name: "cohere", reranking_model_name: "rerank-v3.5" } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: "No Rerank Model available. Please configure a valid provider in the Settings -> Model Provider.", status: 400 });
  });

  it("400 for an external dataset naming an API template", async () => {
    const { h } = await workspace();
    const res = await create(h, { name: "Ext", provider: "external", external_knowledge_api_id: randomUUID(), external_knowledge_id: "k" });
    expect(res.json()).toEqual({ code: "invalid_param", message: "External API template not found.", status: 400 });
  });

  it.each([
    [{}, [{ type: "missing", loc: ["name"], msg: "Field required" }]],
    [{ name: "" }, [{ type: "string_too_short", loc: ["name"], msg: "String should have at least 1 character" }]],
    [{ name: "x".repeat(41) }, [{ type: "string_too_long", loc: ["name"], msg: "String should have at most 40 characters" }]],
    [{ name: 5 }, [{ type: "string_type", loc: ["name"], msg: "Input should be a valid string" }]],
    [{ name: "a", description: "d".repeat(401) }, [{ type: "string_too_long", loc: ["description"], msg: "String should have at most 400 characters" }]],
    [{ name: "a", indexing_technique: "fast" }, [{ type: "literal_error", loc: ["indexing_technique"], msg: "Input should be 'high_quality' or 'economy'" }]],
    [{ name: "a", permission: "everyone" }, [{ type: "enum", loc: ["permission"], msg: "Input should be 'only_me', 'all_team_members' or 'partial_members'" }]],
    [{ name: "a", retrieval_model: { search_method: "semantic_search" } }, [
      { type: "missing", loc: ["retrieval_model", "reranking_enable"], msg: "Field required" },
      { type: "missing", loc: ["retrieval_model", "top_k"], msg: "Field required" },
      { type: "missing", loc: ["retrieval_model", "score_threshold_enabled"], msg: "Field required" },
    ]],
    [{ name: "a", retrieval_model: "x" }, [{ type: "model_type", loc: ["retrieval_model"], msg: "Input should be a valid dictionary or instance of RetrievalModel" }]],
  ])("422 unprocessable_entity with pydantic's error list: %j", async (payload, errors) => {
    const { h } = await workspace();
    const res = await create(h, payload);
    expect(res.statusCode).toBe(422);
    const body = res.json();
    expect(body.code).toBe("unprocessable_entity");
    expect(body.status).toBe(422);
    expect(JSON.parse(body.message)).toEqual(errors);
  });

  it("422 message is json.dumps text", async () => {
    const { h } = await workspace();
    const res = await create(h, {});
    expect(res.json().message).toBe('[{"type": "missing", "loc": ["name"], "msg": "Field required"}]');
  });

  it("a scoped key keeps access to the dataset it creates", async () => {
    const tenantId = await createTenant(t);
    const owned = await createOk({ authorization: `Bearer ${await createDatasetKey(t, tenantId)}` }, { name: "First" });
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, tenantId, [owned.id])}` };
    const d = await createOk(scoped, { name: "Second" });
    const got = await t.app.inject({ method: "GET", url: `/v1/datasets/${d.id}`, headers: scoped });
    expect(got.statusCode).toBe(200);
  });
});

describe("GET /v1/datasets/{dataset_id}", () => {
  it("detail: embedding_available, keyword_search forced for non-high_quality, counts", async () => {
    const { tenantId, h } = await workspace();
    const eco = await createOk(h, { name: "Eco" });
    await t.prisma.document.createMany({
      data: [
        { tenant_id: tenantId, dataset_id: eco.id, position: 1, data_source_type: "upload_file", batch: "b", name: "a.txt", word_count: 10, indexing_status: "completed", doc_form: "qa_model" },
        { tenant_id: tenantId, dataset_id: eco.id, position: 2, data_source_type: "upload_file", batch: "b", name: "b.txt", word_count: 5, indexing_status: "indexing" },
      ],
    });
    const res = await t.app.inject({ method: "GET", url: `/v1/datasets/${eco.id}`, headers: h });
    expect(res.statusCode).toBe(200);
    const d = res.json();
    expect(Object.keys(d)).toEqual(DATASET_KEYS);
    expect(d).toMatchObject({ embedding_available: true, document_count: 2, word_count: 15, total_documents: 2, total_available_documents: 1, doc_form: "qa_model" });
    expect(d.retrieval_model_dict.search_method).toBe("keyword_search");

    const hq = await createOk(h, { name: "HQ", indexing_technique: "high_quality" });
    const dh = (await t.app.inject({ method: "GET", url: `/v1/datasets/${hq.id}`, headers: h })).json();
    expect(dh.embedding_available).toBe(true);
    expect(dh.retrieval_model_dict.search_method).toBe("semantic_search");
  });

  it("detail does not normalise a stored short provider (embedding_available false); the list does", async () => {
    const { tenantId, h } = await workspace();
    const row = await t.prisma.dataset.create({
      data: { tenant_id: tenantId, name: "Legacy", permission: "all_team_members", indexing_technique: "high_quality", embedding_model: "text-embedding-3-small", embedding_model_provider: "openai" },
    });
    const d = (await t.app.inject({ method: "GET", url: `/v1/datasets/${row.id}`, headers: h })).json();
    expect(d.embedding_available).toBe(false);
    expect(d.embedding_model_provider).toBe("openai");
    const list = (await t.app.inject({ method: "GET", url: "/v1/datasets", headers: h })).json();
    expect(list.data[0]).toMatchObject({ id: row.id, embedding_model_provider: "langgenius/openai/openai", embedding_available: true });
  });

  it("partial_member_list only for partial_members", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "P" });
    const upd = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { permission: "partial_members", partial_member_list: [{ user_id: "u1" }] } });
    expect(upd.json().partial_member_list).toEqual(["u1"]);
    const got = (await t.app.inject({ method: "GET", url: `/v1/datasets/${d.id}`, headers: h })).json();
    expect(Object.keys(got)).toEqual([...DATASET_KEYS, "partial_member_list"]);
    expect(got.partial_member_list).toEqual(["u1"]);
  });

  it("404 for another tenant's dataset, an unknown id, and a dataset outside a key's scope; generic 404 for a non-UUID", async () => {
    const a = await workspace();
    const b = await workspace();
    const other = await createOk(b.h, { name: "Theirs" });
    const notFound = { code: "not_found", message: "Dataset not found.", status: 404 };
    for (const id of [other.id, randomUUID()]) {
      const res = await t.app.inject({ method: "GET", url: `/v1/datasets/${id}`, headers: a.h });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual(notFound);
    }
    const mine = await createOk(a.h, { name: "Mine" });
    const inScope = await createOk(a.h, { name: "Scoped" });
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, a.tenantId, [inScope.id])}` };
    for (const [method, payload] of [["GET", undefined], ["PATCH", { name: "z" }], ["DELETE", undefined]] as const) {
      const res = await t.app.inject({ method, url: `/v1/datasets/${mine.id}`, headers: scoped, ...(payload ? { payload } : {}) });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual(notFound);
    }
    const bad = await t.app.inject({ method: "GET", url: "/v1/datasets/not-a-uuid", headers: a.h });
    expect(bad.statusCode).toBe(404);
    expect(bad.json().message).toMatch(/^The requested URL was not found/);
  });

  it("403 when API access is disabled for the dataset", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "Off" });
    await t.prisma.dataset.update({ where: { id: d.id }, data: { enable_api: false } });
    const res = await t.app.inject({ method: "GET", url: `/v1/datasets/${d.id}`, headers: h });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ code: "forbidden", message: "Dataset api access is not enabled.", status: 403 });
  });
});

describe("GET /v1/datasets", () => {
  it("paginates: page * min(limit,100) < total, newest first, limit echoed capped", async () => {
    const { h } = await workspace();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createOk(h, { name: `D${i}` })).id);
    const p1 = (await t.app.inject({ method: "GET", url: "/v1/datasets?page=1&limit=2", headers: h })).json();
    expect(Object.keys(p1)).toEqual(["data", "has_more", "limit", "total", "page"]);
    expect(p1).toMatchObject({ has_more: true, limit: 2, total: 5, page: 1 });
    expect(p1.data.map((d: { name: string }) => d.name)).toEqual(["D4", "D3"]);
    expect(Object.keys(p1.data[0])).toEqual(DATASET_KEYS);
    expect(p1.data[0].embedding_available).toBe(true);
    const p3 = (await t.app.inject({ method: "GET", url: "/v1/datasets?page=3&limit=2", headers: h })).json();
    expect(p3).toMatchObject({ has_more: false, total: 5, page: 3 });
    expect(p3.data).toHaveLength(1);
    const big = (await t.app.inject({ method: "GET", url: "/v1/datasets?limit=500", headers: h })).json();
    expect(big).toMatchObject({ limit: 100, total: 5, has_more: false });
    const past = (await t.app.inject({ method: "GET", url: "/v1/datasets?page=9", headers: h })).json();
    expect(past).toMatchObject({ data: [], total: 5, page: 9, has_more: false });
  });

  it("400 invalid_param for a non-integer page", async () => {
    const { h } = await workspace();
    const res = await t.app.inject({ method: "GET", url: "/v1/datasets?page=abc", headers: h });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("invalid_param");
    expect(res.json().message).toContain("DatasetListQuery");
  });

  it("keyword is a case-insensitive substring with wildcards taken literally", async () => {
    const { h } = await workspace();
    await createOk(h, { name: "Alpha_1" });
    await createOk(h, { name: "alphaX1" });
    await createOk(h, { name: "Beta" });
    const r = (await t.app.inject({ method: "GET", url: "/v1/datasets?keyword=ALPHA", headers: h })).json();
    expect(r.total).toBe(2);
    const u = (await t.app.inject({ method: "GET", url: "/v1/datasets?keyword=a_1", headers: h })).json();
    expect(u.data.map((d: { name: string }) => d.name)).toEqual(["Alpha_1"]);
  });

  it("tag_ids must all match; unknown tags give an empty page", async () => {
    const { h } = await workspace();
    const d1 = await createOk(h, { name: "T1" });
    const d2 = await createOk(h, { name: "T2" });
    const tag = async (name: string) => (await t.app.inject({ method: "POST", url: "/v1/datasets/tags", headers: h, payload: { name } })).json().id as string;
    const a = await tag("a");
    const b = await tag("b");
    await t.app.inject({ method: "POST", url: "/v1/datasets/tags/binding", headers: h, payload: { tag_ids: [a, b], target_id: d1.id } });
    await t.app.inject({ method: "POST", url: "/v1/datasets/tags/binding", headers: h, payload: { tag_ids: [a], target_id: d2.id } });
    const one = (await t.app.inject({ method: "GET", url: `/v1/datasets?tag_ids=${a}`, headers: h })).json();
    expect(one.total).toBe(2);
    const both = (await t.app.inject({ method: "GET", url: `/v1/datasets?tag_ids=${a}&tag_ids=${b}`, headers: h })).json();
    expect(both.data.map((d: { id: string }) => d.id)).toEqual([d1.id]);
    expect(both.data[0].tags.map((x: { name: string }) => x.name)).toEqual(["a", "b"]);
    expect(both.data[0].tags[0]).toEqual({ id: a, name: "a", type: "knowledge" });
    const none = (await t.app.inject({ method: "GET", url: `/v1/datasets?tag_ids=${randomUUID()}`, headers: h })).json();
    expect(none).toEqual({ data: [], has_more: false, limit: 20, total: 0, page: 1 });
  });

  it("visibility (§2.3): partial_members without the owner is hidden unless include_all", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "Hidden" });
    await createOk(h, { name: "Visible" });
    await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { permission: "partial_members", partial_member_list: [{ user_id: "someone" }] } });
    const def = (await t.app.inject({ method: "GET", url: "/v1/datasets", headers: h })).json();
    expect(def.data.map((x: { name: string }) => x.name)).toEqual(["Visible"]);
    const all = (await t.app.inject({ method: "GET", url: "/v1/datasets?include_all=true", headers: h })).json();
    expect(all.total).toBe(2);
  });

  it("a scoped key lists only its datasets; tenants never see each other", async () => {
    const a = await workspace();
    const b = await workspace();
    const x = await createOk(a.h, { name: "X" });
    await createOk(a.h, { name: "Y" });
    await createOk(b.h, { name: "Z" });
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, a.tenantId, [x.id])}` };
    const s = (await t.app.inject({ method: "GET", url: "/v1/datasets", headers: scoped })).json();
    expect(s.data.map((d: { name: string }) => d.name)).toEqual(["X"]);
    const la = (await t.app.inject({ method: "GET", url: "/v1/datasets", headers: a.h })).json();
    expect(la.data.map((d: { name: string }) => d.name).sort()).toEqual(["X", "Y"]);
  });
});

describe("PATCH /v1/datasets/{dataset_id}", () => {
  it("updates only the keys sent; partial_member_list always present", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "Old", description: "desc" });
    const res = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { name: "New" } });
    expect(res.statusCode).toBe(200);
    const u = res.json();
    expect(Object.keys(u)).toEqual([...DATASET_KEYS, "partial_member_list"]);
    expect(u).toMatchObject({ name: "New", description: "desc", embedding_available: null, partial_member_list: [] });
    const cleared = (await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { description: null } })).json();
    expect(cleared.description).toBe("");
  });

  it("400 'Dataset name already exists' for another dataset's name (not 409)", async () => {
    const { h } = await workspace();
    await createOk(h, { name: "Taken" });
    const d = await createOk(h, { name: "Mine" });
    const res = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { name: "Taken" } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: "Dataset name already exists", status: 400 });
    const same = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { name: "Mine" } });
    expect(same.statusCode).toBe(200);
  });

  it("economy → high_quality resolves a model; → economy clears it; unknown model 400", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "Switch", indexing_technique: "economy" });
    const up = (await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { indexing_technique: "high_quality", embedding_model: "text-embedding-3-large", embedding_model_provider: "langgenius/openai/openai" } })).json();
    expect(up).toMatchObject({ indexing_technique: "high_quality", embedding_model: "text-embedding-3-large", embedding_model_provider: "langgenius/openai/openai" });
    const bad = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { embedding_model: "x", embedding_model_provider: "openai" } });
    expect(bad.json()).toEqual({ code: "invalid_param", message: NO_EMBEDDING, status: 400 });
    const down = (await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { indexing_technique: "economy" } })).json();
    expect(down).toMatchObject({ indexing_technique: "economy", embedding_model: null, embedding_model_provider: null });
  });

  it("422 on schema errors, after the dataset check", async () => {
    const { h } = await workspace();
    const d = await createOk(h, { name: "V" });
    const res = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${d.id}`, headers: h, payload: { name: "" } });
    expect(res.statusCode).toBe(422);
    expect(JSON.parse(res.json().message)).toEqual([{ type: "string_too_short", loc: ["name"], msg: "String should have at least 1 character" }]);
    const missing = await t.app.inject({ method: "PATCH", url: `/v1/datasets/${randomUUID()}`, headers: h, payload: { name: "" } });
    expect(missing.statusCode).toBe(404);
  });
});

describe("DELETE /v1/datasets/{dataset_id}", () => {
  it("204 empty, then 404; documents, tag bindings and app links go with it", async () => {
    const { tenantId, h } = await workspace();
    const d = await createOk(h, { name: "Gone" });
    await t.prisma.document.create({ data: { tenant_id: tenantId, dataset_id: d.id, position: 1, data_source_type: "upload_file", batch: "b", name: "a.txt" } });
    const tag = (await t.app.inject({ method: "POST", url: "/v1/datasets/tags", headers: h, payload: { name: "t" } })).json();
    await t.app.inject({ method: "POST", url: "/v1/datasets/tags/binding", headers: h, payload: { tag_ids: [tag.id], target_id: d.id } });
    const res = await t.app.inject({ method: "DELETE", url: `/v1/datasets/${d.id}`, headers: h });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    expect(await t.prisma.document.count({ where: { dataset_id: d.id } })).toBe(0);
    expect(await t.prisma.tagBinding.count({ where: { target_id: d.id } })).toBe(0);
    const again = await t.app.inject({ method: "DELETE", url: `/v1/datasets/${d.id}`, headers: h });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
  });

  it("cannot delete another tenant's dataset", async () => {
    const a = await workspace();
    const b = await workspace();
    const d = await createOk(b.h, { name: "Theirs" });
    expect((await t.app.inject({ method: "DELETE", url: `/v1/datasets/${d.id}`, headers: a.h })).statusCode).toBe(404);
    expect(await t.prisma.dataset.count({ where: { id: d.id } })).toBe(1);
  });
});

describe("GET /v1/workspaces/current/models/model-types/{model_type}", () => {
  it("lists the active text-embedding models in Dify's shape", async () => {
    const { tenantId, h } = await workspace();
    const res = await t.app.inject({ method: "GET", url: "/v1/workspaces/current/models/model-types/text-embedding", headers: h });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.data).toHaveLength(1);
    const p = body.data[0];
    expect(Object.keys(p)).toEqual(["tenant_id", "provider", "label", "icon_small", "icon_small_dark", "status", "models"]);
    expect(p).toMatchObject({ tenant_id: tenantId, provider: "langgenius/openai/openai", label: { en_US: "OpenAI", zh_Hans: "OpenAI" }, icon_small_dark: null, status: "active" });
    expect(p.models.map((m: { model: string }) => m.model)).toEqual(["text-embedding-3-large", "text-embedding-3-small", "text-embedding-ada-002"]);
    expect(p.models[1]).toEqual({
      model: "text-embedding-3-small", label: { en_US: "text-embedding-3-small", zh_Hans: "text-embedding-3-small" }, model_type: "text-embedding",
      features: null, fetch_from: "predefined-model", model_properties: { context_size: 8191, max_chunks: 32 }, deprecated: false, status: "active", load_balancing_enabled: false,
    });
    // Legacy alias of the type.
    const alias = (await t.app.inject({ method: "GET", url: "/v1/workspaces/current/models/model-types/embeddings", headers: h })).json();
    expect(alias).toEqual(body);
  });

  it("400 invalid_param for an unknown model type; rerank is empty without a models file", async () => {
    const { h } = await workspace();
    const bad = await t.app.inject({ method: "GET", url: "/v1/workspaces/current/models/model-types/foo", headers: h });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ code: "invalid_param", message: "invalid origin model type foo", status: 400 });
    const rr = (await t.app.inject({ method: "GET", url: "/v1/workspaces/current/models/model-types/rerank", headers: h })).json();
    expect(rr).toEqual({ data: [] });
  });
});

describe("models file", () => {
  let t2: TestApp;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "servify-models-"));
    const file = path.join(dir, "models.yaml");
    writeFileSync(file, [
      "models:",
      "  - match: { name: bge-m3 }",
      "    type: text-embedding",
      "    base_url: http://127.0.0.1:9/v1",
      "    api_key: \"\"",
      "    context_size: 8192",
      "  - match: { provider: jina, name: \"jina-*\" }",
      "    type: rerank",
      "    base_url: http://127.0.0.1:9/v1",
      "    api_key: \"\"",
    ].join("\n"));
    t2 = await buildTestApp({ MODELS_FILE: file, OPENAI_API_KEY: "" });
  });
  afterAll(async () => {
    await t2?.close();
  });

  it("lists models-file entries; the default embedding model is the first of them; glob entries validate", async () => {
    const tenantId = await createTenant(t2);
    const h = { authorization: `Bearer ${await createDatasetKey(t2, tenantId)}` };
    const list = (await t2.app.inject({ method: "GET", url: "/v1/workspaces/current/models/model-types/text-embedding", headers: h })).json();
    expect(list.data.map((p: { provider: string }) => p.provider)).toEqual(["langgenius/openai_api_compatible/openai_api_compatible"]);
    expect(list.data[0].models[0]).toMatchObject({ model: "bge-m3", fetch_from: "customizable-model", model_properties: { context_size: 8192, max_chunks: 32 } });
    const d = (await t2.app.inject({ method: "POST", url: "/v1/datasets", headers: h, payload: { name: "M", indexing_technique: "high_quality" } })).json();
    expect(d).toMatchObject({ embedding_model: "bge-m3", embedding_model_provider: "langgenius/openai_api_compatible/openai_api_compatible" });
    // OpenAI's models are not active without a key.
    const no = await t2.app.inject({ method: "POST", url: "/v1/datasets", headers: h, payload: { name: "N", indexing_technique: "high_quality", embedding_model: "text-embedding-3-small", embedding_model_provider: "openai" } });
    expect(no.statusCode).toBe(400);
    const rr = await t2.app.inject({
      method: "POST", url: "/v1/datasets", headers: h,
      payload: { name: "R", retrieval_model: { search_method: "semantic_search", reranking_enable: true, top_k: 3, score_threshold_enabled: false, reranking_model: { reranking_provider_name: "jina", reranking_model_name: "jina-reranker-v2" } } },
    });
    expect(rr.statusCode).toBe(200);
  });
});

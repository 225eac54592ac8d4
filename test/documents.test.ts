// Documents API (datasets spec §5): shapes and key order, every documented error, pagination
// quirks, auth and dataset scoping. Indexing is not run here (no workers): completed documents
// are made by writing the rows the pipeline would write.
import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../src/queue/contract.js";
import { workspaceOwnerId } from "../src/modules/tenants/owner.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { authCases } from "./support/auth-cases.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";

let t: TestApp;
let appKey: string;

beforeAll(async () => {
  // A dummy OpenAI endpoint: nothing is embedded in this file, the registry only needs credentials.
  t = await buildTestApp({ OPENAI_BASE_URL: "http://127.0.0.1:9/v1", OPENAI_API_KEY: "sk-test" });
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
});

interface Ctx {
  tenantId: string;
  key: string;
  datasetId: string;
  h: Record<string, string>;
}

async function setup(data: Record<string, unknown> = {}): Promise<Ctx> {
  const tenantId = await createTenant(t);
  const ds = await t.prisma.dataset.create({
    data: { tenant_id: tenantId, name: `ds-${randomUUID().slice(0, 8)}`, created_by: workspaceOwnerId(tenantId), ...data },
  });
  const key = await createDatasetKey(t, tenantId);
  return { tenantId, key, datasetId: ds.id, h: { authorization: `Bearer ${key}` } };
}

const base = (c: Ctx) => `/v1/datasets/${c.datasetId}`;

async function createText(c: Ctx, body: Record<string, unknown>, path = "create-by-text") {
  return t.app.inject({ method: "POST", url: `${base(c)}/document/${path}`, headers: c.h, payload: body });
}

/** Marks a document completed and gives it `n` segments, as the pipeline would. */
async function complete(c: Ctx, documentId: string, n = 2) {
  const now = new Date();
  // What re-indexing does: the old segments go, new ones come.
  await t.prisma.documentSegment.deleteMany({ where: { document_id: documentId } });
  for (let i = 1; i <= n; i++) {
    await t.prisma.documentSegment.create({
      data: {
        tenant_id: c.tenantId, dataset_id: c.datasetId, document_id: documentId, position: i, content: `segment ${i}`,
        word_count: 9, tokens: 3, index_node_id: randomUUID(), index_node_hash: "h", status: "completed",
        enabled: true, completed_at: now, indexing_at: now, hit_count: i,
      },
    });
  }
  await t.prisma.document.update({
    where: { id: documentId },
    data: { indexing_status: "completed", completed_at: now, processing_started_at: now, word_count: 9 * n, tokens: 3 * n, indexing_latency: 1.5 },
  });
}

function multipart(parts: Array<{ name: string; value?: string; filename?: string; type?: string; data?: Buffer | string }>) {
  const boundary = `----servify${randomUUID().replace(/-/g, "")}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"\r\nContent-Type: ${p.type ?? "text/plain"}`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`), Buffer.from(p.data ?? p.value ?? ""), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { "content-type": `multipart/form-data; boundary=${boundary}` } };
}

const DOC_KEYS = [
  "id", "position", "data_source_type", "data_source_info", "data_source_detail_dict", "dataset_process_rule_id", "name",
  "created_from", "created_by", "created_at", "tokens", "indexing_status", "error", "enabled", "disabled_at", "disabled_by",
  "archived", "display_status", "word_count", "hit_count", "doc_form", "doc_metadata", "summary_index_status", "need_summary",
];

describe("POST /document/create-by-text (§5.3)", () => {
  it("creates a waiting document in Dify's shape and enqueues indexing after commit", async () => {
    const c = await setup();
    const res = await createText(c, { name: "guide", text: "Hello world. Second sentence.", indexing_technique: "economy" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["document", "batch"]);
    expect(body.batch).toMatch(/^\d{20}$/);
    const d = body.document;
    expect(Object.keys(d)).toEqual(DOC_KEYS);
    expect(d).toMatchObject({
      position: 1, data_source_type: "upload_file", name: "guide", created_from: "api", created_by: workspaceOwnerId(c.tenantId),
      tokens: null, indexing_status: "waiting", error: null, enabled: true, disabled_at: null, disabled_by: null, archived: false,
      display_status: "queuing", word_count: null, hit_count: 0, doc_form: "text_model", doc_metadata: [], summary_index_status: null, need_summary: false,
    });
    const fileId = d.data_source_info.upload_file_id;
    expect(d.data_source_detail_dict.upload_file).toMatchObject({ id: fileId, name: "guide", size: 29, extension: "txt", mime_type: "text/plain" });
    expect(Object.keys(d.data_source_detail_dict.upload_file)).toEqual(["id", "name", "size", "extension", "mime_type", "created_by", "created_at"]);
    const file = await t.prisma.uploadFile.findUniqueOrThrow({ where: { id: fileId } });
    expect(file.created_by_role).toBe("account");
    // First-document rules (§5.5).
    const ds = await t.prisma.dataset.findUniqueOrThrow({ where: { id: c.datasetId } });
    expect(ds).toMatchObject({ indexing_technique: "economy", data_source_type: "upload_file", doc_form: "text_model" });
    const rule = await t.prisma.datasetProcessRule.findUniqueOrThrow({ where: { id: d.dataset_process_rule_id } });
    expect(rule.mode).toBe("automatic");
    // The job names the committed document.
    const q = new Queue(QUEUES.documentIndexing, { connection: t.redis, prefix: t.config.QUEUE_PREFIX });
    const jobs = await q.getJobs(["waiting", "delayed", "active"]);
    await q.close();
    expect(jobs.some((j) => j.data.documentId === d.id && j.data.datasetId === c.datasetId && j.data.action === "index")).toBe(true);

    // Positions continue; the underscore alias behaves the same.
    const second = await createText(c, { name: "other", text: "x" }, "create_by_text");
    expect(second.statusCode).toBe(200);
    expect(second.json().document.position).toBe(2);
    // The latest rule is reused when none is given (§5.2).
    expect(second.json().document.dataset_process_rule_id).toBe(d.dataset_process_rule_id);
  });

  it("reuses an enabled document with the same name (§5.5 duplicate)", async () => {
    const c = await setup();
    const a = (await createText(c, { name: "same", text: "one", indexing_technique: "economy" })).json();
    const b = (await createText(c, { name: "same", text: "two" })).json();
    expect(b.document.id).toBe(a.document.id);
    expect(b.document.position).toBe(1);
    expect(b.batch).not.toBe(a.batch);
    expect(b.document.data_source_info.upload_file_id).not.toBe(a.document.data_source_info.upload_file_id);
    expect(await t.prisma.document.count({ where: { dataset_id: c.datasetId } })).toBe(1);
  });

  it("a first high_quality document sets the embedding model and the default retrieval model", async () => {
    const c = await setup();
    const res = await createText(c, { name: "hq", text: "x", indexing_technique: "high_quality", embedding_model: "text-embedding-3-small", embedding_model_provider: "openai" });
    expect(res.statusCode).toBe(200);
    const ds = await t.prisma.dataset.findUniqueOrThrow({ where: { id: c.datasetId } });
    expect(ds.indexing_technique).toBe("high_quality");
    expect(ds.embedding_model).toBe("text-embedding-3-small");
    expect(ds.embedding_model_provider).toBe("langgenius/openai/openai");
    expect(ds.retrieval_model).toMatchObject({ search_method: "semantic_search", top_k: 4, reranking_enable: false });
  });

  it("stores a custom process rule as validated (§5.2)", async () => {
    const c = await setup();
    const res = await createText(c, {
      name: "r", text: "x", indexing_technique: "economy",
      process_rule: { mode: "custom", rules: { pre_processing_rules: [{ id: "remove_extra_spaces", enabled: true }, { id: "remove_extra_spaces", enabled: false }], segmentation: { max_tokens: 10 } } },
    });
    expect(res.statusCode).toBe(200);
    const rule = await t.prisma.datasetProcessRule.findUniqueOrThrow({ where: { id: res.json().document.dataset_process_rule_id } });
    expect(rule.mode).toBe("custom");
    // Duplicates collapse (last wins); range checks are left to the worker.
    expect(rule.rules).toEqual({
      pre_processing_rules: [{ id: "remove_extra_spaces", enabled: false }],
      segmentation: { separator: "\n", max_tokens: 10, chunk_overlap: 0 },
      parent_mode: null,
      subchunk_segmentation: null,
    });
  });

  const err = (status: number, code: string, message?: string) => ({ status, code, message });
  it.each([
    ["missing name", { text: "x", indexing_technique: "economy" }, err(400, "invalid_param")],
    ["bad doc_form", { name: "n", text: "x", indexing_technique: "economy", doc_form: "nope" }, err(400, "invalid_param")],
    ["no technique", { name: "n", text: "x" }, err(400, "invalid_param", "indexing_technique is required.")],
    ["rules missing", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "custom" } }, err(400, "invalid_param", "Process rule rules is required")],
    ["pre_processing_rules missing", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "custom", rules: { segmentation: { max_tokens: 100 } } } }, err(400, "invalid_param", "Process rule pre_processing_rules is required")],
    ["segmentation missing", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "custom", rules: { pre_processing_rules: [] } } }, err(400, "invalid_param", "Process rule segmentation is required")],
    ["empty separator", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "custom", rules: { pre_processing_rules: [], segmentation: { separator: "", max_tokens: 100 } } } }, err(400, "invalid_param", "Process rule segmentation separator is required")],
    ["max_tokens 0", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "custom", rules: { pre_processing_rules: [], segmentation: { max_tokens: 0 } } } }, err(400, "invalid_param", "Process rule segmentation max_tokens is required")],
    ["bad mode", { name: "n", text: "x", indexing_technique: "economy", process_rule: { mode: "magic" } }, err(400, "invalid_param")],
  ])("400 for %s", async (_n, body, e) => {
    const c = await setup();
    const res = await createText(c, body);
    expect(res.statusCode).toBe(e.status);
    expect(res.json().code).toBe(e.code);
    if (e.message) expect(res.json().message).toBe(e.message);
    if (_n === "bad doc_form") expect(res.json().message).toContain("Invalid doc_form.");
  });

  it("hierarchical full-doc needs no max_tokens; doc_form must match the dataset's", async () => {
    const c = await setup();
    const ok = await createText(c, {
      name: "p", text: "x", indexing_technique: "economy", doc_form: "hierarchical_model",
      process_rule: { mode: "hierarchical", rules: { pre_processing_rules: [], parent_mode: "full-doc", segmentation: { max_tokens: 0 }, subchunk_segmentation: { max_tokens: 100 } } },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().document.doc_form).toBe("hierarchical_model");
    // Omitting doc_form defaults to text_model → the lock error (pitfall §15.7).
    const bad = await createText(c, { name: "q", text: "y" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ code: "invalid_param", message: "doc_form is different from the dataset doc_form.", status: 400 });
  });
});

describe("POST /document/create-by-file (§5.4)", () => {
  const rule = { mode: "automatic" };
  it("creates from a multipart file; name = filename; created_by = dataset creator", async () => {
    const c = await setup({ created_by: randomUUID() });
    const mp = multipart([
      { name: "data", value: JSON.stringify({ indexing_technique: "economy", process_rule: rule }) },
      { name: "file", filename: "notes.md", type: "application/octet-stream", data: "# Title\n\nBody" },
    ]);
    const res = await t.app.inject({ method: "POST", url: `${base(c)}/document/create-by-file`, headers: { ...c.h, ...mp.headers }, payload: mp.payload });
    expect(res.statusCode).toBe(200);
    const d = res.json().document;
    const ds = await t.prisma.dataset.findUniqueOrThrow({ where: { id: c.datasetId } });
    expect(d.name).toBe("notes.md");
    expect(d.created_by).toBe(ds.created_by);
    expect(d.data_source_detail_dict.upload_file).toMatchObject({ name: "notes.md", extension: "md", mime_type: "text/markdown", size: 13 });
    const alias = multipart([{ name: "file", filename: "b.txt", data: "b" }, { name: "data", value: "{}" }]);
    const r2 = await t.app.inject({ method: "POST", url: `${base(c)}/document/create_by_file`, headers: { ...c.h, ...alias.headers }, payload: alias.payload });
    expect(r2.statusCode).toBe(200);
    expect(r2.json().document.position).toBe(2);
  });

  it.each([
    ["no file part", [{ name: "data", value: '{"indexing_technique":"economy","process_rule":{"mode":"automatic"}}' }], 400, "no_file_uploaded", "Please upload your file."],
    ["two file parts", [{ name: "data", value: '{"indexing_technique":"economy"}' }, { name: "file", filename: "a.txt", data: "a" }, { name: "file", filename: "b.txt", data: "b" }], 400, "too_many_files", "Only one file is allowed."],
    ["bad data JSON", [{ name: "data", value: "{nope" }, { name: "file", filename: "a.txt", data: "a" }], 400, "invalid_param", "Expecting value: line 1 column 1 (char 0)"],
    ["no technique", [{ name: "file", filename: "a.txt", data: "a" }], 400, "invalid_param", "indexing_technique is required."],
    ["extension not allowed", [{ name: "data", value: '{"indexing_technique":"economy","process_rule":{"mode":"automatic"}}' }, { name: "file", filename: "a.exe", data: "a" }], 400, "invalid_param", ""],
    ["no rule anywhere", [{ name: "data", value: '{"indexing_technique":"economy"}' }, { name: "file", filename: "a.txt", data: "a" }], 400, "invalid_param", "process_rule is required."],
  ] as const)("%s", async (_n, parts, status, code, message) => {
    const c = await setup();
    const mp = multipart(parts as never);
    const res = await t.app.inject({ method: "POST", url: `${base(c)}/document/create-by-file`, headers: { ...c.h, ...mp.headers }, payload: mp.payload });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toEqual({ code, message, status });
  });

  it("external datasets are refused", async () => {
    const c = await setup({ provider: "external" });
    const mp = multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const res = await t.app.inject({ method: "POST", url: `${base(c)}/document/create-by-file`, headers: { ...c.h, ...mp.headers }, payload: mp.payload });
    expect(res.json()).toEqual({ code: "invalid_param", message: "External datasets are not supported.", status: 400 });
  });
});

describe("documents list, detail, status, delete", () => {
  it("lists newest first with Dify's pagination quirks (§5.9, §1.4)", async () => {
    const c = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createText(c, { name: `Doc ${i}`, text: "t", indexing_technique: "economy" })).json().document.id);
    const page = (q: string) => t.app.inject({ method: "GET", url: `${base(c)}/documents${q}`, headers: c.h });
    const all = (await page("")).json();
    expect(Object.keys(all)).toEqual(["data", "has_more", "limit", "total", "page"]);
    expect(all.data.map((d: { id: string }) => d.id)).toEqual([...ids].reverse());
    expect(all).toMatchObject({ has_more: false, limit: 20, total: 3, page: 1 });
    expect(Object.keys(all.data[0])).toEqual(DOC_KEYS);
    // has_more = len(data) == requested limit, even on the last page.
    expect((await page("?limit=3")).json()).toMatchObject({ has_more: true, limit: 3, total: 3 });
    expect((await page("?limit=2&page=2")).json()).toMatchObject({ has_more: false, limit: 2, page: 2, total: 3 });
    // The requested limit is echoed uncapped; out-of-range pages are empty.
    expect((await page("?limit=500")).json()).toMatchObject({ has_more: false, limit: 500 });
    expect((await page("?page=9")).json().data).toEqual([]);
    // keyword: case-sensitive substring.
    expect((await page("?keyword=Doc%201")).json().total).toBe(1);
    expect((await page("?keyword=doc")).json().total).toBe(0);
    // status filters (aliases, case-insensitive); unknown = no filter.
    await complete(c, ids[0]!);
    expect((await page("?status=Available")).json().data.map((d: { id: string }) => d.id)).toEqual([ids[0]]);
    expect((await page("?status=enabled")).json().total).toBe(1);
    expect((await page("?status=queuing")).json().total).toBe(2);
    expect((await page("?status=whatever")).json().total).toBe(3);
    const completed = (await page("?status=available")).json().data[0];
    expect(completed).toMatchObject({ display_status: "available", hit_count: 3, word_count: 18, tokens: 6 });
  });

  it("detail for metadata=all|only|without; invalid value; 404 (§5.7)", async () => {
    const c = await setup({ built_in_field_enabled: true });
    const d = (await createText(c, { name: "det", text: "abc", indexing_technique: "economy" })).json().document;
    await complete(c, d.id, 2);
    const get = (q: string, id = d.id) => t.app.inject({ method: "GET", url: `${base(c)}/documents/${id}${q}`, headers: c.h });
    const all = (await get("")).json();
    expect(Object.keys(all)).toEqual([
      "id", "position", "data_source_type", "data_source_info", "dataset_process_rule_id", "dataset_process_rule", "document_process_rule",
      "name", "created_from", "created_by", "created_at", "tokens", "indexing_status", "completed_at", "updated_at", "indexing_latency",
      "error", "enabled", "disabled_at", "disabled_by", "archived", "doc_type", "doc_metadata", "segment_count", "average_segment_length",
      "hit_count", "display_status", "doc_form", "doc_language", "summary_index_status", "need_summary",
    ]);
    expect(all.data_source_info.upload_file.name).toBe("det");
    expect(all).toMatchObject({ segment_count: 2, average_segment_length: 9, indexing_latency: 1.5, doc_language: "English", display_status: "available" });
    expect(all.dataset_process_rule.mode).toBe("automatic");
    expect(Object.keys(all.document_process_rule)).toEqual(["id", "dataset_id", "mode", "rules"]);
    expect(all.doc_metadata.map((m: { name: string }) => m.name)).toEqual(["document_name", "uploader", "upload_date", "last_update_date", "source"]);
    expect(all.doc_metadata[4]).toEqual({ id: "built-in", name: "source", type: "string", value: "file_upload" });
    expect(Object.keys((await get("?metadata=only")).json())).toEqual(["id", "doc_type", "doc_metadata"]);
    const without = (await get("?metadata=without")).json();
    expect(without).not.toHaveProperty("doc_type");
    expect(without).not.toHaveProperty("doc_metadata");
    const bad = await get("?metadata=some");
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ code: "invalid_metadata", message: "Invalid metadata value: some", status: 400 });
    const missing = await get("", randomUUID());
    expect(missing.json()).toEqual({ code: "not_found", message: "Document not found.", status: 404 });
    // Non-UUID ids do not match the route at all.
    expect((await get("", "not-a-uuid")).json().message).toMatch(/^The requested URL was not found/);
  });

  it("indexing-status by batch (§5.11)", async () => {
    const c = await setup();
    const r = (await createText(c, { name: "s", text: "abc", indexing_technique: "economy" })).json();
    await complete(c, r.document.id, 3);
    const res = await t.app.inject({ method: "GET", url: `${base(c)}/documents/${r.batch}/indexing-status`, headers: c.h });
    expect(res.statusCode).toBe(200);
    const item = res.json().data[0];
    expect(Object.keys(item)).toEqual([
      "id", "indexing_status", "processing_started_at", "parsing_completed_at", "cleaning_completed_at", "splitting_completed_at",
      "completed_at", "paused_at", "error", "stopped_at", "completed_segments", "total_segments",
    ]);
    expect(item).toMatchObject({ id: r.document.id, indexing_status: "completed", completed_segments: 3, total_segments: 3 });
    const none = await t.app.inject({ method: "GET", url: `${base(c)}/documents/20990101000000123456/indexing-status`, headers: c.h });
    expect(none.json()).toEqual({ code: "not_found", message: "Documents not found.", status: 404 });
  });

  it("status actions flip flags and segment side effects (§5.12, §11.9)", async () => {
    const c = await setup();
    const a = (await createText(c, { name: "a", text: "a", indexing_technique: "economy" })).json().document.id;
    const b = (await createText(c, { name: "b", text: "b" })).json().document.id;
    await complete(c, a);
    const act = (action: string, payload: unknown) =>
      t.app.inject({ method: "PATCH", url: `${base(c)}/documents/status/${action}`, headers: c.h, payload: payload as object });
    // Empty ids: success without validating the action.
    expect((await act("explode", {})).json()).toEqual({ result: "success" });
    const invalid = await act("explode", { document_ids: [a] });
    expect(invalid.json()).toEqual({
      code: "invalid_action", message: "Invalid action: explode. Must be one of ['enable', 'disable', 'archive', 'un_archive']", status: 400,
    });
    const notDone = await act("disable", { document_ids: [a, b] });
    expect(notDone.json()).toEqual({ code: "invalid_action", message: "Document: b is not completed.", status: 400 });
    // All-or-nothing: `a` was not disabled either.
    expect((await t.prisma.document.findUniqueOrThrow({ where: { id: a } })).enabled).toBe(true);

    expect((await act("disable", { document_ids: [a, randomUUID()] })).json()).toEqual({ result: "success" });
    let doc = await t.prisma.document.findUniqueOrThrow({ where: { id: a } });
    expect(doc.enabled).toBe(false);
    expect(doc.disabled_by).toBe(workspaceOwnerId(c.tenantId));
    expect(await t.prisma.documentSegment.count({ where: { document_id: a, enabled: true } })).toBe(0);
    await act("enable", { document_ids: [a] });
    expect(await t.prisma.documentSegment.count({ where: { document_id: a, enabled: false } })).toBe(0);
    await act("archive", { document_ids: [a] });
    doc = await t.prisma.document.findUniqueOrThrow({ where: { id: a } });
    expect(doc).toMatchObject({ archived: true, enabled: true });
    expect(await t.prisma.documentSegment.count({ where: { document_id: a, enabled: true } })).toBe(0);
    const list = (await t.app.inject({ method: "GET", url: `${base(c)}/documents?status=archived`, headers: c.h })).json();
    expect(list.data[0]).toMatchObject({ id: a, display_status: "archived" });
    // The docs' trailing /batch is accepted too.
    await t.app.inject({ method: "PATCH", url: `${base(c)}/documents/status/un_archive/batch`, headers: c.h, payload: { document_ids: [a] } });
    expect((await t.prisma.document.findUniqueOrThrow({ where: { id: a } })).archived).toBe(false);
    expect(await t.prisma.documentSegment.count({ where: { document_id: a, enabled: false } })).toBe(0);
  });

  it("delete: 204, archived 403, unknown 404 (§5.8)", async () => {
    const c = await setup();
    const a = (await createText(c, { name: "a", text: "a", indexing_technique: "economy" })).json().document;
    const b = (await createText(c, { name: "b", text: "b" })).json().document;
    await complete(c, a.id);
    const del = (id: string) => t.app.inject({ method: "DELETE", url: `${base(c)}/documents/${id}`, headers: c.h });
    const ok = await del(a.id);
    expect(ok.statusCode).toBe(204);
    expect(ok.body).toBe("");
    expect(await t.prisma.documentSegment.count({ where: { document_id: a.id } })).toBe(0);
    expect(await t.prisma.uploadFile.findUnique({ where: { id: a.data_source_info.upload_file_id } })).toBeNull();
    expect((await del(a.id)).json()).toEqual({ code: "not_found", message: "Document Not Exists.", status: 404 });
    await t.prisma.document.update({ where: { id: b.id }, data: { archived: true } });
    expect((await del(b.id)).json()).toEqual({ code: "archived_document_immutable", message: "The archived document is not editable.", status: 403 });
  });

  it("upload-file info (§5.10)", async () => {
    const c = await setup();
    const d = (await createText(c, { name: "f", text: "hello", indexing_technique: "economy" })).json().document;
    const res = await t.app.inject({ method: "GET", url: `${base(c)}/documents/${d.id}/upload-file`, headers: c.h });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["id", "name", "size", "extension", "url", "download_url", "mime_type", "created_by", "created_at"]);
    expect(body.url).toMatch(new RegExp(`/files/${body.id}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]{32}&sign=`));
    expect(body.download_url).toBe(`${body.url}&as_attachment=true`);
    const missing = await t.app.inject({ method: "GET", url: `${base(c)}/documents/${randomUUID()}/upload-file`, headers: c.h });
    expect(missing.json()).toEqual({ code: "not_found", message: "Document not found.", status: 404 });
  });
});

describe("update-by-text / update-by-file (§5.6)", () => {
  it("re-queues an available document, keeps its batch, marks segments re_segment", async () => {
    const c = await setup();
    const created = (await createText(c, { name: "u", text: "old", indexing_technique: "economy" })).json();
    const id = created.document.id;
    const upd = (body: Record<string, unknown>, path = "update-by-text") =>
      t.app.inject({ method: "POST", url: `${base(c)}/documents/${id}/${path}`, headers: c.h, payload: body });
    expect((await upd({ name: "u", text: "new" })).json()).toEqual({ code: "invalid_param", message: "Document is not available", status: 400 });
    await complete(c, id, 2);
    expect((await upd({ name: "renamed" })).json()).toEqual({ code: "invalid_param", message: "Data source or Process rule is required", status: 400 });
    const noName = await upd({ text: "x" });
    expect(noName.json().code).toBe("invalid_param");
    expect(noName.json().message).toContain("name is required when text is provided");
    const res = await upd({ name: "u2", text: "new text" }, "update_by_text");
    expect(res.statusCode).toBe(200);
    expect(res.json().batch).toBe(created.batch);
    expect(res.json().document).toMatchObject({ id, name: "u2", indexing_status: "waiting", display_status: "queuing" });
    expect(await t.prisma.documentSegment.count({ where: { document_id: id, status: "re_segment" } })).toBe(2);
    const st = (await t.app.inject({ method: "GET", url: `${base(c)}/documents/${created.batch}/indexing-status`, headers: c.h })).json();
    expect(st.data[0]).toMatchObject({ completed_segments: 0, total_segments: 0, completed_at: null });
    const missing = await t.app.inject({ method: "POST", url: `${base(c)}/documents/${randomUUID()}/update-by-text`, headers: c.h, payload: { name: "a", text: "b" } });
    expect(missing.json()).toEqual({ code: "not_found", message: "Document not found", status: 404 });
  });

  it("PATCH /documents/{id} updates by file; wrong types are 415 here", async () => {
    const c = await setup();
    const id = (await createText(c, { name: "pf", text: "old", indexing_technique: "economy" })).json().document.id;
    await complete(c, id);
    const send = (parts: Parameters<typeof multipart>[0], method: "PATCH" | "POST" = "PATCH", url = `${base(c)}/documents/${id}`) => {
      const mp = multipart(parts);
      return t.app.inject({ method, url, headers: { ...c.h, ...mp.headers }, payload: mp.payload });
    };
    const bad = await send([{ name: "file", filename: "x.exe", data: "x" }]);
    expect(bad.json()).toEqual({ code: "unsupported_file_type", message: "File type not allowed.", status: 415 });
    const ok = await send([{ name: "file", filename: "new.txt", data: "fresh" }]);
    expect(ok.statusCode).toBe(200);
    expect(ok.json().document).toMatchObject({ id, name: "new.txt", indexing_status: "waiting" });
    await complete(c, id);
    const alias = await send([{ name: "data", value: JSON.stringify({ process_rule: { mode: "automatic" } }) }], "POST", `${base(c)}/documents/${id}/update_by_file`);
    expect(alias.statusCode).toBe(200);
  });
});

describe("auth and scope", () => {
  let c: Ctx;
  let docId: string;
  beforeAll(async () => {
    c = await setup();
    docId = randomUUID();
  });
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "POST", url: `/v1/datasets/${randomUUID()}/document/create-by-text`, payload: { name: "a", text: "b" } },
    { method: "GET", url: `/v1/datasets/${randomUUID()}/documents` },
    { method: "PATCH", url: `/v1/datasets/${randomUUID()}/documents/status/enable`, payload: {} },
    { method: "GET", url: `/v1/datasets/${randomUUID()}/documents/123/indexing-status` },
  ]);

  it("a key scoped to other datasets, another tenant's key, and disabled API access", async () => {
    const other = await setup();
    const sibling = await t.prisma.dataset.create({ data: { tenant_id: c.tenantId, name: `sib-${randomUUID().slice(0, 8)}` } });
    const scopedKey = await createDatasetKey(t, c.tenantId, [sibling.id]);
    for (const key of [scopedKey, other.key]) {
      const res = await t.app.inject({ method: "GET", url: `${base(c)}/documents/${docId}`, headers: { authorization: `Bearer ${key}` } });
      expect(res.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
    }
    await t.prisma.dataset.update({ where: { id: c.datasetId }, data: { enable_api: false } });
    const res = await t.app.inject({ method: "GET", url: `${base(c)}/documents`, headers: c.h });
    expect(res.json()).toMatchObject({ code: "forbidden", message: "Dataset api access is not enabled.", status: 403 });
  });
});

describe("through the real indexing worker (§11.1)", () => {
  let w: TestApp;
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI({ embeddingDimensions: 8 });
    w = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  });
  afterAll(async () => {
    await w?.close();
    await fake?.close();
  });

  async function waitDone(url: string, h: Record<string, string>) {
    for (let i = 0; i < 100; i++) {
      const res = (await w.app.inject({ method: "GET", url, headers: h })).json();
      const st = res.data?.[0]?.indexing_status;
      if (st === "completed" || st === "error") return res.data[0];
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("indexing did not finish");
  }

  it("create-by-text → completed with segments; add chunks; update-by-text re-indexes under the same batch", async () => {
    const tenantId = await createTenant(w);
    const ds = await w.prisma.dataset.create({ data: { tenant_id: tenantId, name: `w-${randomUUID().slice(0, 8)}` } });
    const h = { authorization: `Bearer ${await createDatasetKey(w, tenantId)}` };
    const b = `/v1/datasets/${ds.id}`;
    const created = await w.app.inject({
      method: "POST", url: `${b}/document/create-by-text`, headers: h,
      payload: {
        name: "w", text: "First paragraph.\n\nSecond paragraph.", indexing_technique: "high_quality",
        embedding_model: "text-embedding-3-small", embedding_model_provider: "openai",
        process_rule: { mode: "custom", rules: { pre_processing_rules: [], segmentation: { separator: "\n\n", max_tokens: 100 } } },
      },
    });
    expect(created.statusCode).toBe(200);
    const { document, batch } = created.json();
    const status = await waitDone(`${b}/documents/${batch}/indexing-status`, h);
    expect(status).toMatchObject({ indexing_status: "completed", completed_segments: 2, total_segments: 2, error: null });
    const segs = (await w.app.inject({ method: "GET", url: `${b}/documents/${document.id}/segments`, headers: h })).json();
    expect(segs.data.map((s: { content: string }) => s.content)).toEqual(["First paragraph.", "Second paragraph."]);
    const detail = (await w.app.inject({ method: "GET", url: `${b}/documents/${document.id}`, headers: h })).json();
    expect(detail).toMatchObject({ display_status: "available", segment_count: 2 });
    expect(detail.tokens).toBeGreaterThan(0);

    const added = await w.app.inject({ method: "POST", url: `${b}/documents/${document.id}/segments`, headers: h, payload: { segments: [{ content: "Third." }] } });
    expect(added.json().data[0]).toMatchObject({ position: 3, status: "completed" });

    const upd = await w.app.inject({ method: "POST", url: `${b}/documents/${document.id}/update-by-text`, headers: h, payload: { name: "w", text: "Only one now." } });
    expect(upd.json().batch).toBe(batch);
    const again = await waitDone(`${b}/documents/${batch}/indexing-status`, h);
    expect(again).toMatchObject({ indexing_status: "completed", total_segments: 1 });
  });
});

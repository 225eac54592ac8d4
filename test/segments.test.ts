// Segments and child chunks (datasets spec §6), indexed synchronously through the real index
// module against the fake OpenAI server (embeddings are deterministic).
import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workspaceOwnerId } from "../src/modules/tenants/owner.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { authCases } from "./support/auth-cases.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";

let t: TestApp;
let fake: FakeOpenAI;
let appKey: string;

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: 8 });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" });
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

interface Ctx {
  tenantId: string;
  datasetId: string;
  documentId: string;
  h: Record<string, string>;
  url: string;
}

const hash = (s: string) => createHash("sha256").update(`${s}None`).digest("hex");

async function setup(opts: { technique?: "high_quality" | "economy"; docForm?: string; status?: string; enabled?: boolean; rules?: object; embedding?: boolean } = {}): Promise<Ctx> {
  const tenantId = await createTenant(t);
  const technique = opts.technique ?? "high_quality";
  const ds = await t.prisma.dataset.create({
    data: {
      tenant_id: tenantId, name: `ds-${randomUUID().slice(0, 8)}`, indexing_technique: technique,
      ...(technique === "high_quality" && opts.embedding !== false ? { embedding_model: "text-embedding-3-small", embedding_model_provider: "langgenius/openai/openai" } : {}),
    },
  });
  const rule = await t.prisma.datasetProcessRule.create({
    data: { dataset_id: ds.id, mode: opts.rules ? "hierarchical" : "automatic", rules: (opts.rules ?? {}) as object },
  });
  const doc = await t.prisma.document.create({
    data: {
      tenant_id: tenantId, dataset_id: ds.id, position: 1, data_source_type: "upload_file", batch: "20250101000000123456", name: "doc",
      indexing_status: opts.status ?? "completed", completed_at: new Date(), enabled: opts.enabled ?? true, doc_form: opts.docForm ?? "text_model",
      dataset_process_rule_id: rule.id,
    },
  });
  const key = await createDatasetKey(t, tenantId);
  return { tenantId, datasetId: ds.id, documentId: doc.id, h: { authorization: `Bearer ${key}` }, url: `/v1/datasets/${ds.id}/documents/${doc.id}/segments` };
}

const add = (c: Ctx, segments: unknown) => t.app.inject({ method: "POST", url: c.url, headers: c.h, payload: { segments } as object });

const SEGMENT_KEYS = [
  "id", "position", "document_id", "content", "sign_content", "answer", "word_count", "tokens", "keywords", "index_node_id",
  "index_node_hash", "hit_count", "enabled", "disabled_at", "disabled_by", "status", "created_by", "created_at", "updated_at",
  "updated_by", "indexing_at", "completed_at", "error", "stopped_at", "child_chunks", "attachments", "summary",
];

describe("POST .../segments (§6.1)", () => {
  it("adds verbatim chunks, continues positions, embeds them and grows the document's word_count", async () => {
    const c = await setup();
    const res = await add(c, [{ content: "  Alpha chunk 🎉 " }, { content: "Beta chunk", keywords: ["b"] }]);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["data", "doc_form"]);
    expect(body.doc_form).toBe("text_model");
    const [a, b] = body.data;
    expect(Object.keys(a)).toEqual(SEGMENT_KEYS);
    expect(a).toMatchObject({
      position: 1, document_id: c.documentId, content: "  Alpha chunk 🎉 ", sign_content: "  Alpha chunk 🎉 ", answer: null,
      // Code points, not UTF-16 units (§11.4).
      word_count: 16, keywords: [], hit_count: 0, enabled: true, status: "completed", created_by: workspaceOwnerId(c.tenantId),
      error: null, child_chunks: [], attachments: [], summary: null, index_node_hash: hash("  Alpha chunk 🎉 "),
    });
    expect(a.tokens).toBeGreaterThan(0);
    expect(b).toMatchObject({ position: 2, keywords: ["b"] });
    const vectors = await t.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM embeddings WHERE document_id = ${c.documentId}::uuid`;
    expect(Number(vectors[0]!.n)).toBe(2);
    expect((await t.prisma.document.findUniqueOrThrow({ where: { id: c.documentId } })).word_count).toBe(26);
    const more = (await add(c, [{ content: "Gamma" }])).json();
    expect(more.data[0].position).toBe(3);
  });

  it("404 for an incomplete or disabled document, and for a foreign document", async () => {
    const waiting = await setup({ status: "indexing" });
    expect((await add(waiting, [{ content: "x" }])).json()).toEqual({ code: "not_found", message: "Document is not completed.", status: 404 });
    const disabled = await setup({ enabled: false });
    expect((await add(disabled, [{ content: "x" }])).json()).toEqual({ code: "not_found", message: "Document is disabled.", status: 404 });
    const other = await setup();
    const res = await t.app.inject({ method: "POST", url: `/v1/datasets/${waiting.datasetId}/documents/${other.documentId}/segments`, headers: waiting.h, payload: { segments: [{ content: "x" }] } });
    expect(res.json()).toEqual({ code: "not_found", message: "Document not found.", status: 404 });
  });

  it("malformed payloads get the bare {error} body", async () => {
    const c = await setup();
    for (const segments of [[], [{ content: "   " }], [{}]]) {
      const res = await add(c, segments);
      expect(res.statusCode).toBe(400);
      expect(Object.keys(res.json())).toEqual(["error"]);
    }
    const none = await t.app.inject({ method: "POST", url: c.url, headers: c.h, payload: {} });
    expect(Object.keys(none.json())).toEqual(["error"]);
  });

  it("QA documents need an answer; word_count adds it", async () => {
    const c = await setup({ docForm: "qa_model" });
    expect((await add(c, [{ content: "Q?" }])).json()).toEqual({ code: "invalid_param", message: "Answer is required", status: 400 });
    expect((await add(c, [{ content: "Q?", answer: "  " }])).json()).toEqual({ code: "invalid_param", message: "Answer is empty", status: 400 });
    const ok = (await add(c, [{ content: "Q?", answer: "Yes." }])).json();
    expect(ok.data[0]).toMatchObject({ content: "Q?", answer: "Yes.", word_count: 6 });
    expect(ok.doc_form).toBe("qa_model");
  });

  it("a request over DATASET_MAX_SEGMENTS_PER_REQUEST is refused", async () => {
    const t2 = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test", DATASET_MAX_SEGMENTS_PER_REQUEST: 1 });
    try {
      const c = await setup();
      const res = await t2.app.inject({ method: "POST", url: c.url, headers: c.h, payload: { segments: [{ content: "a" }, { content: "b" }] } });
      expect(res.json()).toEqual({ code: "invalid_param", message: "Exceeded maximum segments limit of 1.", status: 400 });
    } finally {
      await t2.close();
    }
  });

  it("a high_quality dataset without an embedding model: provider_not_initialize", async () => {
    const c = await setup({ embedding: false });
    const res = await add(c, [{ content: "x" }]);
    expect(res.json()).toEqual({
      code: "provider_not_initialize",
      message: "No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.",
      status: 400,
    });
  });

  it("hierarchical documents get child chunks split from the new content", async () => {
    const c = await setup({
      docForm: "hierarchical_model",
      rules: { pre_processing_rules: [], segmentation: { separator: "\n\n", max_tokens: 500 }, parent_mode: "paragraph", subchunk_segmentation: { separator: "\n", max_tokens: 100 } },
    });
    const res = (await add(c, [{ content: "first line\nsecond line" }])).json();
    const seg = res.data[0];
    expect(seg.child_chunks.map((x: { content: string }) => x.content)).toEqual(["first line", "second line"]);
    expect(Object.keys(seg.child_chunks[0])).toEqual(["id", "segment_id", "content", "position", "word_count", "type", "created_at", "updated_at"]);
    expect(seg.child_chunks[0]).toMatchObject({ position: 1, type: "automatic", word_count: 10 });
  });
});

describe("GET .../segments (§6.2, §6.3)", () => {
  it("paginates by position with has_more = len(data) == limit, filters status and keyword", async () => {
    const c = await setup({ technique: "economy" });
    await add(c, [{ content: "one 100%" }, { content: "Two" }, { content: "three" }]);
    const list = (q: string) => t.app.inject({ method: "GET", url: `${c.url}${q}`, headers: c.h });
    const all = (await list("")).json();
    expect(Object.keys(all)).toEqual(["data", "doc_form", "total", "has_more", "limit", "page"]);
    expect(all.data.map((s: { content: string }) => s.content)).toEqual(["one 100%", "Two", "three"]);
    expect((await list("?limit=3")).json()).toMatchObject({ has_more: true, limit: 3, total: 3 });
    expect((await list("?limit=2&page=2")).json()).toMatchObject({ has_more: false, page: 2 });
    expect((await list("?limit=500")).json()).toMatchObject({ limit: 500, has_more: false });
    // keyword: case-insensitive and literal (the % is escaped).
    expect((await list("?keyword=two")).json().total).toBe(1);
    expect((await list("?keyword=0%25")).json().data.map((s: { content: string }) => s.content)).toEqual(["one 100%"]);
    expect((await list("?keyword=o_e")).json().total).toBe(0);
    await t.prisma.documentSegment.updateMany({ where: { document_id: c.documentId, content: "Two" }, data: { status: "error" } });
    expect((await list("?status=error")).json().total).toBe(1);
    expect((await list("?status=error&status=completed")).json().total).toBe(3);
    const bad = await list("?page=0");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe("invalid_param");

    const one = await t.app.inject({ method: "GET", url: `${c.url}/${all.data[1].id}`, headers: c.h });
    expect(Object.keys(one.json())).toEqual(["data", "doc_form"]);
    expect(one.json().data.content).toBe("Two");
    const missing = await t.app.inject({ method: "GET", url: `${c.url}/${randomUUID()}`, headers: c.h });
    expect(missing.json()).toEqual({ code: "not_found", message: "Segment not found.", status: 404 });
  });

  it("GET one on a high_quality dataset without a model is invalid_param (dataset check)", async () => {
    const c = await setup({ embedding: false });
    const res = await t.app.inject({ method: "GET", url: `${c.url}/${randomUUID()}`, headers: c.h });
    expect(res.json()).toEqual({ code: "invalid_param", message: "No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.", status: 400 });
  });
});

describe("POST .../segments/{id} (§6.4) and DELETE (§6.5)", () => {
  it("disable shortcut, disabled refusal, content edit under the same node id, re-enable", async () => {
    const c = await setup();
    const seg = (await add(c, [{ content: "original" }])).json().data[0];
    const upd = (segment: unknown) => t.app.inject({ method: "POST", url: `${c.url}/${seg.id}`, headers: c.h, payload: { segment } as object });
    expect((await t.app.inject({ method: "POST", url: `${c.url}/${seg.id}`, headers: c.h, payload: {} })).json().code).toBe("invalid_param");
    // enabled:false returns at once; other fields are ignored.
    const off = (await upd({ enabled: false, content: "ignored" })).json().data;
    expect(off).toMatchObject({ enabled: false, content: "original", disabled_by: workspaceOwnerId(c.tenantId) });
    expect(off.disabled_at).toBeTypeOf("number");
    expect((await upd({ content: "new" })).json()).toEqual({ code: "invalid_param", message: "Can't update disabled segment", status: 400 });
    const edited = (await upd({ content: "changed text", enabled: true })).json().data;
    expect(edited).toMatchObject({
      content: "changed text", enabled: true, disabled_at: null, status: "completed", word_count: 12,
      index_node_id: seg.index_node_id, index_node_hash: hash("changed text"), updated_by: workspaceOwnerId(c.tenantId),
    });
    expect((await t.prisma.document.findUniqueOrThrow({ where: { id: c.documentId } })).word_count).toBe(12);
    const vec = await t.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM embeddings WHERE index_node_id = ${seg.index_node_id}`;
    expect(Number(vec[0]!.n)).toBe(1);

    const del = await t.app.inject({ method: "DELETE", url: `${c.url}/${seg.id}`, headers: c.h });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe("");
    expect((await t.prisma.document.findUniqueOrThrow({ where: { id: c.documentId } })).word_count).toBe(0);
    const gone = await t.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM embeddings WHERE document_id = ${c.documentId}::uuid`;
    expect(Number(gone[0]!.n)).toBe(0);
    expect((await t.app.inject({ method: "DELETE", url: `${c.url}/${seg.id}`, headers: c.h })).json().message).toBe("Segment not found.");
  });

  it("QA: unchanged content takes the request's answer; changed content without answer is saved as error (200)", async () => {
    const c = await setup({ docForm: "qa_model" });
    const seg = (await add(c, [{ content: "Q", answer: "A1" }])).json().data[0];
    const upd = (segment: unknown) => t.app.inject({ method: "POST", url: `${c.url}/${seg.id}`, headers: c.h, payload: { segment } as object });
    expect((await upd({ answer: "longer" })).json().data).toMatchObject({ answer: "longer", word_count: 7 });
    const failed = await upd({ content: "Q2" });
    expect(failed.statusCode).toBe(200);
    expect(failed.json().data).toMatchObject({ status: "error", enabled: false });
    expect(failed.json().data.error).toContain("NoneType");
  });
});

describe("child chunks (§6.6)", () => {
  it("create, list, patch (hash kept), delete, 404s", async () => {
    const c = await setup({
      docForm: "hierarchical_model",
      rules: { pre_processing_rules: [], segmentation: { separator: "\n\n", max_tokens: 500 }, parent_mode: "paragraph", subchunk_segmentation: { separator: "\n", max_tokens: 100 } },
    });
    const seg = (await add(c, [{ content: "p1\np2" }])).json().data[0];
    const base = `${c.url}/${seg.id}/child_chunks`;
    const created = await t.app.inject({ method: "POST", url: base, headers: c.h, payload: { content: "custom child" } });
    expect(created.statusCode).toBe(200);
    const child = created.json().data;
    expect(Object.keys(created.json())).toEqual(["data"]);
    expect(child).toMatchObject({ segment_id: seg.id, content: "custom child", position: 3, word_count: 12, type: "customized" });
    const list = (q: string) => t.app.inject({ method: "GET", url: `${base}${q}`, headers: c.h });
    const page = (await list("?limit=2")).json();
    expect(Object.keys(page)).toEqual(["data", "total", "total_pages", "page", "limit"]);
    expect(page).toMatchObject({ total: 3, total_pages: 2, page: 1, limit: 2 });
    expect((await list("?limit=500")).json().limit).toBe(100);
    expect((await list("?keyword=CUSTOM")).json().total).toBe(1);
    expect((await list("?limit=0")).json().code).toBe("invalid_param");

    const row = await t.prisma.childChunk.findUniqueOrThrow({ where: { id: child.id } });
    const patched = await t.app.inject({ method: "PATCH", url: `${base}/${child.id}`, headers: c.h, payload: { content: "edited" } });
    expect(patched.json().data).toMatchObject({ content: "edited", word_count: 6, type: "customized" });
    expect((await t.prisma.childChunk.findUniqueOrThrow({ where: { id: child.id } })).index_node_hash).toBe(row.index_node_hash);
    const vec = await t.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM embeddings WHERE child_chunk_id = ${child.id}::uuid`;
    expect(Number(vec[0]!.n)).toBe(1);

    const del = await t.app.inject({ method: "DELETE", url: `${base}/${child.id}`, headers: c.h });
    expect(del.statusCode).toBe(204);
    const after = await t.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM embeddings WHERE child_chunk_id = ${child.id}::uuid`;
    expect(Number(after[0]!.n)).toBe(0);
    const missing = await t.app.inject({ method: "PATCH", url: `${base}/${child.id}`, headers: c.h, payload: { content: "x" } });
    expect(missing.json()).toEqual({ code: "not_found", message: "Child chunk not found.", status: 404 });
    const noContent = await t.app.inject({ method: "POST", url: base, headers: c.h, payload: {} });
    expect(noContent.json().code).toBe("invalid_param");
  });
});

describe("auth and scope", () => {
  const ds = randomUUID();
  const doc = randomUUID();
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "GET", url: `/v1/datasets/${ds}/documents/${doc}/segments` },
    { method: "POST", url: `/v1/datasets/${ds}/documents/${doc}/segments`, payload: { segments: [{ content: "x" }] } },
    { method: "DELETE", url: `/v1/datasets/${ds}/documents/${doc}/segments/${randomUUID()}` },
    { method: "GET", url: `/v1/datasets/${ds}/documents/${doc}/segments/${randomUUID()}/child_chunks` },
  ]);

  it("a key of another tenant or scoped elsewhere sees Dataset not found.", async () => {
    const c = await setup();
    const other = await createDatasetKey(t, await createTenant(t));
    const res = await t.app.inject({ method: "GET", url: c.url, headers: { authorization: `Bearer ${other}` } });
    expect(res.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
  });
});

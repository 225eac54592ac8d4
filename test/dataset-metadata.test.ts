// Dataset metadata (datasets spec §9, §3.9): fields, built-ins and their enable/disable action,
// document metadata values, errors, key scope and tenant isolation.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

let t: TestApp;
let appKey: string;
beforeAll(async () => {
  t = await buildTestApp();
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
});

type H = Record<string, string>;
const req = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, h: H, payload?: object) =>
  t.app.inject({ method, url, headers: h, ...(payload !== undefined ? { payload } : {}) });

async function setup() {
  const tenantId = await createTenant(t);
  const h = { authorization: `Bearer ${await createDatasetKey(t, tenantId)}` };
  const res = await req("POST", "/v1/datasets", h, { name: "KB" });
  const datasetId = res.json().id as string;
  const doc = (name: string, extra: object = {}) =>
    t.prisma.document.create({
      data: { tenant_id: tenantId, dataset_id: datasetId, position: 1, data_source_type: "upload_file", batch: "b", name, indexing_status: "completed", ...extra },
    });
  return { tenantId, h, datasetId, doc };
}
const field = async (h: H, datasetId: string, name: string, type = "string") => {
  const res = await req("POST", `/v1/datasets/${datasetId}/metadata`, h, { type, name });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; type: string; name: string };
};
const BUILT_INS = [
  { name: "document_name", type: "string" },
  { name: "uploader", type: "string" },
  { name: "upload_date", type: "time" },
  { name: "last_update_date", type: "time" },
  { name: "source", type: "string" },
];

describe("auth", () => {
  const id = randomUUID();
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "POST", url: `/v1/datasets/${id}/metadata`, payload: { type: "string", name: "a" } },
    { method: "GET", url: `/v1/datasets/${id}/metadata` },
    { method: "PATCH", url: `/v1/datasets/${id}/metadata/${randomUUID()}`, payload: { name: "a" } },
    { method: "DELETE", url: `/v1/datasets/${id}/metadata/${randomUUID()}` },
    { method: "GET", url: `/v1/datasets/${id}/metadata/built-in` },
    { method: "POST", url: `/v1/datasets/${id}/metadata/built-in/enable` },
    { method: "POST", url: `/v1/datasets/${id}/documents/metadata`, payload: { operation_data: [] } },
  ]);
});

describe("metadata fields", () => {
  it("create 201 {id, type, name}; list with counts; dataset object's doc_metadata", async () => {
    const { h, datasetId } = await setup();
    const res = await req("POST", `/v1/datasets/${datasetId}/metadata`, h, { type: "number", name: "year" });
    expect(res.statusCode).toBe(201);
    expect(Object.keys(res.json())).toEqual(["id", "type", "name"]);
    expect(res.json()).toMatchObject({ type: "number", name: "year" });
    const list = await req("GET", `/v1/datasets/${datasetId}/metadata`, h);
    expect(list.json()).toEqual({ doc_metadata: [{ id: res.json().id, name: "year", type: "number", count: 0 }], built_in_field_enabled: false });
    const ds = (await req("GET", `/v1/datasets/${datasetId}`, h)).json();
    expect(ds.doc_metadata).toEqual([{ id: res.json().id, name: "year", type: "number" }]);
  });

  it("400 invalid_param errors of create", async () => {
    const { h, datasetId } = await setup();
    await field(h, datasetId, "author");
    const cases: Array<[object, string]> = [
      [{ type: "string", name: "author" }, "Metadata name already exists."],
      [{ type: "string", name: "uploader" }, "Metadata name already exists in Built-in fields."],
      [{ type: "string", name: "n".repeat(256) }, "Metadata name cannot exceed 255 characters."],
    ];
    for (const [payload, message] of cases) {
      const res = await req("POST", `/v1/datasets/${datasetId}/metadata`, h, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: "invalid_param", message, status: 400 });
    }
    const schema = await req("POST", `/v1/datasets/${datasetId}/metadata`, h, { type: "date", name: "x" });
    expect(schema.statusCode).toBe(400);
    expect(schema.json().code).toBe("invalid_param");
    expect(schema.json().message).toBe("1 validation error for MetadataArgs\ntype\n  Input should be 'string', 'number' or 'time'");
  });

  it("rename rewrites document values; same-name rename fails; unknown field 404", async () => {
    const { h, datasetId, doc } = await setup();
    const f = await field(h, datasetId, "author");
    const d = await doc("a.txt");
    const up = await req("POST", `/v1/datasets/${datasetId}/documents/metadata`, h, {
      operation_data: [{ document_id: d.id, metadata_list: [{ id: f.id, name: "author", value: "Ann" }] }],
    });
    expect(up.json()).toEqual({ result: "success" });
    const r = await req("PATCH", `/v1/datasets/${datasetId}/metadata/${f.id}`, h, { name: "writer" });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ id: f.id, type: "string", name: "writer" });
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ writer: "Ann" });
    const same = await req("PATCH", `/v1/datasets/${datasetId}/metadata/${f.id}`, h, { name: "writer" });
    expect(same.json()).toEqual({ code: "invalid_param", message: "Metadata name already exists.", status: 400 });
    const nf = await req("PATCH", `/v1/datasets/${datasetId}/metadata/${randomUUID()}`, h, { name: "zzz" });
    expect(nf.json()).toEqual({ code: "not_found", message: "Metadata not found.", status: 404 });
  });

  it("delete 204 removes the field, its bindings and the document values; again → 400 Metadata not found.", async () => {
    const { h, datasetId, doc } = await setup();
    const f = await field(h, datasetId, "tag");
    const keep = await field(h, datasetId, "keep");
    const d = await doc("a.txt");
    await req("POST", `/v1/datasets/${datasetId}/documents/metadata`, h, {
      operation_data: [{ document_id: d.id, metadata_list: [{ id: f.id, name: "tag", value: "x" }, { id: keep.id, name: "keep", value: 1 }] }],
    });
    expect((await req("GET", `/v1/datasets/${datasetId}/metadata`, h)).json().doc_metadata.map((m: { count: number }) => m.count)).toEqual([1, 1]);
    const del = await req("DELETE", `/v1/datasets/${datasetId}/metadata/${f.id}`, h);
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe("");
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ keep: 1 });
    const again = await req("DELETE", `/v1/datasets/${datasetId}/metadata/${f.id}`, h);
    expect(again.json()).toEqual({ code: "invalid_param", message: "Metadata not found.", status: 400 });
  });

  it("a concurrent operation on the dataset answers Dify's lock message", async () => {
    const { h, datasetId } = await setup();
    const f = await field(h, datasetId, "a");
    await t.redis.set(`${t.config.QUEUE_PREFIX}:dataset_metadata_lock_${datasetId}`, "1", "EX", 30);
    const res = await req("PATCH", `/v1/datasets/${datasetId}/metadata/${f.id}`, h, { name: "b" });
    expect(res.json()).toEqual({ code: "invalid_param", message: "Another knowledge base metadata operation is running, please wait a moment.", status: 400 });
    await t.redis.del(`${t.config.QUEUE_PREFIX}:dataset_metadata_lock_${datasetId}`);
  });
});

describe("built-in fields", () => {
  it("lists the five built-ins", async () => {
    const { h, datasetId } = await setup();
    const res = await req("GET", `/v1/datasets/${datasetId}/metadata/built-in`, h);
    expect(res.json()).toEqual({ fields: BUILT_INS });
  });

  it("enable writes values into working documents, disable removes them; other actions are no-ops", async () => {
    const { tenantId, h, datasetId, doc } = await setup();
    const working = await doc("w.txt", { doc_metadata: { mine: "v" } });
    const disabled = await doc("d.txt", { enabled: false });
    const en = await req("POST", `/v1/datasets/${datasetId}/metadata/built-in/enable`, h);
    expect(en.json()).toEqual({ result: "success" });
    const w = (await t.prisma.document.findUnique({ where: { id: working.id } }))!;
    const tenant = await t.prisma.tenant.findUnique({ where: { id: tenantId } });
    expect(w.doc_metadata).toEqual({
      mine: "v", document_name: "w.txt", uploader: tenant!.name,
      upload_date: w.created_at.getTime() / 1000, last_update_date: w.updated_at.getTime() / 1000, source: "file_upload",
    });
    expect((await t.prisma.document.findUnique({ where: { id: disabled.id } }))!.doc_metadata).toBeNull();
    const ds = (await req("GET", `/v1/datasets/${datasetId}`, h)).json();
    expect(ds.built_in_field_enabled).toBe(true);
    expect(ds.doc_metadata).toEqual(BUILT_INS.map((f) => ({ id: "built-in", ...f })));
    expect((await req("GET", `/v1/datasets/${datasetId}/metadata`, h)).json().built_in_field_enabled).toBe(true);
    expect((await req("POST", `/v1/datasets/${datasetId}/metadata/built-in/whatever`, h)).json()).toEqual({ result: "success" });
    await req("POST", `/v1/datasets/${datasetId}/metadata/built-in/disable`, h);
    expect((await t.prisma.document.findUnique({ where: { id: working.id } }))!.doc_metadata).toEqual({ mine: "v" });
  });
});

describe("POST /v1/datasets/{dataset_id}/documents/metadata", () => {
  it("replaces values and bindings, or merges with partial_update", async () => {
    const { h, datasetId, doc } = await setup();
    const a = await field(h, datasetId, "a");
    const b = await field(h, datasetId, "b", "number");
    const d = await doc("x.txt", { doc_metadata: { old: 1 } });
    const post = (op: object) => req("POST", `/v1/datasets/${datasetId}/documents/metadata`, h, { operation_data: [op] });
    expect((await post({ document_id: d.id, metadata_list: [{ id: a.id, name: "a", value: "1" }] })).statusCode).toBe(200);
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ a: "1" });
    await post({ document_id: d.id, metadata_list: [{ id: b.id, name: "b", value: 2.5 }], partial_update: true });
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ a: "1", b: 2.5 });
    const counts = (await req("GET", `/v1/datasets/${datasetId}/metadata`, h)).json().doc_metadata.map((m: { count: number }) => m.count);
    expect(counts).toEqual([1, 1]);
    await post({ document_id: d.id, metadata_list: [{ id: b.id, name: "b", value: null }] });
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ b: null });
    expect((await req("GET", `/v1/datasets/${datasetId}/metadata`, h)).json().doc_metadata.map((m: { count: number }) => m.count)).toEqual([0, 1]);
  });

  it("400 Document not found. for an unknown or foreign document, after earlier operations committed", async () => {
    const { h, datasetId, doc } = await setup();
    const other = await setup();
    const foreign = await other.doc("f.txt");
    const d = await doc("ok.txt");
    const res = await req("POST", `/v1/datasets/${datasetId}/documents/metadata`, h, {
      operation_data: [
        { document_id: d.id, metadata_list: [{ id: randomUUID(), name: "k", value: "v" }] },
        { document_id: foreign.id, metadata_list: [] },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: "Document not found.", status: 400 });
    expect((await t.prisma.document.findUnique({ where: { id: d.id } }))!.doc_metadata).toEqual({ k: "v" });
    expect((await t.prisma.document.findUnique({ where: { id: foreign.id } }))!.doc_metadata).toBeNull();
  });

  it("400 invalid_param for a malformed body", async () => {
    const { h, datasetId } = await setup();
    const res = await req("POST", `/v1/datasets/${datasetId}/documents/metadata`, h, { operation_data: [{ metadata_list: [] }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toBe("1 validation error for MetadataOperationData\noperation_data.0.document_id\n  Field required");
  });
});

describe("scope and isolation", () => {
  it("404 Dataset not found. for another tenant's dataset or one outside the key's scope", async () => {
    const a = await setup();
    const b = await setup();
    const f = await field(b.h, b.datasetId, "x");
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, a.tenantId, [a.datasetId])}` };
    const own2 = (await req("POST", "/v1/datasets", a.h, { name: "Other" })).json().id as string;
    const calls: Array<[H, "GET" | "POST" | "PATCH" | "DELETE", string, object | undefined]> = [
      [a.h, "GET", `/v1/datasets/${b.datasetId}/metadata`, undefined],
      [a.h, "POST", `/v1/datasets/${b.datasetId}/metadata`, { type: "string", name: "y" }],
      [a.h, "PATCH", `/v1/datasets/${b.datasetId}/metadata/${f.id}`, { name: "hijack" }],
      [a.h, "DELETE", `/v1/datasets/${b.datasetId}/metadata/${f.id}`, undefined],
      [a.h, "GET", `/v1/datasets/${b.datasetId}/metadata/built-in`, undefined],
      [a.h, "POST", `/v1/datasets/${b.datasetId}/metadata/built-in/enable`, undefined],
      [a.h, "POST", `/v1/datasets/${b.datasetId}/documents/metadata`, { operation_data: [] }],
      [scoped, "GET", `/v1/datasets/${own2}/metadata`, undefined],
    ];
    for (const [h, method, url, payload] of calls) {
      const res = await req(method, url, h, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
    }
    // Metadata of another dataset of the same tenant is not reachable through this one.
    const g = await field(a.h, own2, "z");
    expect((await req("PATCH", `/v1/datasets/${a.datasetId}/metadata/${g.id}`, a.h, { name: "q" })).statusCode).toBe(404);
    expect((await req("GET", `/v1/datasets/${a.datasetId}/metadata`, scoped)).statusCode).toBe(200);
  });
});

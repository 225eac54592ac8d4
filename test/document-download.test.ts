// Document downloads (datasets spec §5.10, newest): GET …/documents/{id}/download answers a signed
// `file-preview` link with `as_attachment=true` that the root route serves; POST
// …/documents/download-zip answers a ZIP of the documents' upload files. Every documented error,
// dataset-key auth and dataset scoping.
import { randomUUID } from "node:crypto";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workspaceOwnerId } from "../src/modules/tenants/owner.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { authCases } from "./support/auth-cases.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";

let t: TestApp;
let appKey: string;

beforeAll(async () => {
  // Nothing is embedded here (economy documents, no workers); the registry only needs credentials.
  t = await buildTestApp({ OPENAI_BASE_URL: "http://127.0.0.1:9/v1", OPENAI_API_KEY: "sk-test" });
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
});

interface Ctx {
  tenantId: string;
  datasetId: string;
  h: Record<string, string>;
}

async function setup(): Promise<Ctx> {
  const tenantId = await createTenant(t);
  const ds = await t.prisma.dataset.create({ data: { tenant_id: tenantId, name: `ds-${randomUUID().slice(0, 8)}`, created_by: workspaceOwnerId(tenantId) } });
  const key = await createDatasetKey(t, tenantId);
  return { tenantId, datasetId: ds.id, h: { authorization: `Bearer ${key}` } };
}

const base = (c: Ctx) => `/v1/datasets/${c.datasetId}`;

/** A document made through create-by-text: its upload file holds `text`, named `name`. */
async function textDoc(c: Ctx, name: string, text: string): Promise<{ id: string; fileId: string }> {
  const res = await t.app.inject({ method: "POST", url: `${base(c)}/document/create-by-text`, headers: c.h, payload: { name, text, indexing_technique: "economy", process_rule: { mode: "automatic" } } });
  expect(res.statusCode).toBe(200);
  const doc = res.json().document;
  return { id: doc.id, fileId: doc.data_source_info.upload_file_id };
}

/** The path + query of a signed link (FILES_URL is not this server's address in tests). */
const local = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

const download = (c: Ctx, id: string, headers = c.h) => t.app.inject({ method: "GET", url: `${base(c)}/documents/${id}/download`, headers });
const zip = (c: Ctx, payload: unknown, headers = c.h) => t.app.inject({ method: "POST", url: `${base(c)}/documents/download-zip`, headers, payload: payload as object });
const notFound = (message: string) => ({ code: "not_found", message, status: 404 });

describe("GET /v1/datasets/{id}/documents/{document_id}/download", () => {
  it("answers a signed attachment link that the root file-preview route serves", async () => {
    const c = await setup();
    const d = await textDoc(c, "notes", "hello download");
    const res = await download(c, d.id);
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json())).toEqual(["url"]);
    const url = res.json().url as string;
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:5001/files/${d.fileId}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]{32}&sign=[A-Za-z0-9_-]+&as_attachment=true$`));
    // Python json.dumps style like the other resource endpoints.
    expect(res.body).toBe(`{"url": "${url}"}\n`);

    const file = await t.app.inject({ method: "GET", url: local(url) });
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe("hello download");
    expect(file.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''notes");

    // Upper-case ids reach the same document.
    expect((await download(c, d.id.toUpperCase())).statusCode).toBe(200);
  });

  it("documented errors", async () => {
    const c = await setup();
    const d = await textDoc(c, "a", "a");
    expect((await download(c, randomUUID())).json()).toEqual(notFound("Document not found."));

    // A document of another dataset of the same tenant is not found through this dataset.
    const sibling = await t.prisma.dataset.create({ data: { tenant_id: c.tenantId, name: `sib-${randomUUID().slice(0, 8)}` } });
    const res = await t.app.inject({ method: "GET", url: `/v1/datasets/${sibling.id}/documents/${d.id}/download`, headers: c.h });
    expect(res.json()).toEqual(notFound("Document not found."));

    // Unknown dataset.
    const unknown = await t.app.inject({ method: "GET", url: `/v1/datasets/${randomUUID()}/documents/${d.id}/download`, headers: c.h });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual(notFound("Dataset not found."));

    // Upload file row gone.
    const gone = await textDoc(c, "gone", "x");
    await t.prisma.uploadFile.delete({ where: { id: gone.fileId } });
    const r1 = await download(c, gone.id);
    expect(r1.statusCode).toBe(404);
    expect(r1.json()).toEqual(notFound("Uploaded file not found."));

    // Not an upload_file document / no file id recorded.
    const notion = await textDoc(c, "notion", "x");
    await t.prisma.document.update({ where: { id: notion.id }, data: { data_source_type: "notion_import", data_source_info: { notion_page_id: "p" } } });
    expect((await download(c, notion.id)).json()).toEqual(notFound("Document does not have an uploaded file to download."));
    const noId = await textDoc(c, "noid", "x");
    await t.prisma.document.update({ where: { id: noId.id }, data: { data_source_info: {}, upload_file_id: null } });
    expect((await download(c, noId.id)).json()).toEqual(notFound("Document does not have an uploaded file to download."));

    // A non-UUID document id is the generic 404 (route does not match).
    const bad = await download(c, "not-a-uuid");
    expect(bad.statusCode).toBe(404);
    expect(bad.json().code).toBe("not_found");
  });
});

describe("POST /v1/datasets/{id}/documents/download-zip", () => {
  it("zips the upload files under their names: separators replaced, duplicates suffixed", async () => {
    const c = await setup();
    const a = await textDoc(c, "guide.txt", "first");
    // (create-by-text reuses a same-named document, so the clash is made on the file row.)
    const b = await textDoc(c, "guide-2", "second");
    await t.prisma.uploadFile.update({ where: { id: b.fileId }, data: { name: "guide.txt" } });
    const s = await textDoc(c, "plain", "third");
    const p = await textDoc(c, "x", "fourth");
    await t.prisma.uploadFile.update({ where: { id: p.fileId }, data: { name: "dir/sub\\name.md" } });

    const res = await zip(c, { document_ids: [a.id, b.id, s.id, p.id, a.id.toUpperCase()] });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/zip");
    expect(res.headers["content-disposition"]).toMatch(/^attachment; filename=[0-9a-f]{32}\.zip$/);
    const archive = await JSZip.loadAsync(res.rawPayload);
    const names = Object.keys(archive.files);
    // A repeated id is zipped once.
    expect(names).toEqual(["guide.txt", "guide (1).txt", "plain", "dir_sub_name.md"]);
    const contents = await Promise.all(names.map((n) => archive.file(n)!.async("string")));
    expect(contents).toEqual(["first", "second", "third", "fourth"]);
  });

  it("validation: document_ids must be 1–100 UUIDs", async () => {
    const c = await setup();
    for (const payload of [{}, { document_ids: [] }, { document_ids: "x" }, { document_ids: ["nope"] }, { document_ids: Array.from({ length: 101 }, () => randomUUID()) }]) {
      const res = await zip(c, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe("invalid_param");
      expect(res.json().message).toContain("validation error");
    }
  });

  it("documented errors: unknown document, not an uploaded file, missing file row", async () => {
    const c = await setup();
    const a = await textDoc(c, "a", "a");
    expect((await zip(c, { document_ids: [a.id, randomUUID()] })).json()).toEqual(notFound("Document not found."));

    // A document of another dataset is unknown here.
    const other = await setup();
    const foreign = await textDoc(other, "f", "f");
    expect((await zip(c, { document_ids: [a.id, foreign.id] })).json()).toEqual(notFound("Document not found."));

    const notion = await textDoc(c, "n", "n");
    await t.prisma.document.update({ where: { id: notion.id }, data: { data_source_type: "notion_import", data_source_info: { notion_page_id: "p" } } });
    const r1 = await zip(c, { document_ids: [a.id, notion.id] });
    expect(r1.statusCode).toBe(404);
    expect(r1.json()).toEqual(notFound("Only uploaded-file documents can be downloaded as ZIP."));

    const gone = await textDoc(c, "g", "g");
    await t.prisma.uploadFile.delete({ where: { id: gone.fileId } });
    expect((await zip(c, { document_ids: [gone.id] })).json()).toEqual(notFound("Only uploaded-file documents can be downloaded as ZIP."));

    const unknown = await t.app.inject({ method: "POST", url: `/v1/datasets/${randomUUID()}/documents/download-zip`, headers: c.h, payload: { document_ids: [a.id] } });
    expect(unknown.json()).toEqual(notFound("Dataset not found."));
  });
});

describe("auth and dataset scoping", () => {
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "GET", url: `/v1/datasets/${randomUUID()}/documents/${randomUUID()}/download` },
    { method: "POST", url: `/v1/datasets/${randomUUID()}/documents/download-zip`, payload: { document_ids: [randomUUID()] } },
  ]);

  it("a key scoped to other datasets, another tenant's key and disabled API access", async () => {
    const c = await setup();
    const d = await textDoc(c, "a", "a");
    const sibling = await t.prisma.dataset.create({ data: { tenant_id: c.tenantId, name: `sib-${randomUUID().slice(0, 8)}` } });
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, c.tenantId, [sibling.id])}` };
    const otherTenant = (await setup()).h;
    for (const h of [scoped, otherTenant]) {
      expect((await download(c, d.id, h)).json()).toEqual(notFound("Dataset not found."));
      expect((await zip(c, { document_ids: [d.id] }, h)).json()).toEqual(notFound("Dataset not found."));
    }
    await t.prisma.dataset.update({ where: { id: c.datasetId }, data: { enable_api: false } });
    const r = await download(c, d.id);
    expect(r.statusCode).toBe(403);
    expect((await zip(c, { document_ids: [d.id] })).statusCode).toBe(403);
  });

  it("GET on the zip path and POST on the download path are 405", async () => {
    const c = await setup();
    expect((await t.app.inject({ method: "GET", url: `${base(c)}/documents/download-zip`, headers: c.h })).statusCode).toBe(405);
    const r = await t.app.inject({ method: "POST", url: `${base(c)}/documents/${randomUUID()}/download`, headers: c.h });
    expect(r.statusCode).toBe(405);
  });
});

// POST /v1/files/upload and GET /v1/files/{id}/preview (apps spec §10).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";
import { multipart, type Part } from "./support/multipart.js";

let t: TestApp;
let a: Awaited<ReturnType<typeof appWithKey>>;
let datasetKey: string;
beforeAll(async () => {
  t = await buildTestApp({ UPLOAD_IMAGE_FILE_SIZE_LIMIT: 1, UPLOAD_FILE_EXTENSION_BLACKLIST: "exe,bat" });
  a = await appWithKey(t);
  datasetKey = await createDatasetKey(t, a.tenantId);
});
afterAll(async () => t?.close());


async function upload(parts: Part[], headers = a.auth) {
  const m = multipart(parts);
  return t.app.inject({ method: "POST", url: "/v1/files/upload", headers: { ...headers, ...m.headers }, payload: m.payload });
}

const png = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");

describe("auth", () => {
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "POST", url: "/v1/files/upload" },
    { method: "GET", url: "/v1/files/00000000-0000-4000-8000-000000000000/preview" },
  ]);
});

describe("POST /v1/files/upload", () => {
  it("201 with Dify's fields, user before or after the file", async () => {
    for (const order of ["user-first", "file-first"]) {
      const filePart = { name: "file", filename: "photo.png", contentType: "image/png", data: png };
      const userPart = { name: "user", value: "alice" };
      const res = await upload(order === "user-first" ? [userPart, filePart] : [filePart, userPart]);
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(Object.keys(body)).toEqual(["id", "reference", "name", "size", "extension", "mime_type", "created_by", "created_at", "preview_url", "source_url", "original_url", "user_id", "tenant_id", "conversation_id", "file_key"]);
      expect(body).toMatchObject({ name: "photo.png", size: png.length, extension: "png", mime_type: "image/png", tenant_id: a.tenantId, preview_url: null });
      expect(body.source_url).toMatch(new RegExp(`/files/${body.id}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]+&sign=`));
      const eu = await t.prisma.endUser.findFirst({ where: { app_id: a.appId, session_id: "alice" } });
      expect(body.created_by).toBe(eu!.id);
    }
  });

  it("takes the type from the file name when the part has none or a generic one", async () => {
    for (const contentType of [null, "application/octet-stream"]) {
      const res = await upload([{ name: "file", filename: "notes.md", contentType, data: Buffer.from("# hi") }, { name: "user", value: "bob" }]);
      expect(res.statusCode).toBe(201);
      expect(res.json().mime_type).toBe("text/markdown");
    }
  });

  it("no file part → 400 no_file_uploaded; two → too_many_files", async () => {
    let res = await upload([{ name: "user", value: "bob" }]);
    expect(res.json()).toEqual({ code: "no_file_uploaded", message: "Please upload your file.", status: 400 });
    res = await upload([
      { name: "file", filename: "a.txt", contentType: "text/plain", value: "a" },
      { name: "file", filename: "b.txt", contentType: "text/plain", value: "b" },
    ]);
    expect(res.json()).toEqual({ code: "too_many_files", message: "Only one file is allowed.", status: 400 });
    const notMultipart = await t.app.inject({ method: "POST", url: "/v1/files/upload", headers: { ...a.auth, "content-type": "application/json" }, payload: "{}" });
    expect(notMultipart.statusCode).toBe(400);
    expect(notMultipart.json().code).toBe("no_file_uploaded");
  });

  it("bad file names", async () => {
    let res = await upload([{ name: "file", filename: "", contentType: "text/plain", value: "x" }]);
    expect(res.statusCode).toBe(400);
    expect(["filename_not_exists_error", "no_file_uploaded"]).toContain(res.json().code);
    res = await upload([{ name: "file", filename: "a\\b.txt", contentType: "text/plain", value: "x" }]);
    expect(res.json()).toEqual({ code: "invalid_param", message: "Filename contains invalid characters", status: 400 });
    res = await upload([{ name: "file", filename: "run.exe", contentType: "application/octet-stream", value: "x" }]);
    expect(res.json()).toEqual({ code: "invalid_param", message: "File extension '.exe' is not allowed for security reasons", status: 400 });
  });

  it("over the category limit → 413 file_too_large", async () => {
    const big = Buffer.alloc(1024 * 1024 + 10, 1);
    const res = await upload([{ name: "file", filename: "big.png", contentType: "image/png", data: big }]);
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ code: "file_too_large", message: "", status: 413 });
    // The same size is fine for a document (15 MB limit).
    const doc = await upload([{ name: "file", filename: "big.txt", contentType: "text/plain", data: big }]);
    expect(doc.statusCode).toBe(201);
  });

  it("shortens names over 200 characters, keeping the extension", async () => {
    const res = await upload([{ name: "file", filename: `${"n".repeat(250)}.txt`, contentType: "text/plain", value: "x" }]);
    expect(res.json().name).toBe(`${"n".repeat(200)}.txt`);
  });
});

describe("GET /v1/files/{id}/preview", () => {
  it("serves the uploader's file to the uploader only", async () => {
    const id = (await upload([{ name: "file", filename: "hello.txt", contentType: "text/plain", value: "hello world" }, { name: "user", value: "carol" }])).json().id;
    const ok = await t.app.inject({ method: "GET", url: `/v1/files/${id}/preview?user=carol`, headers: a.auth });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe("hello world");
    expect(ok.headers["content-type"]).toMatch(/^text\/plain/);
    expect(ok.headers["cache-control"]).toBe("public, max-age=3600");

    const att = await t.app.inject({ method: "GET", url: `/v1/files/${id}/preview?user=carol&as_attachment=true`, headers: a.auth });
    expect(att.headers["content-disposition"]).toBe("attachment; filename*=UTF-8''hello.txt");
    expect(att.headers["content-type"]).toBe("application/octet-stream");

    const other = await t.app.inject({ method: "GET", url: `/v1/files/${id}/preview?user=mallory`, headers: a.auth });
    expect(other.statusCode).toBe(404);
    expect(other.json().code).toBe("file_not_found");

    const b = await appWithKey(t);
    const otherApp = await t.app.inject({ method: "GET", url: `/v1/files/${id}/preview?user=carol`, headers: b.auth });
    expect([403, 404]).toContain(otherApp.statusCode);
    expect(["file_access_denied", "file_not_found"]).toContain(otherApp.json().code);
  });

  it("unknown file → 404 file_not_found", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/files/00000000-0000-4000-8000-000000000000/preview", headers: a.auth });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: "file_not_found", message: "Upload file record not found", status: 404 });
  });

  it("the signed source_url serves the file; a tampered one is refused", async () => {
    const body = (await upload([{ name: "file", filename: "s.txt", contentType: "text/plain", value: "signed" }])).json();
    const url = new URL(body.source_url);
    const ok = await t.app.inject({ method: "GET", url: url.pathname + url.search });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe("signed");
    const bad = await t.app.inject({ method: "GET", url: url.pathname + url.search.replace(/sign=./, "sign=x") });
    expect(bad.statusCode).toBe(403);
  });
});

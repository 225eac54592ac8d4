// src/modules/files/message-files.ts: the `files` of generation requests (apps spec §5.6).
// Real Postgres and storage; remote files come from a server on 127.0.0.1 only.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.js";
import { DifyError } from "../src/lib/errors.js";
import { createFileService } from "../src/modules/files/service.js";
import {
  detectFileType,
  imageDetail,
  loadMessageImages,
  parseUploadConfig,
  recordMessageFiles,
  resolveRequestFiles,
  toImagePart,
  type MessageFileDeps,
  type ResolveRequestFilesArgs,
} from "../src/modules/files/message-files.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey } from "./support/factories.js";
import { multipart } from "./support/multipart.js";

const png = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");

let t: TestApp;
let a: Awaited<ReturnType<typeof appWithKey>>;
let deps: MessageFileDeps;
let publicDeps: MessageFileDeps;
let server: http.Server;
let remote: string;
const remoteHits: string[] = [];

// The test app's own file_upload (support/factories chatAppYaml): legacy image block, 2 images.
const legacyImage = { image: { enabled: true, number_limits: 2, detail: "high", transfer_methods: ["local_file", "remote_url"] } };

beforeAll(async () => {
  t = await buildTestApp({ OUTBOUND_POLICY: "loopback" });
  a = await appWithKey(t);
  const fileService = createFileService({ prisma: t.prisma, storage: t.storage, config: t.config });
  deps = { prisma: t.prisma, config: t.config, storage: t.storage, fileService };
  const publicConfig: Config = Object.freeze({ ...t.config, OUTBOUND_POLICY: "public" as const });
  publicDeps = { ...deps, config: publicConfig };

  server = http.createServer((req, res) => {
    remoteHits.push(`${req.method} ${req.url}`);
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/cat.png" || u.pathname === "/image") {
      // /image has no extension and a wrong Content-Type: the bytes tell it is a PNG.
      res.writeHead(200, { "content-type": u.pathname === "/image" ? "application/octet-stream" : "image/png", "content-length": String(png.length) });
      res.end(req.method === "HEAD" ? undefined : png);
    } else if (u.pathname === "/report.pdf") {
      res.writeHead(200, { "content-type": "application/pdf", "content-length": "12345", "content-disposition": 'attachment; filename="Q3 report.pdf"' });
      res.end(req.method === "HEAD" ? undefined : Buffer.alloc(12345));
    } else if (u.pathname === "/page.png") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<html>login</html>");
    } else if (u.pathname === "/to-private") {
      res.writeHead(302, { location: "http://10.0.0.1/cat.png" });
      res.end();
    } else if (u.pathname === "/huge.png") {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(Buffer.concat([png, Buffer.alloc(2 * 1024 * 1024)]));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  remote = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await t?.close();
});


/** Uploads through POST /v1/files/upload as `user`; returns the upload id and the end user's id. */
async function upload(user: string, filename: string, contentType: string, data: Buffer): Promise<{ id: string; endUserId: string }> {
  const m = multipart([{ name: "file", filename, contentType, data }, { name: "user", value: user }]);
  const res = await t.app.inject({ method: "POST", url: "/v1/files/upload", headers: { ...a.auth, ...m.headers }, payload: m.payload });
  expect(res.statusCode).toBe(201);
  const body = res.json();
  return { id: body.id as string, endUserId: body.created_by as string };
}

const args = (endUserId: string, files: unknown, over: Partial<ResolveRequestFilesArgs> = {}): ResolveRequestFilesArgs => ({
  tenantId: a.tenantId,
  appId: a.appId,
  endUserId,
  uploadConfig: legacyImage,
  files,
  appMode: "chat",
  ...over,
});

async function invalidParam(p: Promise<unknown>, message: string | RegExp): Promise<void> {
  const err = await p.then(
    () => {
      throw new Error("expected a 400 invalid_param");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DifyError);
  const d = err as DifyError;
  expect(d.status).toBe(400);
  expect(d.code).toBe("invalid_param");
  if (typeof message === "string") expect(d.message).toBe(message);
  else expect(d.message).toMatch(message);
}

describe("local_file", () => {
  it("the end user's own upload resolves, with the image bytes for vision models", async () => {
    const up = await upload("alice", "photo.png", "image/png", png);
    const files = await resolveRequestFiles(deps, args(up.endUserId, [{ type: "image", transfer_method: "local_file", upload_file_id: up.id }]));
    expect(files).toHaveLength(1);
    const f = files[0]!;
    expect(f).toMatchObject({
      type: "image",
      transfer_method: "local_file",
      upload_file_id: up.id,
      filename: "photo.png",
      extension: ".png",
      mime_type: "image/png",
      size: png.length,
    });
    expect(f.url).toMatch(new RegExp(`/files/${up.id}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]+&sign=`));
    expect(f.data!.equals(png)).toBe(true);
    expect(f.dataUrl).toBe(`data:image/png;base64,${png.toString("base64")}`);
    expect(toImagePart(f, "high")).toEqual({ type: "image_url", image_url: { url: f.dataUrl, detail: "high" } });
    expect(toImagePart(f).image_url.detail).toBe("low");
  });

  it("accepts Python's other UUID spellings (upper case, no hyphens)", async () => {
    const up = await upload("alice", "p2.png", "image/png", png);
    const files = await resolveRequestFiles(deps, args(up.endUserId, [{ type: "image", transfer_method: "local_file", upload_file_id: up.id.replace(/-/g, "").toUpperCase() }]));
    expect(files[0]!.upload_file_id).toBe(up.id);
  });

  it("another end user's upload → 400 Invalid upload file", async () => {
    const mine = await upload("bob", "bob.png", "image/png", png);
    const other = await upload("carol", "carol.png", "image/png", png);
    await invalidParam(
      resolveRequestFiles(deps, args(mine.endUserId, [{ type: "image", transfer_method: "local_file", upload_file_id: other.id }])),
      "Invalid upload file",
    );
  });

  it("an upload of another workspace → 400 Invalid upload file", async () => {
    const up = await upload("dave", "d.png", "image/png", png);
    await invalidParam(
      resolveRequestFiles(deps, args(up.endUserId, [{ type: "image", transfer_method: "local_file", upload_file_id: up.id }], { tenantId: "00000000-0000-4000-8000-000000000000" })),
      "Invalid upload file",
    );
  });

  it("unknown, malformed and missing ids → 400", async () => {
    const up = await upload("erin", "e.png", "image/png", png);
    const one = (m: Record<string, unknown>) => resolveRequestFiles(deps, args(up.endUserId, [{ type: "image", transfer_method: "local_file", ...m }]));
    await invalidParam(one({ upload_file_id: "00000000-0000-4000-8000-000000000000" }), "Invalid upload file");
    await invalidParam(one({ upload_file_id: "not-a-uuid" }), "Invalid upload file id format");
    await invalidParam(one({}), "Invalid upload file id");
    await invalidParam(one({ upload_file_id: 42 }), "Invalid upload file id");
  });

  it("type, extension and transfer-method rules of the app's config", async () => {
    const img = await upload("frank", "f.png", "image/png", png);
    const doc = await upload("frank", "notes.txt", "text/plain", Buffer.from("hello"));
    const u = img.endUserId;
    // Legacy image block: only images.
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "document", transfer_method: "local_file", upload_file_id: doc.id }])),
      "File validation failed for file: notes.txt",
    );
    // No type = "custom": allowed only by extension, and the legacy config lists none.
    await invalidParam(resolveRequestFiles(deps, args(u, [{ transfer_method: "local_file", upload_file_id: img.id }])), "File validation failed for file: f.png");
    // Image transfer methods.
    const localOnly = { image: { enabled: true, number_limits: 3, detail: "low", transfer_methods: ["remote_url"] } };
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "local_file", upload_file_id: img.id }], { uploadConfig: localOnly })),
      "File validation failed for file: f.png",
    );
    // New shape: documents and custom .txt allowed, local files only.
    const newShape = {
      enabled: true,
      allowed_file_types: ["document"],
      allowed_file_extensions: [".TXT"],
      allowed_file_upload_methods: ["local_file"],
      number_limits: 3,
    };
    const ok = await resolveRequestFiles(deps, args(u, [
      { type: "document", transfer_method: "local_file", upload_file_id: doc.id },
      { type: "custom", transfer_method: "local_file", upload_file_id: doc.id },
    ], { uploadConfig: newShape }));
    expect(ok.map((f) => [f.type, f.extension, f.data])).toEqual([["document", ".txt", undefined], ["document", ".txt", undefined]]);
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "local_file", upload_file_id: img.id }], { uploadConfig: newShape })),
      "File validation failed for file: f.png",
    );
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "document", transfer_method: "remote_url", url: `${remote}/report.pdf` }], { uploadConfig: newShape })),
      "File validation failed for file: report.pdf",
    );
    // Unknown enum values.
    await invalidParam(resolveRequestFiles(deps, args(u, [{ type: "pdf", transfer_method: "local_file", upload_file_id: doc.id }], { uploadConfig: newShape })), "'pdf' is not a valid FileType");
    await invalidParam(resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "ftp" }])), "'ftp' is not a valid FileTransferMethod");
  });

  it("number_limits exceeded → 400", async () => {
    const up = await upload("gina", "g.png", "image/png", png);
    const img = { type: "image", transfer_method: "local_file", upload_file_id: up.id };
    expect(await resolveRequestFiles(deps, args(up.endUserId, [img, img]))).toHaveLength(2);
    await invalidParam(resolveRequestFiles(deps, args(up.endUserId, [img, img, img])), "Number of image files exceeds the maximum limit 2");
    const doc = await upload("gina", "g.txt", "text/plain", Buffer.from("x"));
    const d = { type: "document", transfer_method: "local_file", upload_file_id: doc.id };
    const cfg = { enabled: true, allowed_file_types: ["document", "image"], allowed_file_upload_methods: ["local_file"], number_limits: 2 };
    await invalidParam(resolveRequestFiles(deps, args(up.endUserId, [d, d, d], { uploadConfig: cfg })), "Number of files exceeds the maximum limit 2");
  });
});

describe("feature switch and request shape", () => {
  it("null / [] → []", async () => {
    for (const files of [null, undefined, []]) expect(await resolveRequestFiles(deps, args("00000000-0000-4000-8000-000000000001", files))).toEqual([]);
  });

  it("feature disabled → files ignored (chat family), even invalid ones", async () => {
    const junk = [{ type: "image", transfer_method: "local_file", upload_file_id: "nope" }];
    for (const uploadConfig of [
      { image: { enabled: false, number_limits: 3, transfer_methods: ["local_file"] } },
      { enabled: false, allowed_file_types: ["image"] },
      {},
      null,
    ]) {
      expect(await resolveRequestFiles(deps, args("00000000-0000-4000-8000-000000000001", junk, { uploadConfig }))).toEqual([]);
    }
    expect(parseUploadConfig({ enabled: false })).toBeNull();
  });

  it("workflow apps build files without config checks when the feature is off, with strict types", async () => {
    const up = await upload("hank", "h.txt", "text/plain", Buffer.from("x"));
    const files = await resolveRequestFiles(deps, args(up.endUserId, [{ type: "document", transfer_method: "local_file", upload_file_id: up.id }], { appMode: "workflow", uploadConfig: {} }));
    expect(files[0]!.type).toBe("document");
    await invalidParam(
      resolveRequestFiles(deps, args(up.endUserId, [{ type: "image", transfer_method: "local_file", upload_file_id: up.id }], { appMode: "workflow", uploadConfig: {} })),
      "Detected file type does not match the specified type. Please verify the file.",
    );
  });

  it("skips mappings without transfer_method or URL (Dify's _is_valid_mapping); rejects non-lists", async () => {
    expect(await resolveRequestFiles(deps, args("00000000-0000-4000-8000-000000000001", [{}, { type: "image" }, { type: "image", transfer_method: "remote_url" }]))).toEqual([]);
    await invalidParam(resolveRequestFiles(deps, args("00000000-0000-4000-8000-000000000001", "x")), "files: Input should be a valid list");
    await invalidParam(resolveRequestFiles(deps, args("00000000-0000-4000-8000-000000000001", ["x"])), "files.0: Input should be a valid dictionary");
  });

  it("config helpers", () => {
    expect(parseUploadConfig(legacyImage)).toEqual({
      allowed_file_types: ["image"],
      allowed_file_extensions: [],
      allowed_file_upload_methods: ["local_file", "remote_url"],
      number_limits: 2,
      image_config: { number_limits: 2, transfer_methods: ["local_file", "remote_url"], detail: "high" },
    });
    expect(parseUploadConfig({ enabled: true, allowed_file_upload_methods: ["local_file"] })!.image_config).toEqual({ number_limits: 1, transfer_methods: ["local_file"], detail: "high" });
    expect(imageDetail({ image: { detail: "low" } })).toBe("low");
    expect(imageDetail({})).toBe("high");
    expect(imageDetail({}, { isVision: false })).toBe("low");
    expect(detectFileType(".PNG", "")).toBe("image");
    expect(detectFileType(".bin", "application/pdf")).toBe("document");
    expect(detectFileType(".xyz", "application/x-thing")).toBe("custom");
  });
});

describe("remote_url", () => {
  const u = "00000000-0000-4000-8000-000000000002";

  it("fetched through the loopback server under OUTBOUND_POLICY=loopback; image bytes kept and sniffed", async () => {
    const files = await resolveRequestFiles(deps, args(u, [
      { type: "image", transfer_method: "remote_url", url: `${remote}/cat.png` },
      { type: "image", transfer_method: "remote_url", url: `${remote}/image?x=1` },
    ]));
    expect(files[0]).toMatchObject({ type: "image", transfer_method: "remote_url", url: `${remote}/cat.png`, remote_url: `${remote}/cat.png`, filename: "cat.png", extension: ".png", mime_type: "image/png", size: png.length });
    expect(files[0]!.data!.equals(png)).toBe(true);
    expect(files[1]).toMatchObject({ filename: "image", mime_type: "image/png", extension: ".png", size: png.length });
    expect(toImagePart(files[1]!).image_url.url).toBe(`data:image/png;base64,${png.toString("base64")}`);
    expect(remoteHits).toContain("GET /cat.png");
    // Declared as an image but the bytes are HTML: no inline data, the model gets the URL.
    const [page] = await resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/page.png` }]));
    expect(page).toMatchObject({ type: "image", mime_type: "text/html", extension: ".html" });
    expect(page!.data).toBeUndefined();
    expect(toImagePart(page!).image_url.url).toBe(`${remote}/page.png`);
  });

  it("non-image files are probed with HEAD: name from Content-Disposition, size from Content-Length", async () => {
    const cfg = { enabled: true, allowed_file_types: ["document"], allowed_file_upload_methods: ["remote_url"], number_limits: 3 };
    const files = await resolveRequestFiles(deps, args(u, [{ type: "document", transfer_method: "remote_url", url: `${remote}/report.pdf` }], { uploadConfig: cfg }));
    expect(files[0]).toMatchObject({ type: "document", filename: "Q3 report.pdf", extension: ".pdf", mime_type: "application/pdf", size: 12345 });
    expect(files[0]!.data).toBeUndefined();
    expect(remoteHits).toContain("HEAD /report.pdf");
  });

  it("remote errors, size caps and redirects to private addresses → 400", async () => {
    await invalidParam(resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/missing.png` }])), /returned HTTP 404/);
    const small = { ...deps, config: Object.freeze({ ...t.config, UPLOAD_IMAGE_FILE_SIZE_LIMIT: 1 }) };
    await invalidParam(resolveRequestFiles(small, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/huge.png` }])), /Remote file is too large \(limit 1 MB\)/);
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/to-private` }])),
      /^Access to private address 10\.0\.0\.1 is not allowed/,
    );
    await invalidParam(resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "remote_url", url: "file:///etc/passwd" }])), /only http and https/);
  });

  it("private and loopback addresses are refused under OUTBOUND_POLICY=public", async () => {
    const before = remoteHits.length;
    await invalidParam(
      resolveRequestFiles(publicDeps, args(u, [{ type: "image", transfer_method: "remote_url", url: "http://10.0.0.1/cat.png" }])),
      "Access to private address 10.0.0.1 is not allowed",
    );
    await invalidParam(
      resolveRequestFiles(publicDeps, args(u, [{ type: "image", transfer_method: "remote_url", url: "http://169.254.169.254/latest/meta-data/" }])),
      "Access to link-local address 169.254.169.254 is not allowed",
    );
    await invalidParam(
      resolveRequestFiles(publicDeps, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/cat.png` }])),
      "Access to loopback address 127.0.0.1 is not allowed",
    );
    expect(remoteHits.length).toBe(before);
  });

  it("a URL the config forbids is not fetched at all", async () => {
    const before = remoteHits.length;
    const localOnly = { image: { enabled: true, number_limits: 3, transfer_methods: ["local_file"] } };
    await invalidParam(
      resolveRequestFiles(deps, args(u, [{ type: "image", transfer_method: "remote_url", url: `${remote}/cat.png` }], { uploadConfig: localOnly })),
      "File validation failed for file: cat.png",
    );
    expect(remoteHits.length).toBe(before);
  });
});

describe("recordMessageFiles / loadMessageImages", () => {
  it("inserts message_files rows in order and reads the images back", async () => {
    const up = await upload("ivy", "i.png", "image/png", png);
    const files = await resolveRequestFiles(deps, args(up.endUserId, [
      { type: "image", transfer_method: "local_file", upload_file_id: up.id },
      { type: "image", transfer_method: "remote_url", url: `${remote}/cat.png` },
    ]));
    const message = await t.prisma.message.create({ data: { tenant_id: a.tenantId, app_id: a.appId, query: "q", from_end_user_id: up.endUserId } });
    const recorded = await recordMessageFiles(t.prisma, message.id, files, up.endUserId);
    expect(recorded).toHaveLength(2);
    const rows = await t.prisma.messageFile.findMany({ where: { message_id: message.id } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(recorded[0]!.id)).toMatchObject({ type: "image", transfer_method: "local_file", upload_file_id: up.id, url: null, belongs_to: "user", created_by_role: "end_user", created_by: up.endUserId });
    expect(byId.get(recorded[1]!.id)).toMatchObject({ type: "image", transfer_method: "remote_url", upload_file_id: null, url: `${remote}/cat.png`, belongs_to: "user", created_by_role: "end_user", created_by: up.endUserId });
    expect(await recordMessageFiles(t.prisma, message.id, [], up.endUserId)).toEqual([]);

    const images = await loadMessageImages({ prisma: t.prisma, storage: t.storage }, message.id, legacyImage);
    expect(images).toEqual([
      { type: "image_url", image_url: { url: `data:image/png;base64,${png.toString("base64")}`, detail: "high" } },
      { type: "image_url", image_url: { url: `${remote}/cat.png`, detail: "high" } },
    ]);
    // With a config, remote images are downloaded (policy-checked) and inlined.
    const inlined = await loadMessageImages({ prisma: t.prisma, storage: t.storage, config: t.config }, message.id, legacyImage);
    expect(inlined[1]!.image_url.url).toBe(`data:image/png;base64,${png.toString("base64")}`);
    // Feature off → no images.
    expect(await loadMessageImages({ prisma: t.prisma, storage: t.storage }, message.id, { image: { enabled: false } })).toEqual([]);
  });
});

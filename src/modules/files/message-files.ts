// The `files` array of generation requests (apps spec §5.6): file mappings are turned into
// resolved files the way Dify's file factory does it (`factories/file_factory`: build_from_mappings,
// validation.is_file_valid_with_config, FileUploadConfigManager.convert), with Dify's ValueError
// texts as 400 invalid_param messages. Remote URLs go through the SSRF-guarded safeFetch.
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Config } from "../../config/index.js";
import { Errors } from "../../lib/errors.js";
import { newId } from "../../lib/ids.js";
import { isOutboundError, safeFetch, type SafeFetchResponse } from "../../lib/outbound.js";
import type { Db } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import {
  AUDIO_EXTENSIONS,
  DOCUMENT_EXTENSIONS,
  IMAGE_EXTENSIONS,
  VIDEO_EXTENSIONS,
  limitBytes,
  mimeFromName,
  type FileService,
} from "./service.js";

export type FileType = "image" | "document" | "audio" | "video" | "custom";
export type RequestTransferMethod = "local_file" | "remote_url";

const FILE_TYPES: readonly FileType[] = ["image", "document", "audio", "video", "custom"];
const TRANSFER_METHODS = ["remote_url", "local_file", "tool_file", "datasource_file"] as const;

export interface ResolvedFile {
  /** Resolved type: the mapping's type, or (for "custom"/absent) the type detected from extension and mime type. */
  type: FileType;
  transfer_method: RequestTransferMethod;
  /** The upload_files row (local_file, or remote_url given by upload_file_id). */
  upload_file_id?: string;
  /** Same as upload_file_id (Dify's `related_id`). */
  related_id?: string;
  /** A link to the content: signed preview link for uploads, the remote URL otherwise. */
  url?: string;
  /** The remote URL (remote_url files). */
  remote_url?: string;
  filename: string;
  /** With the leading dot, as Dify's File.extension (".png"); "" when unknown. */
  extension: string;
  mime_type: string;
  /** Bytes; -1 when a remote server did not say. */
  size: number;
  /** The content, for images (to send to vision models). */
  data?: Buffer;
  /** `data:<mime>;base64,…` of `data`, for images. */
  dataUrl?: string;
}

/** Dify's FileUploadConfig (graphon), as FileUploadConfigManager.convert builds it. */
export interface FileUploadSettings {
  allowed_file_types: string[];
  allowed_file_extensions: string[];
  allowed_file_upload_methods: string[];
  /** 0 = no limit on the total. */
  number_limits: number;
  image_config: { number_limits: number; transfer_methods: string[]; detail: "high" | "low" | null } | null;
}

export interface MessageFileDeps {
  prisma: Db;
  config: Config;
  storage: Storage;
  fileService: Pick<FileService, "signedUrl">;
}

export interface ResolveRequestFilesArgs {
  tenantId: string;
  appId: string;
  endUserId: string;
  /** The app's `file_upload` feature object (model_config.file_upload or workflow features.file_upload). */
  uploadConfig: unknown;
  /** The request's `files` value, unvalidated. */
  files: unknown;
  /**
   * The app mode. Chat-family and completion apps ignore `files` when the feature is off; Dify's
   * workflow apps build them anyway without config checks (they become `sys.files`) and, for
   * Service API calls, validate the declared type strictly.
   */
  appMode?: string;
  /** Override the strict type check (default: appMode === "workflow"). */
  strictTypeValidation?: boolean;
  /** Deadline for each remote fetch (default REMOTE_FETCH_TIMEOUT_MS). */
  remoteTimeoutMs?: number;
  signal?: AbortSignal;
}

export const REMOTE_FETCH_TIMEOUT_MS = 30_000;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const pyTruthy = (v: unknown): boolean =>
  !(v === undefined || v === null || v === false || v === 0 || v === "" || (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.keys(v).length === 0));
const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
function intOr(v: unknown, def: number): number {
  if (typeof v === "number" && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === "string" && /^\s*[+-]?\d+\s*$/.test(v)) return Number.parseInt(v, 10);
  return def;
}
const detailOf = (v: unknown): "high" | "low" | null => (v === "high" || v === "low" ? v : null);

/** Python repr of a scalar, for Dify's enum messages (`'pdf' is not a valid FileType`). */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    return q + v.replace(/\\/g, "\\\\").replace(new RegExp(q, "g"), `\\${q}`).replace(/\n/g, "\\n") + q;
  }
  if (typeof v === "number") return String(v);
  return JSON.stringify(v);
}

/**
 * The app's file_upload feature as Dify's FileUploadConfigManager.convert reads it; null when the
 * feature is off. The newer shape needs `enabled`; the pre-0.1.3 `image` block (`image.enabled`)
 * is converted the way Dify's Workflow.features getter does (image files only, its number limit
 * and transfer methods).
 */
export function parseUploadConfig(uploadConfig: unknown): FileUploadSettings | null {
  if (!isObj(uploadConfig) || !pyTruthy(uploadConfig)) return null;
  const fu = uploadConfig;
  const image = isObj(fu.image) ? fu.image : {};
  if (pyTruthy(fu.enabled)) {
    const methods = strList(fu.allowed_file_upload_methods);
    return {
      allowed_file_types: strList(fu.allowed_file_types),
      allowed_file_extensions: strList(fu.allowed_file_extensions),
      allowed_file_upload_methods: methods,
      number_limits: intOr(fu.number_limits, 0),
      image_config: { number_limits: intOr(fu.number_limits, 1), transfer_methods: methods, detail: detailOf(image.detail) ?? "high" },
    };
  }
  if (pyTruthy(image.enabled)) {
    const n = intOr(image.number_limits, 3);
    const methods = image.transfer_methods === undefined ? ["remote_url", "local_file"] : strList(image.transfer_methods);
    return {
      allowed_file_types: fu.allowed_file_types === undefined ? ["image"] : strList(fu.allowed_file_types),
      allowed_file_extensions: strList(fu.allowed_file_extensions),
      allowed_file_upload_methods: methods,
      number_limits: n,
      image_config: { number_limits: n, transfer_methods: methods, detail: detailOf(image.detail) ?? "high" },
    };
  }
  return null;
}

/**
 * The `detail` to send images with. Basic apps (model_config, `isVision`) default to "high" as
 * FileUploadConfigManager.convert does; graph apps carry no detail and the runner falls back to "low".
 */
export function imageDetail(uploadConfig: unknown, opts: { isVision?: boolean } = {}): "high" | "low" {
  const isVision = opts.isVision ?? true;
  const image = isObj(uploadConfig) && isObj(uploadConfig.image) ? uploadConfig.image : {};
  if (!isVision) return "low";
  return detailOf(image.detail) ?? "high";
}

// ---- type detection (graphon standardize_file_type)

const EXT_FOR_MIME: Record<string, string> = {
  "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp", "image/svg+xml": ".svg",
  "image/bmp": ".bmp", "image/tiff": ".tiff", "image/x-icon": ".ico", "image/avif": ".avif", "image/heic": ".heic",
  "video/mp4": ".mp4", "video/quicktime": ".mov", "video/mpeg": ".mpeg", "video/webm": ".webm",
  "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/amr": ".amr", "audio/ogg": ".ogg",
  "text/plain": ".txt", "text/markdown": ".md", "text/html": ".html", "text/csv": ".csv", "text/vtt": ".vtt",
  "application/pdf": ".pdf", "application/json": ".json", "application/xml": ".xml", "text/xml": ".xml",
  "application/msword": ".doc", "application/vnd.ms-excel": ".xls", "application/vnd.ms-powerpoint": ".ppt",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
  "application/epub+zip": ".epub", "message/rfc822": ".eml", "application/zip": ".zip",
};

function typeByExtension(extension: string): FileType | null {
  const e = extension.replace(/^\./, "").toLowerCase();
  if (!e) return null;
  if (IMAGE_EXTENSIONS.includes(e)) return "image";
  if (VIDEO_EXTENSIONS.includes(e)) return "video";
  if (AUDIO_EXTENSIONS.includes(e)) return "audio";
  if (DOCUMENT_EXTENSIONS.includes(e)) return "document";
  return null;
}

function typeByMime(mime: string): FileType {
  if (mime.includes("image")) return "image";
  if (mime.includes("video")) return "video";
  if (mime.includes("audio")) return "audio";
  if (mime.includes("text") || mime.includes("pdf")) return "document";
  return "custom";
}

/** Dify's standardize_file_type: by extension first, then by mime type, else custom. */
export function detectFileType(extension: string, mimeType: string): FileType {
  return typeByExtension(extension) ?? (mimeType ? typeByMime(mimeType) : "custom");
}

/** The image mime type from the first bytes, or null. */
export function sniffImageMime(data: Buffer): string | null {
  if (data.length >= 8 && data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "image/png";
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return "image/jpeg";
  if (data.length >= 6 && (data.subarray(0, 6).toString("latin1") === "GIF87a" || data.subarray(0, 6).toString("latin1") === "GIF89a")) return "image/gif";
  if (data.length >= 12 && data.subarray(0, 4).toString("latin1") === "RIFF" && data.subarray(8, 12).toString("latin1") === "WEBP") return "image/webp";
  if (data.length >= 2 && data[0] === 0x42 && data[1] === 0x4d) return "image/bmp";
  if (data.length >= 12 && data.subarray(4, 8).toString("latin1") === "ftyp" && /^(avif|avis)$/.test(data.subarray(8, 12).toString("latin1"))) return "image/avif";
  const head = data.subarray(0, 1024).toString("utf8").trimStart().toLowerCase();
  if (head.startsWith("<svg") || (head.startsWith("<?xml") && head.includes("<svg"))) return "image/svg+xml";
  return null;
}

const guessMime = (filename: string): string => {
  const ext = path.extname(filename).slice(1);
  if (!ext) return "";
  const m = mimeFromName(ext);
  return m === "application/octet-stream" ? "" : m;
};

// ---- file validation (factories/file_factory/validation.py)

const normExt = (e: string): string => {
  const s = e.trim().toLowerCase();
  return s.startsWith(".") ? s : `.${s}`;
};

/**
 * is_file_valid_with_config. `inputType` is the mapping's declared type ("custom" when absent).
 * Deviation: extensions compare case-insensitively and with or without the leading dot (Dify
 * compares ".png" to the configured strings verbatim, so ".PNG" in a config never matches).
 */
export function isFileValidWithConfig(inputType: unknown, extension: string, transferMethod: string, s: FileUploadSettings): boolean {
  if (s.allowed_file_types.length && !s.allowed_file_types.includes(inputType as string) && inputType !== "custom") return false;
  if (inputType === "custom" && !s.allowed_file_extensions.map(normExt).includes(normExt(extension))) return false;
  if (inputType === "image") {
    if (s.image_config && s.image_config.transfer_methods.length && !s.image_config.transfer_methods.includes(transferMethod)) return false;
  } else if (s.allowed_file_upload_methods.length && !s.allowed_file_upload_methods.includes(transferMethod)) {
    return false;
  }
  return true;
}

// ---- building files (factories/file_factory/builders.py)

/** Python's uuid.UUID() input forms (hyphens optional, braces, urn:uuid:) → canonical form, or null. */
function canonicalUuid(v: string): string | null {
  let s = v.trim().replace(/^urn:/i, "").replace(/^uuid:/i, "");
  s = s.replace(/^\{|\}$/g, "").replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(s)) return null;
  s = s.toLowerCase();
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** resolve_mapping_file_id: first non-empty string under the key, `reference` or `related_id`. */
function mappingFileId(m: Record<string, unknown>, key: string): string | null {
  for (const k of [key, "reference", "related_id"]) {
    const v = m[k];
    if (typeof v === "string" && v) return v;
  }
  return null;
}

const invalid = (msg: string) => Errors.invalidParam(msg);

/** _resolve_file_type, with the enum check Dify's FileType(...) does. */
function resolveType(detected: FileType, specified: unknown, strict: boolean): FileType {
  if (strict && pyTruthy(specified) && detected !== specified) {
    throw invalid("Detected file type does not match the specified type. Please verify the file.");
  }
  if (pyTruthy(specified) && specified !== "custom") {
    if (!FILE_TYPES.includes(specified as FileType)) throw invalid(`${pyRepr(specified)} is not a valid FileType`);
    return specified as FileType;
  }
  return detected;
}

/** The type checks that need no file: run before a remote fetch so a doomed URL is never fetched. */
function precheckType(specified: unknown, strict: boolean): void {
  if (pyTruthy(specified) && specified !== "custom" && !FILE_TYPES.includes(specified as FileType)) {
    if (strict) throw invalid("Detected file type does not match the specified type. Please verify the file.");
    throw invalid(`${pyRepr(specified)} is not a valid FileType`);
  }
}

interface BuildCtx {
  deps: MessageFileDeps;
  tenantId: string;
  endUserId: string;
  settings: FileUploadSettings | null;
  strict: boolean;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

const inputTypeOf = (m: Record<string, unknown>): unknown => (m.type === undefined ? "custom" : m.type);

function checkConfig(ctx: BuildCtx, m: Record<string, unknown>, file: { filename: string; extension: string; transfer_method: string }): void {
  if (ctx.settings && !isFileValidWithConfig(inputTypeOf(m), file.extension, file.transfer_method, ctx.settings)) {
    throw invalid(`File validation failed for file: ${file.filename}`);
  }
}

/** Images get their bytes (for vision models) when the content really is an image. */
async function withImageData(ctx: BuildCtx, file: ResolvedFile, key: string): Promise<ResolvedFile> {
  if (file.type !== "image") return file;
  const data = await ctx.deps.storage.load(key);
  const mime = sniffImageMime(data) ?? (file.mime_type.startsWith("image/") ? file.mime_type : null);
  if (!mime) return file;
  return { ...file, data, dataUrl: `data:${mime};base64,${data.toString("base64")}` };
}

/** The upload row this end user may use: same workspace AND uploaded by this end user (newest Dify). */
async function findUpload(ctx: BuildCtx, rawId: string | null) {
  if (!rawId) throw invalid("Invalid upload file id");
  const id = canonicalUuid(rawId);
  if (!id) throw invalid("Invalid upload file id format");
  const row = await ctx.deps.prisma.uploadFile.findFirst({
    where: { id, tenant_id: ctx.tenantId, created_by_role: "end_user", created_by: ctx.endUserId },
  });
  if (!row) throw invalid("Invalid upload file");
  return row;
}

async function buildLocal(ctx: BuildCtx, m: Record<string, unknown>): Promise<ResolvedFile> {
  const row = await findUpload(ctx, mappingFileId(m, "upload_file_id"));
  const extension = row.extension ? `.${row.extension}` : "";
  const mime = row.mime_type ?? "";
  const type = resolveType(detectFileType(extension, mime), m.type === undefined ? "custom" : m.type, ctx.strict);
  const file: ResolvedFile = {
    type,
    transfer_method: "local_file",
    upload_file_id: row.id,
    related_id: row.id,
    url: ctx.deps.fileService.signedUrl(row.id),
    ...(row.source_url ? { remote_url: row.source_url } : {}),
    filename: row.name,
    extension,
    mime_type: mime,
    size: row.size,
  };
  checkConfig(ctx, m, file);
  return withImageData(ctx, file, row.key);
}

/** Filename from Content-Disposition (filename* first), else null. */
function dispositionFilename(cd: string | undefined): string | null {
  if (!cd) return null;
  const star = /filename\*\s*=\s*([^;]+)/i.exec(cd);
  let name: string | null = null;
  if (star) {
    const raw = star[1]!.trim().replace(/^"|"$/g, "");
    const parts = raw.split("'");
    const value = parts.length >= 3 ? parts.slice(2).join("'") : raw;
    try {
      name = decodeURIComponent(value);
    } catch {
      name = value;
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(cd);
    if (plain) name = (plain[2] ?? plain[1] ?? "").trim();
    if (name) {
      try {
        name = decodeURIComponent(name);
      } catch {
        /* keep as is */
      }
    }
  }
  name = name ? path.posix.basename(name.replace(/\\/g, "/")) : null;
  return name && name.trim() ? name : null;
}

function urlFilename(u: URL): string | null {
  const base = path.posix.basename(u.pathname);
  if (!base) return null;
  try {
    return decodeURIComponent(base) || null;
  } catch {
    return base;
  }
}

async function fetchRemote(ctx: BuildCtx, url: string, method: "GET" | "HEAD", maxBytes: number): Promise<SafeFetchResponse> {
  try {
    return await safeFetch(url, {
      policy: ctx.deps.config.OUTBOUND_POLICY,
      method,
      maxBytes,
      timeoutMs: ctx.timeoutMs,
      maxRedirects: 3,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } catch (e) {
    if (isOutboundError(e)) {
      if (e.code === "too_large") throw invalid(`Remote file is too large (limit ${Math.round(maxBytes / 1024 / 1024)} MB): ${url}`);
      throw invalid(e.message);
    }
    throw e;
  }
}

const category = (t: FileType) => (t === "custom" ? "document" : t);

async function buildRemote(ctx: BuildCtx, m: Record<string, unknown>): Promise<ResolvedFile> {
  // Newest Dify: a remote_url mapping may name an upload instead of a URL.
  const uploadId = mappingFileId(m, "upload_file_id");
  if (uploadId) {
    const row = await findUpload(ctx, uploadId);
    const extension = row.extension ? `.${row.extension}` : "";
    const mime = row.mime_type ?? "";
    const signed = ctx.deps.fileService.signedUrl(row.id);
    const file: ResolvedFile = {
      type: resolveType(detectFileType(extension, mime), m.type, ctx.strict),
      transfer_method: "remote_url",
      upload_file_id: row.id,
      related_id: row.id,
      url: signed,
      remote_url: signed,
      filename: row.name,
      extension,
      mime_type: mime,
      size: row.size,
    };
    checkConfig(ctx, m, file);
    return withImageData(ctx, file, row.key);
  }

  const raw = typeof m.url === "string" && m.url ? m.url : typeof m.remote_url === "string" ? m.remote_url : "";
  if (!raw) throw invalid("Invalid file url");
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid(`Invalid file url: ${raw}`);
  }

  // What the URL alone says; enough to refuse a mapping the config forbids before fetching anything.
  let filename = urlFilename(u);
  let mime = filename ? guessMime(filename) : "";
  const urlExt = filename ? path.extname(filename) : "";
  precheckType(m.type, ctx.strict);
  // (For "custom" the check needs the extension, which may only be known after the fetch.)
  if (inputTypeOf(m) !== "custom") checkConfig(ctx, m, { filename: filename ?? "", extension: urlExt, transfer_method: "remote_url" });

  const expected: FileType = pyTruthy(m.type) && m.type !== "custom" ? (m.type as FileType) : detectFileType(urlExt, mime);
  const limit = limitBytes(ctx.deps.config, category(expected));

  let res: SafeFetchResponse;
  let data: Buffer | undefined;
  if (expected === "image") {
    res = await fetchRemote(ctx, raw, "GET", limit);
    if (res.status >= 200 && res.status < 300) data = res.body;
  } else {
    res = await fetchRemote(ctx, raw, "HEAD", limit);
    if (res.status === 405 || res.status === 501) res = await fetchRemote(ctx, raw, "GET", limit);
  }
  if (res.status < 200 || res.status >= 300) throw invalid(`Failed to fetch remote file: ${raw} returned HTTP ${res.status}`);

  const cdName = dispositionFilename(res.headers["content-disposition"]);
  if (cdName) {
    filename = cdName;
    mime = guessMime(cdName);
  }
  let size = data ? data.length : Number.parseInt(res.headers["content-length"] ?? "", 10);
  if (!Number.isFinite(size)) size = -1;
  if (size > limit) throw invalid(`Remote file is too large (limit ${Math.round(limit / 1024 / 1024)} MB): ${raw}`);
  const headerMime = (res.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  const sniffed = data ? sniffImageMime(data) : null;
  // Downloaded bytes that are no known image: the server's Content-Type beats a guess from the name.
  mime = sniffed ?? (data && headerMime ? headerMime : mime || headerMime);
  const extension = EXT_FOR_MIME[mime] ?? (filename && path.extname(filename) ? path.extname(filename) : ".bin");
  if (!filename) filename = `${randomBytes(16).toString("hex")}${extension}`;

  const type = resolveType(detectFileType(extension, mime), m.type, ctx.strict);
  const file: ResolvedFile = {
    type,
    transfer_method: "remote_url",
    url: raw,
    remote_url: raw,
    filename,
    extension,
    mime_type: mime,
    size,
  };
  checkConfig(ctx, m, file);
  // A declared image whose bytes are no image (an HTML error page…) keeps only its URL.
  if (type === "image" && data && mime.startsWith("image/")) {
    file.data = data;
    file.dataUrl = `data:${mime || "application/octet-stream"};base64,${data.toString("base64")}`;
  }
  return file;
}

async function buildOne(ctx: BuildCtx, m: Record<string, unknown>): Promise<ResolvedFile> {
  const method = m.transfer_method;
  if (!(TRANSFER_METHODS as readonly unknown[]).includes(method)) throw invalid(`${pyRepr(method)} is not a valid FileTransferMethod`);
  if (method === "local_file") return buildLocal(ctx, m);
  if (method === "remote_url") return buildRemote(ctx, m);
  // tool_file / datasource_file: Servify has no tool files a Service API caller could name.
  const key = method === "tool_file" ? "tool_file_id" : "datasource_file_id";
  const label = method === "tool_file" ? "ToolFile" : "DatasourceFile";
  throw invalid(`${label} ${mappingFileId(m, key) ?? "None"} not found`);
}

/** _is_valid_mapping: empty mappings, mappings without transfer_method and URL-less remote mappings are skipped. */
function isUsableMapping(m: Record<string, unknown>): boolean {
  if (!pyTruthy(m) || !pyTruthy(m.transfer_method)) return false;
  if (m.transfer_method === "remote_url" && !pyTruthy(m.url) && !pyTruthy(m.remote_url)) return false;
  return true;
}

function countLimitMessage(s: FileUploadSettings, images: number, total: number): string | null {
  if (s.image_config && images > s.image_config.number_limits) {
    return `Number of image files exceeds the maximum limit ${s.image_config.number_limits}`;
  }
  if (s.number_limits && total > s.number_limits) return `Number of files exceeds the maximum limit ${s.number_limits}`;
  return null;
}

/**
 * build_from_mappings: validates and resolves a list of file mappings under `settings` (null =
 * no config checks). Exposed for file-typed input variables as well.
 */
export async function buildFilesFromMappings(
  deps: MessageFileDeps,
  args: {
    tenantId: string;
    endUserId: string;
    settings: FileUploadSettings | null;
    mappings: Record<string, unknown>[];
    strictTypeValidation?: boolean;
    remoteTimeoutMs?: number;
    signal?: AbortSignal;
  },
): Promise<ResolvedFile[]> {
  const ctx: BuildCtx = {
    deps,
    tenantId: args.tenantId,
    endUserId: args.endUserId,
    settings: args.settings,
    strict: args.strictTypeValidation ?? false,
    timeoutMs: args.remoteTimeoutMs ?? REMOTE_FETCH_TIMEOUT_MS,
    signal: args.signal,
  };
  const usable = args.mappings.filter(isUsableMapping);
  // Count check up front (by declared types) so an over-long list costs no lookups or fetches;
  // the exact check on the resolved types follows, as in Dify.
  if (ctx.settings) {
    const msg = countLimitMessage(ctx.settings, usable.filter((m) => m.type === "image").length, usable.length);
    if (msg) throw invalid(msg);
  }
  const files: ResolvedFile[] = [];
  for (const m of usable) files.push(await buildOne(ctx, m));
  if (ctx.settings) {
    const msg = countLimitMessage(ctx.settings, files.filter((f) => f.type === "image").length, files.length);
    if (msg) throw invalid(msg);
  }
  return files;
}

/**
 * The `files` of a generation request (apps spec §5.6) → resolved files. null / [] → []. With the
 * app's file_upload feature off the files are ignored (chat, agent-chat, completion,
 * advanced-chat) or built without config checks (workflow). Every problem is a 400 invalid_param
 * DifyError with Dify's message.
 */
export async function resolveRequestFiles(deps: MessageFileDeps, args: ResolveRequestFilesArgs): Promise<ResolvedFile[]> {
  const raw = args.files;
  if (!pyTruthy(raw)) return [];
  if (!Array.isArray(raw)) throw invalid("files: Input should be a valid list");
  raw.forEach((m, i) => {
    if (!isObj(m)) throw invalid(`files.${i}: Input should be a valid dictionary`);
  });
  const mappings = raw as Record<string, unknown>[];
  const settings = parseUploadConfig(args.uploadConfig);
  const isWorkflow = args.appMode === "workflow";
  if (!settings && !isWorkflow) return [];
  return buildFilesFromMappings(deps, {
    tenantId: args.tenantId,
    endUserId: args.endUserId,
    settings,
    mappings,
    strictTypeValidation: args.strictTypeValidation ?? isWorkflow,
    ...(args.remoteTimeoutMs !== undefined ? { remoteTimeoutMs: args.remoteTimeoutMs } : {}),
    ...(args.signal ? { signal: args.signal } : {}),
  });
}

export interface ImagePart {
  type: "image_url";
  image_url: { url: string; detail: "high" | "low" };
}

/**
 * An OpenAI-style image part: the base64 data URL when the bytes are at hand, else the remote
 * URL. `detail` defaults to "low" (Dify's runtime fallback); pass imageDetail(uploadConfig).
 */
export function toImagePart(file: ResolvedFile, detail: "high" | "low" = "low"): ImagePart {
  const url = file.dataUrl ?? (file.data ? `data:${file.mime_type || "application/octet-stream"};base64,${file.data.toString("base64")}` : file.remote_url ?? file.url);
  if (!url) throw new Error(`file ${file.filename} has neither content nor URL`);
  return { type: "image_url", image_url: { url, detail } };
}

export interface RecordedMessageFile {
  id: string;
  message_id: string;
  type: string;
  transfer_method: string;
  url: string | null;
  upload_file_id: string | null;
}

/**
 * Inserts a message_files row per user file (belongs_to "user", created_by_role "end_user"), in
 * order, as Dify's _init_generate_records does (url = the remote URL; upload_file_id = the upload).
 */
export async function recordMessageFiles(db: Db, messageId: string, files: readonly ResolvedFile[], endUserId: string): Promise<RecordedMessageFile[]> {
  if (files.length === 0) return [];
  // Distinct, increasing timestamps keep the request order readable back (ORDER BY created_at).
  const t0 = Date.now();
  const rows = files.map((f, i) => ({
    id: newId(),
    message_id: messageId,
    type: f.type,
    transfer_method: f.transfer_method,
    url: f.transfer_method === "remote_url" ? (f.remote_url ?? f.url ?? null) : null,
    belongs_to: "user",
    upload_file_id: f.upload_file_id ?? null,
    created_by_role: "end_user",
    created_by: endUserId,
    created_at: new Date(t0 + i),
  }));
  await db.messageFile.createMany({ data: rows });
  return rows.map(({ id, message_id, type, transfer_method, url, upload_file_id }) => ({ id, message_id, type, transfer_method, url, upload_file_id }));
}

export interface LoadImagesDeps {
  prisma: Db;
  storage: Storage;
  /** When given, remote images are downloaded through safeFetch (this config's policy and image size limit) and inlined as base64; otherwise (or when the download fails) the remote URL is sent. */
  config?: Config;
}

/**
 * The image parts of the user files recorded for each message (message_files, belongs_to "user"),
 * in insertion order, for prompts built by the worker. `uploadConfig` is the app's file_upload
 * feature: when it is off no images are returned (Dify rebuilds message files through the current
 * config), and its image detail is used (imageDetail, basic apps). Uploads whose content is gone
 * from storage are skipped.
 */
export async function loadImagesForMessages(
  deps: LoadImagesDeps,
  messageIds: readonly string[],
  uploadConfig: unknown,
  opts: { isVision?: boolean; signal?: AbortSignal } = {},
): Promise<Map<string, ImagePart[]>> {
  const out = new Map<string, ImagePart[]>(messageIds.map((id) => [id, []]));
  if (messageIds.length === 0 || !parseUploadConfig(uploadConfig)) return out;
  const detail = imageDetail(uploadConfig, { isVision: opts.isVision ?? true });
  const rows = await deps.prisma.messageFile.findMany({
    where: { message_id: { in: [...messageIds] }, belongs_to: "user", type: "image" },
    orderBy: [{ created_at: "asc" }, { id: "asc" }],
    select: { id: true, message_id: true, transfer_method: true, url: true, upload_file_id: true, message: { select: { tenant_id: true } } },
  });
  const uploadIds = rows.map((r) => r.upload_file_id).filter((x): x is string => !!x);
  const uploads = uploadIds.length ? await deps.prisma.uploadFile.findMany({ where: { id: { in: uploadIds } } }) : [];
  const byId = new Map(uploads.map((u) => [u.id, u]));
  for (const r of rows) {
    let part: ImagePart | null = null;
    const up = r.upload_file_id ? byId.get(r.upload_file_id) : undefined;
    if (up && up.tenant_id === r.message.tenant_id) {
      try {
        const data = await deps.storage.load(up.key);
        const mime = sniffImageMime(data) ?? up.mime_type ?? "application/octet-stream";
        part = { type: "image_url", image_url: { url: `data:${mime};base64,${data.toString("base64")}`, detail } };
      } catch {
        part = null;
      }
    } else if (r.transfer_method === "remote_url" && r.url) {
      part = { type: "image_url", image_url: { url: r.url, detail } };
      if (deps.config) {
        try {
          const res = await safeFetch(r.url, {
            policy: deps.config.OUTBOUND_POLICY,
            maxBytes: limitBytes(deps.config, "image"),
            timeoutMs: REMOTE_FETCH_TIMEOUT_MS,
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
          if (res.status >= 200 && res.status < 300) {
            const mime = sniffImageMime(res.body) ?? ((res.headers["content-type"] ?? "").split(";")[0]!.trim() || "application/octet-stream");
            part = { type: "image_url", image_url: { url: `data:${mime};base64,${res.body.toString("base64")}`, detail } };
          }
        } catch {
          /* keep the URL */
        }
      }
    }
    if (part) out.get(r.message_id)?.push(part);
  }
  return out;
}

/** loadImagesForMessages for one message. */
export async function loadMessageImages(
  deps: LoadImagesDeps,
  messageId: string,
  uploadConfig: unknown,
  opts: { isVision?: boolean; signal?: AbortSignal } = {},
): Promise<ImagePart[]> {
  return (await loadImagesForMessages(deps, [messageId], uploadConfig, opts)).get(messageId) ?? [];
}

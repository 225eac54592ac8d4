// http-request (dsl-and-workflow §4.10). Every request goes through the SSRF guard
// (src/lib/outbound.ts, policy config.OUTBOUND_POLICY): each resolved address and each redirect
// hop is checked. Retries are the engine's (§3.9); a non-2xx status fails the node only when it
// has an error strategy or retry enabled.
import { randomBytes } from "node:crypto";
import chardet from "chardet";
import { jsonrepair } from "jsonrepair";
import { isOutboundError, safeFetch, type SafeFetchResponse } from "../../../lib/outbound.js";
import { detectFileType } from "../../files/message-files.js";
import { createFileService, mimeFromName } from "../../files/service.js";
import { isFile } from "../variable-pool.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult, type WorkflowFile } from "../types.js";

/** §3.10: Dify's HTTP_REQUEST_NODE_MAX_TEXT_SIZE / MAX_BINARY_SIZE. */
export const MAX_TEXT_SIZE = 1024 * 1024;
export const MAX_BINARY_SIZE = 10 * 1024 * 1024;
/** §3.10 server maxima in seconds (timeouts of 0/absent use them). */
const MAX_CONNECT_S = 10;
const MAX_READ_S = 600;
const MAX_WRITE_S = 600;
const MAX_REDIRECTS = 10;

const METHODS = new Set(["get", "post", "put", "patch", "delete", "head"]);
const BODY_CONTENT_TYPE: Record<string, string> = {
  json: "application/json",
  "x-www-form-urlencoded": "application/x-www-form-urlencoded",
  "form-data": "multipart/form-data",
  "raw-text": "text/plain",
};

interface BodyItem {
  key?: string;
  type?: string;
  value?: string;
  file?: string[];
}

interface HttpData {
  method?: string;
  url?: string;
  authorization?: { type?: string; config?: { type?: string; api_key?: string; header?: string } | null } | null;
  headers?: string;
  params?: string;
  body?: { type?: string; data?: BodyItem[] | string } | null;
  timeout?: Record<string, number | null | undefined> | null;
  ssl_verify?: boolean | null;
  error_strategy?: string | null;
  retry_config?: { retry_enabled?: boolean } | null;
}

export class HttpRequestNodeError extends NodeError {}

const fail = (message: string, type = "HttpRequestNodeError") => new HttpRequestNodeError(message, type);

/** Dify `_plain_text_to_dict`: one `key:value` per line, split at the first colon, trimmed. */
function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf(":");
    const [k, v] = i === -1 ? [line, ""] : [line.slice(0, i), line.slice(i + 1)];
    out[k.trim()] = v.trim();
  }
  return out;
}

/** Body data as a list; legacy string bodies (§1.9) become items. */
function bodyItems(body: HttpData["body"]): BodyItem[] {
  const data = body?.data;
  if (Array.isArray(data)) return data;
  if (typeof data !== "string") return [];
  if (body?.type === "form-data" || body?.type === "x-www-form-urlencoded") {
    return data
      .split(/\r?\n/)
      .filter((l) => l.trim())
      .map((l) => {
        const i = l.indexOf(":");
        return { type: "text", key: i === -1 ? l.trim() : l.slice(0, i).trim(), value: i === -1 ? "" : l.slice(i + 1).trim() };
      });
  }
  return [{ type: "text", key: "", value: data }];
}

function timeoutSeconds(t: HttpData["timeout"], keys: string[], max: number): number {
  for (const k of keys) {
    const v = t?.[k];
    if (typeof v === "number" && v > 0) return Math.min(v, max);
  }
  return max;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The bytes of a file value: uploads/tool files from storage, remote files through the SSRF guard. */
export async function loadFileBytes(file: WorkflowFile, ctx: NodeContext): Promise<Buffer> {
  if (file.transfer_method === "remote_url" && file.remote_url && !file.related_id) {
    const res = await safeFetch(file.remote_url, { policy: ctx.services.config.OUTBOUND_POLICY, maxBytes: MAX_BINARY_SIZE, timeoutMs: 60_000, signal: ctx.signal });
    return res.body;
  }
  if (!file.related_id) throw fail(`File ${file.filename ?? ""} has no content`);
  const row = await ctx.services.prisma.uploadFile.findUnique({ where: { id: file.related_id } });
  if (!row || row.tenant_id !== ctx.run.tenantId) throw fail(`File ${file.related_id} not found`);
  return ctx.services.storage.load(row.key);
}

interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

function multipart(parts: Part[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  const q = (s: string) => s.replace(/"/g, "%22").replace(/\r|\n/g, " ");
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${q(p.name)}"`;
    if (p.filename !== undefined) head += `; filename="${q(p.filename)}"`;
    head += "\r\n";
    if (p.contentType) head += `Content-Type: ${p.contentType}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), p.data, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const urlencode = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

// ------------------------------------------------------------------ response classification

function parseContentDisposition(v: string | undefined): { type: string; filename: string | null } | null {
  if (!v) return null;
  const type = v.split(";")[0]!.trim().toLowerCase();
  let filename: string | null = null;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(v);
  if (star) {
    try {
      filename = decodeURIComponent(star[2]!.trim());
    } catch {
      filename = star[2]!.trim();
    }
  } else {
    const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(v);
    if (plain) filename = (plain[2] ?? plain[1]!).trim();
  }
  return { type, filename };
}

/** Dify `Response.is_file` (§4.10). */
export function isFileResponse(headers: Record<string, string>, body: Buffer): boolean {
  const cd = parseContentDisposition(headers["content-disposition"]);
  if (cd && (cd.type === "attachment" || cd.filename !== null)) return true;
  const ct = (headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (ct.startsWith("text/") && !ct.includes("csv")) return false;
  if (ct.startsWith("application/")) {
    if (["json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "graphql"].some((t) => ct.includes(t))) return false;
    // Sniff: a sample that decodes as UTF-8 is text.
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(0, 1024));
      return false;
    } catch {
      return true;
    }
  }
  if (ct === "text/csv") return true;
  return ["image/", "audio/", "video/"].some((m) => ct.includes(m));
}

/** Text with the declared charset, else UTF-8, else a detected encoding. */
export function decodeText(body: Buffer, contentType: string | undefined): string {
  const declared = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? "")?.[1];
  if (declared) {
    try {
      return new TextDecoder(declared).decode(body);
    } catch {
      /* unknown label: fall through */
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    const guess = chardet.detect(body);
    try {
      return new TextDecoder(guess ?? "latin1").decode(body);
    } catch {
      return new TextDecoder("utf-8").decode(body);
    }
  }
}

const EXT_BY_MIME: Record<string, string> = {
  "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "image/svg+xml": "svg",
  "application/pdf": "pdf", "text/csv": "csv", "audio/mpeg": "mp3", "audio/wav": "wav", "video/mp4": "mp4",
  "application/zip": "zip", "application/msword": "doc", "application/vnd.ms-excel": "xls",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
  "application/octet-stream": "bin",
};

const readableSize = (n: number) => (n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(2)} KB` : `${(n / 1024 / 1024).toFixed(2)} MB`);

async function responseFile(res: SafeFetchResponse, url: string, ctx: NodeContext): Promise<WorkflowFile> {
  const cd = parseContentDisposition(res.headers["content-disposition"]);
  const cdExt = cd?.filename ? (cd.filename.split(".").pop() ?? "").toLowerCase() : "";
  const cdMime = cd?.filename && cd.filename.includes(".") && mimeFromName(cdExt) !== "application/octet-stream" ? mimeFromName(cdExt) : null;
  const urlName = url.split("?")[0]!.split("/").pop() ?? "";
  const ct = (res.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  const mime = cdMime ?? (ct || null) ?? (urlName.includes(".") ? mimeFromName(urlName.split(".").pop()!) : "application/octet-stream");
  const ext = (cdMime ? cdExt : EXT_BY_MIME[mime]) ?? (mime.split("/")[1]?.replace(/[^a-z0-9]/g, "").slice(0, 10) || "bin");
  // Dify stores a response file as a tool file named `<uuid><ext>`; ours is an upload_files row.
  const files = createFileService({ prisma: ctx.services.prisma, storage: ctx.services.storage, config: ctx.services.config });
  const id = randomBytes(16).toString("hex");
  const name = cd?.filename || `${id}.${ext}`;
  const row = await files.save({
    tenantId: ctx.run.tenantId,
    appId: ctx.run.appId,
    createdByRole: "end_user",
    createdBy: ctx.run.endUserId || null,
    name,
    extension: ext,
    mimeType: mime,
    data: res.body,
  });
  return {
    dify_model_identity: "__dify__file__",
    id: null,
    tenant_id: ctx.run.tenantId,
    type: detectFileType(ext, mime),
    transfer_method: "tool_file",
    remote_url: null,
    related_id: row.id,
    filename: name,
    extension: `.${ext}`,
    mime_type: mime,
    size: res.body.length,
    url: files.signedUrl(row.id),
  };
}

// ------------------------------------------------------------------ the node

export const httpRequestNode: NodeImplementation = {
  types: ["http-request"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as GraphNode["data"] & HttpData;
    const pool = ctx.pool;
    const method = String(data.method ?? "get").toLowerCase();
    if (!METHODS.has(method)) throw fail(`Invalid http method ${method}`, "InvalidHttpMethodError");

    const url = pool.renderTemplate(String(data.url ?? ""));
    if (!url) throw fail("url is required", "InvalidURLError");
    if (!url.startsWith("http://") && !url.startsWith("https://")) throw fail("URL must start with http:// or https://", "InvalidURLError");

    // Headers are rendered as a whole; params key/value separately, repeated keys kept (§4.10).
    const headers = parseHeaders(pool.renderTemplate(String(data.headers ?? "")));
    const params: [string, string][] = [];
    for (const raw of String(data.params ?? "").split(/\r\n|\r|\n/)) {
      const line = raw.trim();
      if (!line) continue;
      const i = line.indexOf(":");
      const key = (i === -1 ? line : line.slice(0, i)).trim();
      if (!key) continue;
      params.push([pool.renderTemplate(key), pool.renderTemplate(i === -1 ? "" : line.slice(i + 1).trim())]);
    }

    // Authorization.
    const auth = data.authorization;
    let authHeader: string | null = null;
    if (auth?.type === "api-key") {
      const cfg = auth.config;
      if (!cfg) throw fail("authorization config is required", "AuthorizationConfigError");
      const key = pool.renderTemplate(String(cfg.api_key ?? ""));
      if (!key) throw fail("API key is required", "AuthorizationConfigError");
      authHeader = cfg.header || "Authorization";
      if (cfg.type === "bearer") headers[authHeader] = `Bearer ${key}`;
      else if (cfg.type === "basic") headers[authHeader] = `Basic ${key.includes(":") ? Buffer.from(key, "utf8").toString("base64") : key}`;
      else headers[authHeader] = key;
    }

    // Body.
    const bodyType = data.body?.type ?? "none";
    const items = bodyItems(data.body);
    const hasContentType = () => Object.keys(headers).some((k) => k.toLowerCase() === "content-type");
    let body: Buffer | undefined;
    let bodyLog = "";
    const boundary = `----WebKitFormBoundary${randomBytes(8).toString("hex")}`;
    switch (bodyType) {
      case "none":
        break;
      case "raw-text": {
        if (items.length !== 1) throw fail("raw-text body type should have exactly one item", "RequestBodyError");
        bodyLog = pool.renderTemplate(String(items[0]!.value ?? ""));
        body = Buffer.from(bodyLog);
        break;
      }
      case "json": {
        if (items.length !== 1) throw fail("json body type should have exactly one item", "RequestBodyError");
        const text = pool.renderTemplate(String(items[0]!.value ?? ""));
        if (text.trim()) {
          let parsed: unknown;
          try {
            // Dify repairs the rendered text (json_repair) then parses non-strictly: unescaped
            // newlines from interpolated values are common in real apps.
            parsed = JSON.parse(jsonrepair(text));
          } catch {
            throw fail(`Failed to parse JSON: ${text}`, "RequestBodyError");
          }
          bodyLog = JSON.stringify(parsed);
          body = Buffer.from(bodyLog);
        }
        break;
      }
      case "x-www-form-urlencoded": {
        const pairs: [string, string][] = items
          .filter((it) => (it.type ?? "text") === "text")
          .map((it) => [pool.renderTemplate(String(it.key ?? "")), pool.renderTemplate(String(it.value ?? ""))]);
        bodyLog = urlencode(pairs);
        body = Buffer.from(bodyLog);
        break;
      }
      case "form-data": {
        const parts: Part[] = [];
        let realFiles = 0;
        for (const it of items) {
          const key = pool.renderTemplate(String(it.key ?? ""));
          if ((it.type ?? "text") === "file") {
            const v = Array.isArray(it.file) ? pool.get(it.file.map(String)) : undefined;
            const files = (Array.isArray(v) ? v : [v]).filter(isFile);
            for (const f of files) {
              parts.push({ name: key, filename: f.filename ?? "", contentType: f.mime_type || "application/octet-stream", data: await loadFileBytes(f, ctx) });
              realFiles++;
            }
          } else {
            parts.push({ name: key, data: Buffer.from(pool.renderTemplate(String(it.value ?? ""))) });
          }
        }
        // With no real file Dify adds a placeholder part so the request is still multipart.
        if (realFiles === 0) parts.push({ name: "__multipart_placeholder__", filename: "", contentType: "application/octet-stream", data: Buffer.alloc(0) });
        body = multipart(parts, boundary);
        bodyLog = parts
          .filter((p) => p.name !== "__multipart_placeholder__")
          .map((p) => `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.data.toString("utf8")}\r\n`)
          .join("");
        if (bodyLog) bodyLog += `--${boundary}--\r\n`;
        // The boundary is ours: a manual Content-Type is replaced.
        for (const k of Object.keys(headers)) if (k.toLowerCase() === "content-type") delete headers[k];
        headers["Content-Type"] = `multipart/form-data; boundary=${boundary}`;
        break;
      }
      case "binary": {
        const sel = items[0]?.file;
        const v = Array.isArray(sel) ? pool.get(sel.map(String)) : undefined;
        const f = Array.isArray(v) ? v.find(isFile) : v;
        if (isFile(f)) {
          body = await loadFileBytes(f, ctx);
          bodyLog = body.toString("utf8");
        }
        break;
      }
      default:
        throw fail(`Invalid body type ${bodyType}`, "RequestBodyError");
    }
    if (bodyType in BODY_CONTENT_TYPE && !hasContentType()) headers["Content-Type"] = BODY_CONTENT_TYPE[bodyType]!;

    // process_data.request: the raw request as Dify logs it, auth header masked.
    const u = new URL(url);
    let path = u.pathname || "/";
    if (params.length) path += `?${urlencode(params)}`;
    else if (u.search) path += u.search;
    let raw = `${method.toUpperCase()} ${path} HTTP/1.1\r\nHost: ${u.host}\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      raw += authHeader && k.toLowerCase() === authHeader.toLowerCase() ? `${k}: ${"*".repeat(v.length)}\r\n` : `${k}: ${v}\r\n`;
    }
    if (bodyLog) raw += `Content-Length: ${bodyLog.length}\r\n`;
    raw += `\r\n${bodyLog}`;
    const processData = { request: raw };

    // Timeouts: safeFetch has one deadline, so connect + read (+ write when a body is sent).
    const t = data.timeout;
    const connect = timeoutSeconds(t, ["connect", "max_connect_timeout"], MAX_CONNECT_S);
    const read = timeoutSeconds(t, ["read", "max_read_timeout"], MAX_READ_S);
    const write = body ? timeoutSeconds(t, ["write", "max_write_timeout"], MAX_WRITE_S) : 0;
    if (data.ssl_verify === false) {
      // The SSRF guard always verifies certificates; Dify would skip verification here.
      ctx.services.logger.warn({ nodeId: node.id }, "http-request: ssl_verify=false is not supported, certificates are verified");
    }

    const target = new URL(url);
    // httpx merges `params` into the URL's own query.
    for (const [k, v] of params) target.searchParams.append(k, v);
    let res: SafeFetchResponse;
    try {
      res = await safeFetch(target, {
        policy: ctx.services.config.OUTBOUND_POLICY,
        method: method.toUpperCase(),
        headers,
        body,
        maxBytes: MAX_BINARY_SIZE,
        timeoutMs: (connect + read + write) * 1000,
        maxRedirects: MAX_REDIRECTS,
        signal: ctx.signal,
      });
    } catch (e) {
      if (isOutboundError(e)) {
        const msg = e.code === "too_large" ? `Response size is too large, max size is ${(MAX_BINARY_SIZE / 1024 / 1024).toFixed(2)} MB` : e.message;
        return { status: "failed", process_data: processData, error: msg, errorType: e.code === "timeout" ? "HttpRequestTimeoutError" : "HttpRequestNodeError" };
      }
      throw e;
    }

    const fileResponse = isFileResponse(res.headers, res.body);
    const limit = fileResponse ? MAX_BINARY_SIZE : MAX_TEXT_SIZE;
    if (res.body.length > limit) {
      return {
        status: "failed",
        process_data: processData,
        error: `${fileResponse ? "File" : "Text"} size is too large, max size is ${(limit / 1024 / 1024).toFixed(2)} MB, but current size is ${readableSize(res.body.length)}.`,
        errorType: "ResponseSizeError",
      };
    }
    const files = fileResponse && res.body.length > 0 ? [await responseFile(res, target.href, ctx)] : [];
    const outputs = {
      status_code: res.status,
      body: fileResponse ? "" : decodeText(res.body, res.headers["content-type"]),
      headers: res.headers,
      files,
    };
    const ok = res.status >= 200 && res.status < 300;
    if (!ok && (data.error_strategy || (isObj(data.retry_config) && data.retry_config.retry_enabled))) {
      return { status: "failed", outputs, process_data: processData, error: `Request failed with status code ${res.status}`, errorType: "HTTPResponseCodeError" };
    }
    return { status: "succeeded", outputs, process_data: processData };
  },
};

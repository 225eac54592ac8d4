// Uploaded files (apps spec §10): size categories, signed preview links, and who may read what.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import path from "node:path";
import type { Config } from "../../config/index.js";
import { Errors } from "../../lib/errors.js";
import { newId } from "../../lib/ids.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import { toUnix } from "../../lib/time.js";

export const IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif", "svg"];
export const VIDEO_EXTENSIONS = ["mp4", "mov", "mpeg", "webm"];
export const AUDIO_EXTENSIONS = ["mp3", "m4a", "wav", "amr", "mpga"];
export const DOCUMENT_EXTENSIONS = ["txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "docx", "csv", "vtt", "properties", "doc", "eml", "msg", "pptx", "xml", "epub", "ppt"];

export type FileCategory = "image" | "video" | "audio" | "document";

export function categoryOf(ext: string): FileCategory {
  const e = ext.toLowerCase();
  if (IMAGE_EXTENSIONS.includes(e)) return "image";
  if (VIDEO_EXTENSIONS.includes(e)) return "video";
  if (AUDIO_EXTENSIONS.includes(e)) return "audio";
  return "document";
}

const MIME_BY_EXT: Record<string, string> = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", gif: "image/gif", svg: "image/svg+xml",
  mp4: "video/mp4", mov: "video/quicktime", mpeg: "video/mpeg", webm: "video/webm",
  mp3: "audio/mpeg", m4a: "audio/mp4", wav: "audio/wav", amr: "audio/amr", mpga: "audio/mpeg",
  txt: "text/plain", md: "text/markdown", markdown: "text/markdown", mdx: "text/markdown", pdf: "application/pdf",
  html: "text/html", htm: "text/html", csv: "text/csv", xml: "application/xml", json: "application/json",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xls: "application/vnd.ms-excel",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", doc: "application/msword",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation", ppt: "application/vnd.ms-powerpoint",
  eml: "message/rfc822", epub: "application/epub+zip", vtt: "text/vtt",
};

export const mimeFromName = (ext: string): string => MIME_BY_EXT[ext.toLowerCase()] ?? "application/octet-stream";

export function limitBytes(config: Config, category: FileCategory): number {
  const mb =
    category === "image" ? config.UPLOAD_IMAGE_FILE_SIZE_LIMIT
    : category === "video" ? config.UPLOAD_VIDEO_FILE_SIZE_LIMIT
    : category === "audio" ? config.UPLOAD_AUDIO_FILE_SIZE_LIMIT
    : config.UPLOAD_FILE_SIZE_LIMIT;
  return mb * 1024 * 1024;
}

/** Validates a client file name as apps spec §10.1 orders the checks; returns name + extension. */
export function checkFilename(config: Config, rawName: string | undefined): { name: string; extension: string } {
  const name = (rawName ?? "").trim();
  if (!name) throw Errors.filenameNotExists();
  if (name.includes("/") || name.includes("\\")) throw Errors.invalidParam("Filename contains invalid characters");
  const ext = path.extname(name).slice(1).toLowerCase();
  const blacklist = config.UPLOAD_FILE_EXTENSION_BLACKLIST.split(",").map((s) => s.trim().toLowerCase().replace(/^\./, "")).filter(Boolean);
  if (ext && blacklist.includes(ext)) throw Errors.invalidParam(`File extension '.${ext}' is not allowed for security reasons`);
  let finalName = name;
  if (name.length > 200) {
    // Dify keeps the extension and cuts the stem to 200 characters.
    const stem = ext ? name.slice(0, name.length - ext.length - 1) : name;
    finalName = ext ? `${stem.slice(0, 200)}.${ext}` : stem.slice(0, 200);
  }
  return { name: finalName, extension: ext };
}

// Signed links, as Dify's `file-preview?timestamp&nonce&sign` (valid for 5 minutes).
const LINK_TTL_S = 300;
const signPayload = (secret: string, fileId: string, ts: string, nonce: string) =>
  createHmac("sha256", secret).update(`file-preview|${fileId}|${ts}|${nonce}`).digest("base64url");

export function createFileService(deps: { prisma: PrismaClient; storage: Storage; config: Config }) {
  const { prisma, storage, config } = deps;

  function signedUrl(fileId: string): string {
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString("hex");
    const sign = signPayload(config.SECRET_KEY, fileId, ts, nonce);
    return `${config.FILES_URL.replace(/\/+$/, "")}/files/${fileId}/file-preview?timestamp=${ts}&nonce=${nonce}&sign=${sign}`;
  }

  return {
    signedUrl,

    verifySignature(fileId: string, q: { timestamp?: string; nonce?: string; sign?: string }): boolean {
      if (!q.timestamp || !q.nonce || !q.sign) return false;
      const expected = Buffer.from(signPayload(config.SECRET_KEY, fileId, q.timestamp, q.nonce));
      const got = Buffer.from(q.sign);
      if (expected.length !== got.length || !timingSafeEqual(expected, got)) return false;
      return Math.floor(Date.now() / 1000) - Number(q.timestamp) <= LINK_TTL_S;
    },

    async save(input: {
      tenantId: string;
      appId: string | null;
      createdByRole: "end_user" | "account";
      createdBy: string | null;
      name: string;
      extension: string;
      mimeType: string;
      data: Buffer;
    }) {
      const id = newId();
      const key = `upload_files/${input.tenantId}/${id}${input.extension ? `.${input.extension}` : ""}`;
      await storage.save(key, input.data);
      const row = await prisma.uploadFile.create({
        data: {
          id,
          tenant_id: input.tenantId,
          app_id: input.appId,
          key,
          name: input.name,
          size: input.data.length,
          extension: input.extension,
          mime_type: input.mimeType,
          hash: createHash("sha256").update(input.data).digest("hex"),
          created_by_role: input.createdByRole,
          created_by: input.createdBy,
        },
      });
      return row;
    },

    /** apps spec §10.1 response, keys in Dify's order. */
    toUploadResponse(row: { id: string; name: string; size: number; extension: string; mime_type: string | null; created_by: string | null; created_at: Date; tenant_id: string }) {
      return {
        id: row.id,
        reference: null,
        name: row.name,
        size: row.size,
        extension: row.extension,
        mime_type: row.mime_type,
        created_by: row.created_by,
        created_at: toUnix(row.created_at),
        preview_url: null,
        source_url: signedUrl(row.id),
        original_url: null,
        user_id: null,
        tenant_id: row.tenant_id,
        conversation_id: null,
        file_key: null,
      };
    },

    /**
     * A file is visible to an app's end user when that end user uploaded it through this app, or
     * when a message of this app sent by that end user references it (apps spec §10.2, narrowed
     * to the end user: Dify does not check the user, which lets any caller of the app read any
     * file sent in it).
     */
    async getForPreview(appId: string, tenantId: string, endUserId: string, fileId: string) {
      {
        const file = await prisma.uploadFile.findUnique({ where: { id: fileId } });
        if (!file) throw Errors.fileNotFound("Upload file record not found");
        if (file.tenant_id !== tenantId) throw Errors.fileAccessDenied("File access denied: tenant mismatch");
        if (file.app_id === appId && file.created_by === endUserId) return file;
        const ref = await prisma.messageFile.findFirst({
          where: { upload_file_id: fileId },
          select: { message: { select: { app_id: true, from_end_user_id: true } } },
        });
        if (!ref && file.app_id !== appId) throw Errors.fileAccessDenied("File access denied: not owned by requesting app");
        if (!ref) throw Errors.fileNotFound("File not found in message context");
        if (ref.message.app_id !== appId) throw Errors.fileAccessDenied("File access denied: not owned by requesting app");
        if (ref.message.from_end_user_id !== endUserId) throw Errors.fileNotFound("File not found in message context");
        return file;
      }
    },

    async byId(fileId: string) {
      return prisma.uploadFile.findUnique({ where: { id: fileId } });
    },

    storage,
  };
}
export type FileService = ReturnType<typeof createFileService>;

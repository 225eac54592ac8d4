// POST /v1/files/upload, GET /v1/files/{file_id}/preview (apps spec §10), and the signed
// root-level link GET /files/{file_id}/file-preview that `source_url` points at.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Multipart } from "@fastify/multipart";
import { z } from "zod";
import { DifyError, Errors } from "../../lib/errors.js";
import { uuidParam } from "../../lib/ids.js";
import { DEFAULT_USER } from "../../modules/end-users/service.js";
import { categoryOf, checkFilename, limitBytes, mimeFromName } from "../../modules/files/service.js";
import type { Services } from "../services.js";

const uploadResponse = z.object({
  id: z.string(), reference: z.null(), name: z.string(), size: z.number(), extension: z.string(), mime_type: z.string().nullable(),
  created_by: z.string().nullable(), created_at: z.number(), preview_url: z.null(), source_url: z.string(), original_url: z.null(),
  user_id: z.null(), tenant_id: z.string(), conversation_id: z.null(), file_key: z.null(),
});

const MEDIA_ACCEPT_RANGES = new Set(["audio/mpeg", "audio/wav", "audio/mp4", "audio/ogg", "audio/flac", "audio/aac", "audio/x-m4a", "video/mp4", "video/webm", "video/quicktime"]);

export function fileRoutes(app: FastifyInstance, s: Services): void {
  app.post("/v1/files/upload", {
    config: { auth: "app" },
    schema: { response: { 201: uploadResponse } },
  }, async (req, reply) => {
    const ctx = req.app!;
    if (!req.isMultipart()) throw Errors.noFileUploaded();
    // `file` and `user` come in any order (client-compatibility A.9): read every part, keep the first file.
    let user = "";
    let file: { filename: string; mimetype: string; data: Buffer } | null = null;
    let fileParts = 0;
    let tooLarge = false;
    for await (const part of req.parts() as AsyncIterable<Multipart>) {
      if (part.type === "field") {
        if (part.fieldname === "user") user = String(part.value ?? "");
        continue;
      }
      if (part.fieldname !== "file") {
        part.file.resume();
        continue;
      }
      fileParts++;
      if (fileParts > 1) {
        part.file.resume();
        continue;
      }
      const ext = (part.filename ?? "").split(".").pop() ?? "";
      const limit = limitBytes(s.config, categoryOf(ext));
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of part.file) {
        size += (chunk as Buffer).length;
        if (size > limit) tooLarge = true;
        else chunks.push(chunk as Buffer);
      }
      if (part.file.truncated) tooLarge = true;
      file = { filename: part.filename, mimetype: part.mimetype, data: Buffer.concat(chunks) };
    }
    if (!file) throw Errors.noFileUploaded();
    if (fileParts > 1) throw Errors.tooManyFiles();
    const { name, extension } = checkFilename(s.config, file.filename);
    if (tooLarge) throw Errors.fileTooLarge();
    // A missing or generic part type is common (requests 2-tuples, Java): take it from the name.
    // A part without a Content-Type reaches us as text/plain (the multipart parser's default).
    const declared = (file.mimetype ?? "").trim().toLowerCase();
    const fromName = mimeFromName(extension);
    const generic = declared === "" || declared === "application/octet-stream" || (declared === "text/plain" && fromName !== "application/octet-stream");
    const mimeType = generic ? fromName : declared;
    const endUser = await s.endUsers.getOrCreate(ctx.tenant_id, ctx.id, user.trim() || DEFAULT_USER);
    const row = await s.files.save({
      tenantId: ctx.tenant_id, appId: ctx.id, createdByRole: "end_user", createdBy: endUser.id,
      name, extension, mimeType, data: file.data,
    });
    return reply.status(201).send(s.files.toUploadResponse(row));
  });

  app.get(`/v1/files/${uuidParam("file_id")}/preview`, {
    config: { auth: "app", user: { from: "query", required: false } },
    schema: {
      params: z.object({ file_id: z.string() }),
      querystring: z.object({ as_attachment: z.union([z.boolean(), z.string()]).optional(), user: z.string().optional() }).loose(),
    },
  }, async (req, reply) => {
    const { file_id } = req.params as { file_id: string };
    const q = req.query as { as_attachment?: string | boolean };
    const asAttachment = q.as_attachment === true || (typeof q.as_attachment === "string" && ["true", "1", "yes"].includes(q.as_attachment.toLowerCase()));
    const ctx = req.app!;
    const file = await s.files.getForPreview(ctx.id, ctx.tenant_id, req.endUser!.id, file_id.toLowerCase());
    return sendFile(reply, s, file, asAttachment);
  });

  // Root-level signed link (not under /v1): clients prefix relative file URLs with the base URL
  // minus `/v1` (client-compatibility E.28).
  app.get(`/files/${uuidParam("file_id")}/file-preview`, async (req: FastifyRequest, reply) => {
    const { file_id } = req.params as { file_id: string };
    const q = req.query as Record<string, string>;
    if (!s.files.verifySignature(file_id, q)) throw Errors.forbidden("Invalid request.");
    const file = await s.files.byId(file_id.toLowerCase());
    if (!file) throw Errors.fileNotFound();
    return sendFile(reply, s, file, q.as_attachment === "true");
  });
}

async function sendFile(
  reply: FastifyReply,
  s: Services,
  file: { key: string; name: string; size: number; mime_type: string | null; extension: string },
  asAttachment: boolean,
) {
  let data: Buffer;
  try {
    data = await s.storage.load(file.key);
  } catch (e) {
    throw new DifyError(404, "file_not_found", `Failed to load file content: ${(e as Error).message}`);
  }
  const mime = file.mime_type ?? "application/octet-stream";
  // HTML-like files always download, so an uploaded page never runs in our origin.
  const htmlLike = /html|xhtml|svg/i.test(mime) || ["html", "htm", "xhtml", "svg"].includes(file.extension);
  reply.header("Cache-Control", "public, max-age=3600");
  if (MEDIA_ACCEPT_RANGES.has(mime)) reply.header("Accept-Ranges", "bytes");
  if (asAttachment || htmlLike) {
    reply.header("Content-Disposition", `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`);
    reply.type("application/octet-stream");
  } else {
    reply.type(mime);
  }
  reply.header("Content-Length", String(data.length));
  // Raw bytes: bypass the JSON serializer.
  return reply.send(data);
}

// Downloading a dataset's uploaded source files (datasets spec §5.10, newest endpoints):
//   one document → a signed `file-preview` link with `as_attachment=true` (served by the root
//   `/files/{id}/file-preview` route), several documents → one ZIP of their upload files.
// Dataset keys act as the workspace owner (§2.1), so the "No permission." (403) branch of Dify's
// document check never fires here; the tenant is still checked on every row.
import { randomBytes } from "node:crypto";
import path from "node:path";
import JSZip from "jszip";
import { z } from "zod";
import type { Dataset, Document } from "../../generated/prisma/client.js";
import { DifyError, Errors } from "../../lib/errors.js";
import { isUuid } from "../../lib/ids.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import type { FileService } from "../files/service.js";
import { parseOrInvalid } from "./validate.js";

export const ZIP_ONLY_UPLOADS = "Only uploaded-file documents can be downloaded as ZIP.";
const MAX_ZIP_DOCUMENTS = 100;

const zipSchema = z.object({
  document_ids: z
    .array(z.string().refine(isUuid, { message: "Input should be a valid UUID" }), { message: "Input should be a valid list" })
    .min(1, { message: "List should have at least 1 item after validation, not 0" })
    .max(MAX_ZIP_DOCUMENTS, { message: `List should have at most ${MAX_ZIP_DOCUMENTS} items after validation` }),
});

/** The upload file id of an `upload_file` document (data_source_info first, as §5.10 upload-file). */
function uploadFileIdOf(doc: Document): string | null {
  if (doc.data_source_type !== "upload_file") return null;
  const info = (doc.data_source_info ?? {}) as Record<string, unknown>;
  const id = typeof info.upload_file_id === "string" && info.upload_file_id ? info.upload_file_id : doc.upload_file_id;
  return id && isUuid(id) ? id.toLowerCase() : null;
}

/** A ZIP entry name: no path separators, never empty. */
function entryName(raw: string): string {
  const name = raw.replace(/[/\\]/g, "_").trim();
  return name === "" || name === "." || name === ".." ? "file" : name;
}

/** `a.txt`, `a (1).txt`, `a (2).txt` … (the suffix goes before the extension). */
function uniqueName(name: string, used: Set<string>): string {
  if (!used.has(name)) return name;
  const ext = path.extname(name);
  const stem = ext && ext !== name ? name.slice(0, -ext.length) : name;
  const tail = ext && ext !== name ? ext : "";
  for (let i = 1; ; i++) {
    const candidate = `${stem} (${i})${tail}`;
    if (!used.has(candidate)) return candidate;
  }
}

export function createDocumentDownloads(deps: { prisma: PrismaClient; storage: Storage; files: FileService }) {
  const { prisma, storage, files } = deps;

  return {
    /** GET …/documents/{document_id}/download → `{url}`. */
    async downloadUrl(dataset: Dataset, documentId: string): Promise<{ url: string }> {
      const doc = await prisma.document.findFirst({ where: { id: documentId.toLowerCase(), dataset_id: dataset.id } });
      if (!doc) throw Errors.notFound("Document not found.");
      if (doc.tenant_id !== dataset.tenant_id) throw Errors.forbidden("No permission.");
      const fileId = uploadFileIdOf(doc);
      if (!fileId) throw Errors.notFound("Document does not have an uploaded file to download.");
      const file = await prisma.uploadFile.findFirst({ where: { id: fileId, tenant_id: dataset.tenant_id }, select: { id: true } });
      if (!file) throw Errors.notFound("Uploaded file not found.");
      return { url: `${files.signedUrl(file.id)}&as_attachment=true` };
    },

    /**
     * POST …/documents/download-zip: every id must be a document of this dataset with an upload
     * file (checked in request order, all before any file is read). Returns the archive and the
     * attachment name (`<32 hex>.zip`).
     */
    async downloadZip(dataset: Dataset, body: Record<string, unknown>): Promise<{ filename: string; data: Buffer }> {
      const { document_ids } = parseOrInvalid(zipSchema, body, "DocumentBatchDownloadZipPayload");
      const ids = [...new Set(document_ids.map((id) => id.toLowerCase()))];
      const docs = await prisma.document.findMany({ where: { id: { in: ids }, dataset_id: dataset.id } });
      const byId = new Map(docs.map((d) => [d.id, d]));
      const fileIds: string[] = [];
      for (const id of ids) {
        const doc = byId.get(id);
        if (!doc) throw Errors.notFound("Document not found.");
        if (doc.tenant_id !== dataset.tenant_id) throw Errors.forbidden("No permission.");
        const fileId = uploadFileIdOf(doc);
        if (!fileId) throw Errors.notFound(ZIP_ONLY_UPLOADS);
        fileIds.push(fileId);
      }
      const rows = await prisma.uploadFile.findMany({ where: { id: { in: [...new Set(fileIds)] }, tenant_id: dataset.tenant_id } });
      const uploads = new Map(rows.map((r) => [r.id, r]));
      if (fileIds.some((id) => !uploads.has(id))) throw Errors.notFound(ZIP_ONLY_UPLOADS);

      const zip = new JSZip();
      const used = new Set<string>();
      for (const id of fileIds) {
        const file = uploads.get(id)!;
        let data: Buffer;
        try {
          data = await storage.load(file.key);
        } catch (e) {
          throw new DifyError(404, "file_not_found", `Failed to load file content: ${(e as Error).message}`);
        }
        const name = uniqueName(entryName(file.name), used);
        used.add(name);
        zip.file(name, data, { binary: true, createFolders: false });
      }
      const data = await zip.generateAsync({ type: "nodebuffer", compression: "DEFLATE", compressionOptions: { level: 6 } });
      return { filename: `${randomBytes(16).toString("hex")}.zip`, data };
    },
  };
}
export type DocumentDownloads = ReturnType<typeof createDocumentDownloads>;

// Text extraction for workflow document-extractor nodes (dsl-and-workflow §4.18): the file value
// from the variable pool → its bytes (an upload in storage, or a remote URL fetched under the
// outbound policy) → the same extractors the indexing pipeline uses.
import type { Config } from "../../../config/index.js";
import { safeFetch } from "../../../lib/outbound.js";
import type { PrismaClient } from "../../../lib/prisma.js";
import type { Storage } from "../../../lib/storage.js";
import type { WorkflowFile } from "../../workflow/types.js";
import { extractText } from "./index.js";

const MAX_REMOTE_BYTES = 50 * 1024 * 1024;

export function createWorkflowTextExtractor(deps: { prisma: PrismaClient; storage: Storage; config: Config }) {
  return async (file: WorkflowFile): Promise<string> => {
    let data: Buffer;
    if (file.related_id) {
      const row = await deps.prisma.uploadFile.findUnique({ where: { id: file.related_id } });
      if (!row || row.tenant_id !== file.tenant_id) throw new Error(`File ${file.related_id} not found`);
      data = await deps.storage.load(row.key);
    } else if (file.remote_url) {
      data = (await safeFetch(file.remote_url, { policy: deps.config.OUTBOUND_POLICY, maxBytes: MAX_REMOTE_BYTES, timeoutMs: 60_000 })).body;
    } else {
      throw new Error(`File ${file.filename ?? ""} has no content`);
    }
    return extractText({ data, extension: file.extension ?? "", mimeType: file.mime_type ?? undefined, name: file.filename ?? "file" });
  };
}

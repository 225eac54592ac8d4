// Documents of a dataset (datasets spec §5):
//   POST   /v1/datasets/{dataset_id}/document/create-by-text          (alias create_by_text)
//   POST   /v1/datasets/{dataset_id}/document/create-by-file          (alias create_by_file)
//   POST   /v1/datasets/{dataset_id}/documents/{document_id}/update-by-text (alias update_by_text)
//   POST   /v1/datasets/{dataset_id}/documents/{document_id}/update-by-file (alias update_by_file)
//   PATCH  /v1/datasets/{dataset_id}/documents/{document_id}          (newest update-by-file)
//   GET    /v1/datasets/{dataset_id}/documents
//   GET    /v1/datasets/{dataset_id}/documents/{document_id}
//   DELETE /v1/datasets/{dataset_id}/documents/{document_id}
//   GET    /v1/datasets/{dataset_id}/documents/{batch}/indexing-status
//   PATCH  /v1/datasets/{dataset_id}/documents/status/{action}        (+ the docs' trailing /batch)
//   GET    /v1/datasets/{dataset_id}/documents/{document_id}/upload-file
// Hyphenated paths are canonical, underscore ones deprecated aliases with identical behaviour
// (§0, §5). Every route checks the dataset first (§2.1 step 5) via requireDataset.
import type { Multipart } from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import { checkFilename } from "../../modules/files/service.js";
import type { Actor, IncomingFile } from "../../modules/documents/service.js";
import { workspaceOwnerId } from "../../modules/tenants/owner.js";
import { jsonBody } from "../plugins/body.js";
import { requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";

const cfg = { auth: "dataset" } as const;
const DS = `/v1/datasets/${uuidParam("dataset_id")}`;
const DOC = `${DS}/documents/${uuidParam("document_id")}`;

type Params = { dataset_id: string; document_id?: string; batch?: string; action?: string };

export async function actorOf(s: Services, req: FastifyRequest): Promise<Actor> {
  const tenantId = req.datasetKey!.tenant_id;
  const t = await s.prisma.tenant.findUnique({ where: { id: tenantId }, select: { name: true } });
  return { tenantId, ownerId: workspaceOwnerId(tenantId), ownerName: t?.name ?? "" };
}

/** Reads `file` and `data` in whatever order the client sent them (client-compatibility A.9). */
async function readDocumentForm(req: FastifyRequest, limitBytes: number) {
  let dataRaw: string | null = null;
  let file: IncomingFile | null = null;
  let fileParts = 0;
  let tooLarge = false;
  if (!req.isMultipart()) return { dataRaw, file, fileParts, tooLarge };
  for await (const part of req.parts() as AsyncIterable<Multipart>) {
    if (part.type === "field") {
      if (part.fieldname === "data" && dataRaw === null) dataRaw = String(part.value ?? "");
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
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of part.file) {
      size += (chunk as Buffer).length;
      if (size > limitBytes) tooLarge = true;
      else chunks.push(chunk as Buffer);
    }
    if (part.file.truncated) tooLarge = true;
    file = { name: part.filename ?? "", extension: "", mimeType: part.mimetype ?? "", data: Buffer.concat(chunks) };
  }
  return { dataRaw, file, fileParts, tooLarge };
}

export function documentRoutes(app: FastifyInstance, s: Services): void {
  const limitBytes = s.config.UPLOAD_FILE_SIZE_LIMIT * 1024 * 1024;
  const checkFile = (f: IncomingFile) => checkFilename(s.config, f.name);
  const dataset = (req: FastifyRequest) => requireDataset(s.prisma, req, (req.params as Params).dataset_id);

  // ---- create (§5.3, §5.4)
  for (const suffix of ["create-by-text", "create_by_text"]) {
    app.post(`${DS}/document/${suffix}`, { config: cfg }, async (req) => {
      const ds = await dataset(req);
      return s.documents.createByText(ds, await actorOf(s, req), jsonBody(req));
    });
  }
  for (const suffix of ["create-by-file", "create_by_file"]) {
    app.post(`${DS}/document/${suffix}`, { config: cfg }, async (req) => {
      const ds = await dataset(req);
      const form = await readDocumentForm(req, limitBytes);
      return s.documents.createByFile(ds, await actorOf(s, req), { ...form, checkFile });
    });
  }

  // ---- update (§5.6)
  for (const suffix of ["update-by-text", "update_by_text"]) {
    app.post(`${DOC}/${suffix}`, { config: cfg }, async (req) => {
      const ds = await dataset(req);
      return s.documents.updateByText(ds, await actorOf(s, req), (req.params as Params).document_id!, jsonBody(req));
    });
  }
  const updateByFile = async (req: FastifyRequest) => {
    const ds = await dataset(req);
    const form = await readDocumentForm(req, limitBytes);
    return s.documents.updateByFile(ds, await actorOf(s, req), (req.params as Params).document_id!, { ...form, checkFile });
  };
  app.post(`${DOC}/update-by-file`, { config: cfg }, updateByFile);
  app.post(`${DOC}/update_by_file`, { config: cfg }, updateByFile);
  app.patch(DOC, { config: cfg }, updateByFile);

  // ---- list (§5.9)
  app.get(`${DS}/documents`, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    const q = req.query as Record<string, unknown>;
    const one = (v: unknown) => (Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v));
    return s.documents.list(ds, await actorOf(s, req), { page: one(q.page), limit: one(q.limit), keyword: one(q.keyword), status: one(q.status) });
  });

  // ---- detail / delete (§5.7, §5.8)
  app.get(DOC, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    const q = req.query as Record<string, unknown>;
    const metadata = Array.isArray(q.metadata) ? String(q.metadata[0]) : q.metadata === undefined ? undefined : String(q.metadata);
    return s.documents.detail(ds, await actorOf(s, req), (req.params as Params).document_id!, metadata);
  });
  app.delete(DOC, { config: cfg }, async (req, reply) => {
    const ds = await dataset(req);
    await s.documents.remove(ds, (req.params as Params).document_id!);
    return reply.status(204).send();
  });

  // ---- indexing status of a batch (§5.11); `batch` is a plain string
  app.get(`${DS}/documents/:batch/indexing-status`, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.documents.indexingStatus(ds, (req.params as Params).batch!);
  });

  // ---- batch status actions (§5.12)
  const statusAction = async (req: FastifyRequest) => {
    const ds = await dataset(req);
    return s.documents.batchStatus(ds, await actorOf(s, req), (req.params as Params).action!, jsonBody(req));
  };
  app.patch(`${DS}/documents/status/:action`, { config: cfg }, statusAction);
  app.patch(`${DS}/documents/status/:action/batch`, { config: cfg }, statusAction);

  // ---- uploaded file info (§5.10)
  app.get(`${DOC}/upload-file`, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.documents.uploadFileInfo(ds, (req.params as Params).document_id!);
  });
}

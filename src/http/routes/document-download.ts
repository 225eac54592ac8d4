// Downloading a dataset's source files (datasets spec §5.10, newest):
//   GET  /v1/datasets/{dataset_id}/documents/{document_id}/download   → {"url": signed link}
//   POST /v1/datasets/{dataset_id}/documents/download-zip             → application/zip attachment
// Dataset-key auth; the dataset is checked first (requireDataset, §2.1 step 5).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import { createDocumentDownloads } from "../../modules/documents/download.js";
import { jsonBody } from "../plugins/body.js";
import { requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";

const cfg = { auth: "dataset" } as const;
const DS = `/v1/datasets/${uuidParam("dataset_id")}`;

type Params = { dataset_id: string; document_id?: string };

export function documentDownloadRoutes(app: FastifyInstance, s: Services): void {
  const downloads = createDocumentDownloads({ prisma: s.prisma, storage: s.storage, files: s.files });
  const dataset = (req: FastifyRequest) => requireDataset(s.prisma, req, (req.params as Params).dataset_id);

  app.get(`${DS}/documents/${uuidParam("document_id")}/download`, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return downloads.downloadUrl(ds, (req.params as Params).document_id!);
  });

  app.post(`${DS}/documents/download-zip`, { config: cfg }, async (req, reply) => {
    const ds = await dataset(req);
    const { filename, data } = await downloads.downloadZip(ds, jsonBody(req));
    reply.header("Content-Disposition", `attachment; filename=${filename}`);
    reply.header("Content-Length", String(data.length));
    reply.type("application/zip");
    // Raw bytes: bypass the JSON serializer.
    return reply.send(data);
  });
}

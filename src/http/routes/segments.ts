// Segments ("chunks") and child chunks (datasets spec §6):
//   POST   /v1/datasets/{dataset_id}/documents/{document_id}/segments
//   GET    /v1/datasets/{dataset_id}/documents/{document_id}/segments
//   GET    /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}
//   POST   /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}
//   DELETE /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}
//   POST   /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}/child_chunks
//   GET    /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}/child_chunks
//   PATCH  /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}/child_chunks/{child_chunk_id}
//   DELETE /v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}/child_chunks/{child_chunk_id}
// (`child_chunks` with an underscore is the only spelling, §6.6.)
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import { BareBodyError } from "../../modules/segments/service.js";
import { workspaceOwnerId } from "../../modules/tenants/owner.js";
import { jsonBody } from "../plugins/body.js";
import { requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";

const cfg = { auth: "dataset" } as const;
const SEGS = `/v1/datasets/${uuidParam("dataset_id")}/documents/${uuidParam("document_id")}/segments`;
const SEG = `${SEGS}/${uuidParam("segment_id")}`;
const CHILDREN = `${SEG}/child_chunks`;
const CHILD = `${CHILDREN}/${uuidParam("child_chunk_id")}`;

type Params = { dataset_id: string; document_id: string; segment_id: string; child_chunk_id: string };

export function segmentRoutes(app: FastifyInstance, s: Services): void {
  const dataset = (req: FastifyRequest) => requireDataset(s.prisma, req, (req.params as Params).dataset_id);
  const actor = (req: FastifyRequest) => ({ tenantId: req.datasetKey!.tenant_id, ownerId: workspaceOwnerId(req.datasetKey!.tenant_id) });
  const p = (req: FastifyRequest) => req.params as Params;

  app.post(SEGS, { config: cfg }, async (req, reply: FastifyReply) => {
    const ds = await dataset(req);
    try {
      return await s.segments.add(ds, actor(req), p(req).document_id, jsonBody(req));
    } catch (e) {
      // Malformed payloads answer with a bare {"error": ...} body, not the envelope (§6.1).
      if (e instanceof BareBodyError) return reply.status(e.status).send(e.body);
      throw e;
    }
  });
  app.get(SEGS, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.list(ds, p(req).document_id, req.query as Record<string, unknown>);
  });

  app.get(SEG, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.get(ds, p(req).document_id, p(req).segment_id);
  });
  app.post(SEG, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.update(ds, actor(req), p(req).document_id, p(req).segment_id, jsonBody(req));
  });
  app.delete(SEG, { config: cfg }, async (req, reply) => {
    const ds = await dataset(req);
    await s.segments.remove(ds, p(req).document_id, p(req).segment_id);
    return reply.status(204).send();
  });

  app.post(CHILDREN, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.createChild(ds, actor(req), p(req).document_id, p(req).segment_id, jsonBody(req));
  });
  app.get(CHILDREN, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.listChildren(ds, p(req).document_id, p(req).segment_id, req.query as Record<string, unknown>);
  });
  app.patch(CHILD, { config: cfg }, async (req) => {
    const ds = await dataset(req);
    return s.segments.updateChild(ds, actor(req), p(req).document_id, p(req).segment_id, p(req).child_chunk_id, jsonBody(req));
  });
  app.delete(CHILD, { config: cfg }, async (req, reply) => {
    const ds = await dataset(req);
    await s.segments.deleteChild(ds, p(req).document_id, p(req).segment_id, p(req).child_chunk_id);
    return reply.status(204).send();
  });
}

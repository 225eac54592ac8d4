// Knowledge tags, datasets spec §8:
//   GET    /v1/datasets/tags
//   POST   /v1/datasets/tags
//   PATCH  /v1/datasets/tags
//   DELETE /v1/datasets/tags
//   POST   /v1/datasets/tags/binding
//   POST   /v1/datasets/tags/unbinding
//   GET    /v1/datasets/{dataset_id}/tags
// Bodies go through Dify's model_validate (422 on schema errors, §1.2 rule 4).
import type { FastifyInstance } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import { parseTagBinding, parseTagCreate, parseTagDelete, parseTagUnbinding, parseTagUpdate } from "../../modules/datasets/tags.js";
import { datasetScopeWhere, requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";
import { modelBody } from "./datasets.js";

const dataset = { auth: "dataset" } as const;

export function datasetTagRoutes(app: FastifyInstance, s: Services): void {
  // GET /v1/datasets/tags — a bare JSON array
  app.get("/v1/datasets/tags", { config: dataset }, async (req) => s.datasetTags.list(datasetScopeWhere(req)));

  // POST /v1/datasets/tags — 200
  app.post("/v1/datasets/tags", { config: dataset }, async (req) => {
    const { name } = parseTagCreate(modelBody(req));
    return s.datasetTags.create(datasetScopeWhere(req), name);
  });

  // PATCH /v1/datasets/tags
  app.patch("/v1/datasets/tags", { config: dataset }, async (req) => {
    const { name, tag_id } = parseTagUpdate(modelBody(req));
    return s.datasetTags.update(datasetScopeWhere(req), tag_id, name);
  });

  // DELETE /v1/datasets/tags — model_validate reads DELETE input from the query string, or from
  // the JSON body when the query string is empty (§1.2 rule 4).
  app.delete("/v1/datasets/tags", { config: dataset }, async (req, reply) => {
    const query = (req.query ?? {}) as Record<string, unknown>;
    const input = Object.keys(query).length
      ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]))
      : modelBody(req);
    const { tag_id } = parseTagDelete(input);
    await s.datasetTags.remove(datasetScopeWhere(req), tag_id);
    return reply.status(204).send();
  });

  // POST /v1/datasets/tags/binding — 204
  app.post("/v1/datasets/tags/binding", { config: dataset }, async (req, reply) => {
    const b = parseTagBinding(modelBody(req));
    await s.datasetTags.bind(datasetScopeWhere(req), b.tag_ids, b.target_id);
    return reply.status(204).send();
  });

  // POST /v1/datasets/tags/unbinding — 204; `tag_ids` or the legacy `tag_id`
  app.post("/v1/datasets/tags/unbinding", { config: dataset }, async (req, reply) => {
    const b = parseTagUnbinding(modelBody(req));
    await s.datasetTags.unbind(datasetScopeWhere(req), b.tag_ids, b.target_id);
    return reply.status(204).send();
  });

  // GET /v1/datasets/{dataset_id}/tags
  app.get(`/v1/datasets/${uuidParam("dataset_id")}/tags`, { config: dataset }, async (req) => {
    const row = await requireDataset(s.prisma, req, (req.params as { dataset_id: string }).dataset_id);
    return s.datasetTags.forDataset(row.tenant_id, row.id);
  });
}

// Datasets (knowledge bases), datasets spec §4:
//   GET    /v1/datasets
//   POST   /v1/datasets
//   GET    /v1/datasets/{dataset_id}
//   PATCH  /v1/datasets/{dataset_id}
//   DELETE /v1/datasets/{dataset_id}
// Auth: a dataset key (§2.1); the dataset of the path is checked (tenant, key scope, enable_api)
// before the body is validated, as Dify's DatasetApiResource wrapper does.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import { PyValidator } from "../../modules/datasets/pydantic.js";
import { parseCreate, parseUpdate, type ListQuery } from "../../modules/datasets/service.js";
import { datasetScopeWhere, requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";

const dataset = { auth: "dataset" } as const;

/** `model_validate` endpoints read a missing or non-object body as `{}` (§1.2 rule 4). */
export function modelBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body as unknown;
  return b !== null && typeof b === "object" && !Array.isArray(b) && !Buffer.isBuffer(b) ? (b as Record<string, unknown>) : {};
}

const first = (v: unknown) => (Array.isArray(v) ? v[0] : v);

/** DatasetListQuery from `request.args.to_dict()` (first value wins) plus `getlist("tag_ids")`;
 * validated inside the handler, so failures are 400 invalid_param (§1.2 rule 3). */
function parseListQuery(raw: Record<string, unknown>): ListQuery {
  const v = new PyValidator();
  const page = raw.page === undefined ? 1 : v.int(first(raw.page), ["page"]);
  const limit = raw.limit === undefined ? 20 : v.int(first(raw.limit), ["limit"]);
  const keyword = raw.keyword === undefined ? null : String(first(raw.keyword));
  const include_all = raw.include_all === undefined ? false : v.bool(first(raw.include_all), ["include_all"]);
  const tag_ids = raw.tag_ids === undefined ? [] : (Array.isArray(raw.tag_ids) ? raw.tag_ids : [raw.tag_ids]).map(String);
  if (!v.ok) throw v.toInvalidParam("DatasetListQuery");
  return { page: page!, limit: limit!, keyword, include_all: include_all!, tag_ids };
}

export function datasetRoutes(app: FastifyInstance, s: Services): void {
  // GET /v1/datasets
  app.get("/v1/datasets", { config: dataset }, async (req) => {
    const q = parseListQuery((req.query ?? {}) as Record<string, unknown>);
    return s.datasets.list(datasetScopeWhere(req), q);
  });

  // POST /v1/datasets — 200, not 201 (§4.2)
  app.post("/v1/datasets", { config: dataset }, async (req) => {
    const input = parseCreate(modelBody(req));
    return s.datasets.create(datasetScopeWhere(req), input, req.datasetKey!.key_id);
  });

  // GET /v1/datasets/{dataset_id}
  app.get(`/v1/datasets/${uuidParam("dataset_id")}`, { config: dataset }, async (req) => {
    const row = await requireDataset(s.prisma, req, (req.params as { dataset_id: string }).dataset_id);
    return s.datasets.detail(row);
  });

  // PATCH /v1/datasets/{dataset_id}
  app.patch(`/v1/datasets/${uuidParam("dataset_id")}`, { config: dataset }, async (req) => {
    const row = await requireDataset(s.prisma, req, (req.params as { dataset_id: string }).dataset_id);
    const input = parseUpdate(modelBody(req));
    return s.datasets.update(row, input);
  });

  // DELETE /v1/datasets/{dataset_id} — 204 empty (§4.5)
  app.delete(`/v1/datasets/${uuidParam("dataset_id")}`, { config: dataset }, async (req, reply) => {
    const row = await requireDataset(s.prisma, req, (req.params as { dataset_id: string }).dataset_id);
    await s.datasets.remove(row);
    return reply.status(204).send();
  });
}

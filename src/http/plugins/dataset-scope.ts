// Dataset routes' common check (datasets spec §2.1 step 5): the dataset in the path must exist in
// the key's tenant (and, for a scoped key, be one of its datasets) — else 404 "Dataset not found."
// — and have API access enabled — else 403. Runs before any handler logic.
import type { FastifyRequest } from "fastify";
import { DifyError, Errors } from "../../lib/errors.js";
import type { PrismaClient } from "../../lib/prisma.js";

export const datasetNotFound = () => new DifyError(404, "not_found", "Dataset not found.");

export async function requireDataset(prisma: PrismaClient, req: FastifyRequest, datasetId: string) {
  const key = req.datasetKey;
  if (!key) throw Errors.unauthorized("Access token is invalid");
  const id = datasetId.toLowerCase();
  if (key.dataset_ids.length > 0 && !key.dataset_ids.includes(id)) throw datasetNotFound();
  const dataset = await prisma.dataset.findFirst({ where: { id, tenant_id: key.tenant_id } });
  if (!dataset) throw datasetNotFound();
  if (!dataset.enable_api) throw Errors.forbidden("Dataset api access is not enabled.");
  return dataset;
}

/** Datasets a key may see at all (a scoped key: only its list; Dify: the whole tenant). */
export function datasetScopeWhere(req: FastifyRequest): { tenant_id: string; id?: { in: string[] } } {
  const key = req.datasetKey!;
  return key.dataset_ids.length > 0 ? { tenant_id: key.tenant_id, id: { in: key.dataset_ids } } : { tenant_id: key.tenant_id };
}

// Dataset metadata, datasets spec §9:
//   POST   /v1/datasets/{dataset_id}/metadata                    (201)
//   GET    /v1/datasets/{dataset_id}/metadata
//   PATCH  /v1/datasets/{dataset_id}/metadata/{metadata_id}
//   DELETE /v1/datasets/{dataset_id}/metadata/{metadata_id}      (204)
//   GET    /v1/datasets/{dataset_id}/metadata/built-in
//   POST   /v1/datasets/{dataset_id}/metadata/built-in/{action}
//   POST   /v1/datasets/{dataset_id}/documents/metadata
// These handlers call `model_validate` themselves: schema errors are 400 invalid_param with
// pydantic's text (§1.2 rule 3), not the 422 of the decorated dataset/tag endpoints.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { uuidParam } from "../../lib/ids.js";
import type { DocumentMetadataOperation, MetadataValueInput } from "../../modules/datasets/metadata.js";
import { has, PyValidator } from "../../modules/datasets/pydantic.js";
import { requireDataset } from "../plugins/dataset-scope.js";
import type { Services } from "../services.js";
import { modelBody } from "./datasets.js";

const dataset = { auth: "dataset" } as const;
const METADATA_TYPES = ["string", "number", "time"] as const;

function parseMetadataArgs(body: Record<string, unknown>): { type: string; name: string } {
  const v = new PyValidator();
  const type = has(body, "type") ? v.choice(body.type, ["type"], METADATA_TYPES) : v.missing(["type"]);
  const name = has(body, "name") ? v.str(body.name, ["name"]) : v.missing(["name"]);
  if (!v.ok) throw v.toInvalidParam("MetadataArgs");
  return { type: type!, name: name! };
}

function parseMetadataUpdate(body: Record<string, unknown>): { name: string } {
  const v = new PyValidator();
  const name = has(body, "name") ? v.str(body.name, ["name"]) : v.missing(["name"]);
  if (!v.ok) throw v.toInvalidParam("MetadataUpdatePayload");
  return { name: name! };
}

function parseOperations(body: Record<string, unknown>): DocumentMetadataOperation[] {
  const v = new PyValidator();
  const out: DocumentMetadataOperation[] = [];
  const list = has(body, "operation_data") ? v.list(body.operation_data, ["operation_data"]) : v.missing(["operation_data"]);
  list?.forEach((raw, i) => {
    const loc = ["operation_data", i];
    const op = v.obj(raw, loc, "DocumentMetadataOperation");
    if (!op) return;
    const document_id = has(op, "document_id") ? v.str(op.document_id, [...loc, "document_id"]) : v.missing([...loc, "document_id"]);
    const items: MetadataValueInput[] = [];
    const ml = has(op, "metadata_list") ? v.list(op.metadata_list, [...loc, "metadata_list"]) : v.missing([...loc, "metadata_list"]);
    ml?.forEach((rawItem, j) => {
      const il = [...loc, "metadata_list", j];
      const it = v.obj(rawItem, il, "MetadataDetail");
      if (!it) return;
      const id = has(it, "id") ? v.str(it.id, [...il, "id"]) : v.missing([...il, "id"]);
      const name = has(it, "name") ? v.str(it.name, [...il, "name"]) : v.missing([...il, "name"]);
      let value: string | number | null = null;
      if (has(it, "value") && it.value !== null) {
        if (typeof it.value === "string" || typeof it.value === "number") value = it.value;
        else if (typeof it.value === "boolean") value = it.value ? 1 : 0;
        else v.add("string_type", [...il, "value", "str"], "Input should be a valid string");
      }
      if (id !== undefined && name !== undefined) items.push({ id, name, value });
    });
    const partial = has(op, "partial_update") && op.partial_update !== null ? v.bool(op.partial_update, [...loc, "partial_update"]) : false;
    if (document_id !== undefined && partial !== undefined) out.push({ document_id, metadata_list: items, partial_update: partial });
  });
  if (!v.ok) throw v.toInvalidParam("MetadataOperationData");
  return out;
}

export function datasetMetadataRoutes(app: FastifyInstance, s: Services): void {
  const ds = (req: FastifyRequest) => requireDataset(s.prisma, req, (req.params as { dataset_id: string }).dataset_id);

  // POST /v1/datasets/{dataset_id}/metadata — 201
  app.post(`/v1/datasets/${uuidParam("dataset_id")}/metadata`, { config: dataset }, async (req, reply) => {
    const row = await ds(req);
    const args = parseMetadataArgs(modelBody(req));
    return reply.status(201).send(await s.datasetMetadata.create(row, args.type, args.name));
  });

  // GET /v1/datasets/{dataset_id}/metadata
  app.get(`/v1/datasets/${uuidParam("dataset_id")}/metadata`, { config: dataset }, async (req) => s.datasetMetadata.list(await ds(req)));

  // PATCH /v1/datasets/{dataset_id}/metadata/{metadata_id}
  app.patch(`/v1/datasets/${uuidParam("dataset_id")}/metadata/${uuidParam("metadata_id")}`, { config: dataset }, async (req) => {
    const row = await ds(req);
    const { name } = parseMetadataUpdate(modelBody(req));
    return s.datasetMetadata.rename(row, (req.params as { metadata_id: string }).metadata_id, name);
  });

  // DELETE /v1/datasets/{dataset_id}/metadata/{metadata_id} — 204
  app.delete(`/v1/datasets/${uuidParam("dataset_id")}/metadata/${uuidParam("metadata_id")}`, { config: dataset }, async (req, reply) => {
    const row = await ds(req);
    await s.datasetMetadata.remove(row, (req.params as { metadata_id: string }).metadata_id);
    return reply.status(204).send();
  });

  // GET /v1/datasets/{dataset_id}/metadata/built-in
  app.get(`/v1/datasets/${uuidParam("dataset_id")}/metadata/built-in`, { config: dataset }, async (req) => {
    await ds(req);
    return { fields: s.datasetMetadata.builtInFields() };
  });

  // POST /v1/datasets/{dataset_id}/metadata/built-in/{action} — enable | disable; others no-op
  app.post(`/v1/datasets/${uuidParam("dataset_id")}/metadata/built-in/:action`, { config: dataset }, async (req) => {
    const row = await ds(req);
    await s.datasetMetadata.builtInAction(row, (req.params as { action: string }).action);
    return { result: "success" };
  });

  // POST /v1/datasets/{dataset_id}/documents/metadata
  app.post(`/v1/datasets/${uuidParam("dataset_id")}/documents/metadata`, { config: dataset }, async (req) => {
    const row = await ds(req);
    const ops = parseOperations(modelBody(req));
    await s.datasetMetadata.updateDocuments(row, ops);
    return { result: "success" };
  });
}

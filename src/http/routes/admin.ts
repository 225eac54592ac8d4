// The admin API (README "Admin API"): import Dify DSL exports, list/export/delete apps, manage
// keys. All under /admin/v1 with `Authorization: Bearer <ADMIN_API_KEY>`; not registered at all
// when ADMIN_API_KEY is unset, so every admin URL is then a plain 404.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { DifyError, Errors } from "../../lib/errors.js";
import { uuidParam } from "../../lib/ids.js";
import { DslError } from "../../modules/apps/dsl.js";
import { parseOr400 } from "../validation.js";
import type { Services } from "../services.js";

const admin = { auth: "admin" as const };
const appNotFound = () => new DifyError(404, "not_found", "App not found.");

const importJson = z.object({ yaml_content: z.string().min(1).max(10 * 1024 * 1024), tenant_id: z.uuid().optional() });
const datasetMappingsBody = z.object({ mappings: z.record(z.string().min(1).max(255), z.uuid()) });
const datasetKeyBody = z.object({ dataset_ids: z.array(z.uuid()).max(1000).nullish(), tenant_id: z.uuid().optional() });

async function tenantFor(s: Services, req: FastifyRequest, bodyTenant?: string) {
  const q = req.query as { tenant_id?: string };
  const tenant = await s.tenants.resolve(bodyTenant ?? q.tenant_id);
  if (!tenant) throw new DifyError(404, "not_found", "Tenant not found.");
  return tenant;
}

export function adminRoutes(app: FastifyInstance, s: Services): void {
  app.post("/admin/v1/apps/import", { config: admin }, async (req, reply) => {
    let yamlText: string;
    let bodyTenant: string | undefined;
    if (typeof req.body === "string") yamlText = req.body;
    else if (req.body && typeof req.body === "object" && !Array.isArray(req.body)) {
      const b = parseOr400(importJson, req.body, "ImportRequest");
      yamlText = b.yaml_content;
      bodyTenant = b.tenant_id;
    } else throw Errors.invalidParam("Send the DSL as application/yaml, text/yaml, text/plain, or JSON {\"yaml_content\": \"...\"}.");
    const tenant = await tenantFor(s, req, bodyTenant);
    try {
      const result = await s.apps.importYaml(tenant.id, yamlText);
      return reply.status(201).send({ id: result.id, name: result.name, mode: result.mode, warnings: result.warnings });
    } catch (e) {
      if (e instanceof DslError) throw Errors.invalidParam(e.message);
      throw e;
    }
  });

  app.get("/admin/v1/apps", { config: admin }, async (req) => {
    const q = req.query as { tenant_id?: string };
    return { data: await s.apps.list(q.tenant_id) };
  });

  app.get(`/admin/v1/apps/${uuidParam("app_id")}`, { config: admin }, async (req) => {
    const found = await s.apps.get((req.params as { app_id: string }).app_id.toLowerCase());
    if (!found) throw appNotFound();
    return found;
  });

  app.delete(`/admin/v1/apps/${uuidParam("app_id")}`, { config: admin }, async (req, reply) => {
    if (!(await s.apps.delete((req.params as { app_id: string }).app_id.toLowerCase()))) throw appNotFound();
    return reply.status(204).send();
  });

  app.get(`/admin/v1/apps/${uuidParam("app_id")}/export`, { config: admin }, async (req, reply) => {
    const yamlText = await s.apps.exportYaml((req.params as { app_id: string }).app_id.toLowerCase());
    if (yamlText === null) throw appNotFound();
    return reply.type("application/yaml; charset=utf-8").serializer((p: unknown) => p as string).send(yamlText);
  });

  app.post(`/admin/v1/apps/${uuidParam("app_id")}/api-keys`, { config: admin }, async (req, reply) => {
    const found = await s.apps.get((req.params as { app_id: string }).app_id.toLowerCase());
    if (!found) throw appNotFound();
    const key = await s.apiKeys.create({ tenantId: found.tenant_id, type: "app", appId: found.id });
    return reply.status(201).send({ id: key.id, token: key.token });
  });

  app.get(`/admin/v1/apps/${uuidParam("app_id")}/api-keys`, { config: admin }, async (req) => {
    const found = await s.apps.get((req.params as { app_id: string }).app_id.toLowerCase());
    if (!found) throw appNotFound();
    return { data: await s.apiKeys.listForApp(found.id) };
  });

  app.delete(`/admin/v1/apps/${uuidParam("app_id")}/api-keys/${uuidParam("key_id")}`, { config: admin }, async (req, reply) => {
    const p = req.params as { app_id: string; key_id: string };
    const ok = await s.apiKeys.delete({ id: p.key_id.toLowerCase(), appId: p.app_id.toLowerCase(), type: "app" });
    if (!ok) throw new DifyError(404, "not_found", "API key not found.");
    return reply.status(204).send();
  });

  // DSL dataset ids → local datasets (dsl-and-workflow §2.7; src/modules/generation/dataset-context.ts).
  // PUT replaces the app's whole mapping; every local id must be a dataset of the app's tenant.
  app.put(`/admin/v1/apps/${uuidParam("app_id")}/datasets`, { config: admin }, async (req) => {
    const found = await s.apps.get((req.params as { app_id: string }).app_id.toLowerCase());
    if (!found) throw appNotFound();
    const b = parseOr400(datasetMappingsBody, typeof req.body === "object" && req.body ? req.body : {}, "AppDatasetMappingRequest");
    const entries = Object.entries(b.mappings).map(([dsl, local]) => [dsl, local.toLowerCase()] as const);
    const localIds = [...new Set(entries.map(([, local]) => local))];
    if (localIds.length) {
      const n = await s.prisma.dataset.count({ where: { id: { in: localIds }, tenant_id: found.tenant_id } });
      if (n !== localIds.length) throw new DifyError(404, "not_found", "Dataset not found.");
    }
    await s.prisma.$transaction([
      s.prisma.appDatasetMapping.deleteMany({ where: { app_id: found.id } }),
      s.prisma.appDatasetMapping.createMany({ data: entries.map(([dsl, local]) => ({ app_id: found.id, dsl_dataset_id: dsl, dataset_id: local })) }),
    ]);
    const rows = await s.prisma.appDatasetMapping.findMany({ where: { app_id: found.id }, orderBy: { dsl_dataset_id: "asc" } });
    return { data: rows.map((r) => ({ dsl_dataset_id: r.dsl_dataset_id, dataset_id: r.dataset_id })) };
  });

  app.post("/admin/v1/dataset-api-keys", { config: admin }, async (req, reply) => {
    const b = parseOr400(datasetKeyBody, typeof req.body === "object" && req.body ? req.body : {}, "DatasetApiKeyRequest");
    const tenant = await tenantFor(s, req, b.tenant_id);
    const ids = (b.dataset_ids ?? []).map((x) => x.toLowerCase());
    if (ids.length) {
      const n = await s.prisma.dataset.count({ where: { id: { in: ids }, tenant_id: tenant.id } });
      if (n !== new Set(ids).size) throw new DifyError(404, "not_found", "Dataset not found.");
    }
    const key = await s.apiKeys.create({ tenantId: tenant.id, type: "dataset", datasetIds: ids });
    return reply.status(201).send({ id: key.id, token: key.token });
  });

  app.get("/admin/v1/dataset-api-keys", { config: admin }, async (req) => {
    const q = req.query as { tenant_id?: string };
    return { data: await s.apiKeys.listDatasetKeys(q.tenant_id) };
  });

  app.delete(`/admin/v1/dataset-api-keys/${uuidParam("key_id")}`, { config: admin }, async (req, reply) => {
    const ok = await s.apiKeys.delete({ id: (req.params as { key_id: string }).key_id.toLowerCase(), type: "dataset" });
    if (!ok) throw new DifyError(404, "not_found", "API key not found.");
    return reply.status(204).send();
  });
}

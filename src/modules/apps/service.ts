// Apps: import from Dify's DSL, list, export, delete (admin API and CLI), and the stored
// configuration every other module reads (model_config for basic modes, the published workflow
// for graph modes). dsl-and-workflow §1.
import type { PrismaClient } from "../../lib/prisma.js";
import { toUnix } from "../../lib/time.js";
import { exportDsl, parseDsl, type ParsedDsl } from "./dsl.js";

export const GRAPH_MODES = new Set(["workflow", "advanced-chat"]);

export interface ImportResult {
  id: string;
  name: string;
  mode: string;
  warnings: string[];
}

/** Where an app's runtime configuration lives. */
export interface AppConfig {
  mode: string;
  /** Basic modes: the DSL model_config. */
  modelConfig: Record<string, unknown> | null;
  /** Graph modes: the published workflow. */
  workflow: {
    id: string;
    graph: Record<string, unknown>;
    features: Record<string, unknown>;
    environment_variables: unknown[];
    conversation_variables: unknown[];
  } | null;
}

/** How long a process reuses an app's configuration (it is immutable once imported; a deleted
 * app's keys stop working at once because the key lookup is not cached). */
const CONFIG_TTL_MS = 5000;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}

export function createAppService(prisma: PrismaClient) {
  // Every generation reads its app's configuration in the route and again in the worker: a
  // short-lived cache saves two queries each time on the hot path. Values are frozen so a caller
  // cannot change what the next caller sees.
  const configCache = new Map<string, { at: number; value: Promise<AppConfig | null> }>();
  async function writeApp(tenantId: string, parsed: ParsedDsl): Promise<string> {
    return prisma.$transaction(async (tx) => {
      const app = await tx.app.create({
        data: {
          tenant_id: tenantId,
          name: parsed.app.name,
          mode: parsed.mode,
          description: parsed.app.description,
          icon_type: parsed.app.icon_type,
          icon: parsed.app.icon,
          icon_background: parsed.app.icon_background,
          use_icon_as_answer_icon: parsed.app.use_icon_as_answer_icon,
          dsl_version: parsed.version,
          dsl: parsed.document as object,
          site: { title: parsed.app.name, description: parsed.app.description },
        },
        select: { id: true },
      });
      if (parsed.workflow) {
        const wf = await tx.workflow.create({
          data: {
            tenant_id: tenantId,
            app_id: app.id,
            type: parsed.mode === "workflow" ? "workflow" : "chat",
            // A DSL import publishes: Dify's published versions are timestamp strings.
            version: new Date().toISOString(),
            graph: parsed.workflow.graph as object,
            features: (parsed.workflow.features ?? {}) as object,
            environment_variables: (parsed.workflow.environment_variables ?? []) as object,
            conversation_variables: (parsed.workflow.conversation_variables ?? []) as object,
          },
          select: { id: true },
        });
        await tx.app.update({ where: { id: app.id }, data: { workflow_id: wf.id } });
      } else if (parsed.modelConfig) {
        const mc = await tx.appModelConfig.create({ data: { app_id: app.id, config: parsed.modelConfig as object }, select: { id: true } });
        await tx.app.update({ where: { id: app.id }, data: { app_model_config_id: mc.id } });
      }
      return app.id;
    });
  }

  return {
    /** Throws DslError (→ 400) for content Dify would refuse. */
    async importYaml(tenantId: string, yamlText: string): Promise<ImportResult> {
      const parsed = parseDsl(yamlText);
      const id = await writeApp(tenantId, parsed);
      const warnings = [...parsed.warnings];
      // Ids that already are datasets of this tenant are used as they are (dataset-context.ts);
      // only the others need a mapping.
      const uuidLike = parsed.datasetIds.filter((x) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(x)).map((x) => x.toLowerCase());
      const local = new Set(
        uuidLike.length ? (await prisma.dataset.findMany({ where: { tenant_id: tenantId, id: { in: uuidLike } }, select: { id: true } })).map((d) => d.id) : [],
      );
      const unmapped = parsed.datasetIds.filter((x) => !local.has(x.toLowerCase()));
      if (unmapped.length > 0) {
        warnings.push(
          `Knowledge dataset ids not mapped to local datasets: ${unmapped.join(", ")} (map them with PUT /admin/v1/apps/${id}/datasets)`,
        );
      }
      return { id, name: parsed.app.name, mode: parsed.mode, warnings };
    },

    async list(tenantId?: string) {
      const rows = await prisma.app.findMany({
        where: tenantId ? { tenant_id: tenantId } : {},
        orderBy: { created_at: "asc" },
        select: { id: true, name: true, mode: true, created_at: true },
      });
      return rows.map((r) => ({ id: r.id, name: r.name, mode: r.mode, created_at: toUnix(r.created_at) }));
    },

    async get(id: string) {
      const r = await prisma.app.findUnique({ where: { id } });
      if (!r) return null;
      return {
        id: r.id,
        tenant_id: r.tenant_id,
        name: r.name,
        mode: r.mode,
        description: r.description,
        icon_type: r.icon_type,
        icon: r.icon,
        icon_background: r.icon_background,
        enable_api: r.enable_api,
        status: r.status,
        dsl_version: r.dsl_version,
        created_at: toUnix(r.created_at),
        updated_at: toUnix(r.updated_at),
      };
    },

    async delete(id: string): Promise<boolean> {
      configCache.delete(id);
      const r = await prisma.app.deleteMany({ where: { id } });
      return r.count > 0;
    },

    async exportYaml(id: string): Promise<string | null> {
      const r = await prisma.app.findUnique({ where: { id } });
      if (!r) return null;
      const cfg = await this.config(id);
      const document = structuredClone(r.dsl as Record<string, unknown>);
      // The stored document is what was imported; the live config wins where they could differ.
      if (cfg?.modelConfig) document.model_config = cfg.modelConfig;
      return exportDsl({
        document,
        app: {
          name: r.name,
          mode: r.mode,
          description: r.description,
          icon_type: r.icon_type,
          icon: r.icon,
          icon_background: r.icon_background,
          use_icon_as_answer_icon: r.use_icon_as_answer_icon,
        },
      });
    },

    config(appId: string): Promise<AppConfig | null> {
      const hit = configCache.get(appId);
      if (hit && Date.now() - hit.at < CONFIG_TTL_MS) return hit.value;
      const value = this.loadConfig(appId).then(deepFreeze);
      value.catch(() => configCache.delete(appId));
      if (configCache.size > 1000) configCache.clear();
      configCache.set(appId, { at: Date.now(), value });
      return value;
    },

    async loadConfig(appId: string): Promise<AppConfig | null> {
      const app = await prisma.app.findUnique({ where: { id: appId }, select: { mode: true, app_model_config_id: true, workflow_id: true } });
      if (!app) return null;
      if (GRAPH_MODES.has(app.mode)) {
        const wf = app.workflow_id ? await prisma.workflow.findUnique({ where: { id: app.workflow_id } }) : null;
        return {
          mode: app.mode,
          modelConfig: null,
          workflow: wf
            ? {
                id: wf.id,
                graph: wf.graph as Record<string, unknown>,
                features: wf.features as Record<string, unknown>,
                environment_variables: wf.environment_variables as unknown[],
                conversation_variables: wf.conversation_variables as unknown[],
              }
            : null,
        };
      }
      const mc = app.app_model_config_id ? await prisma.appModelConfig.findUnique({ where: { id: app.app_model_config_id } }) : null;
      return { mode: app.mode, modelConfig: (mc?.config as Record<string, unknown>) ?? null, workflow: null };
    },
  };
}
export type AppService = ReturnType<typeof createAppService>;

// Available models, datasets spec §10:
//   GET /v1/workspaces/current/models/model-types/{model_type}
// Dataset-key auth. Lists the workspace's active models of one type grouped by provider, in the
// plugin-era shape; what counts as active is the model catalogue's rule (models/catalog.ts).
import type { FastifyInstance } from "fastify";
import { Errors } from "../../lib/errors.js";
import { COMPATIBLE_PROVIDER, OPENAI_PROVIDER, parseModelType, type CatalogModel } from "../../modules/models/catalog.js";
import type { Services } from "../services.js";

function providerLabel(provider: string): string {
  if (provider === OPENAI_PROVIDER) return "OpenAI";
  if (provider === COMPATIBLE_PROVIDER) return "OpenAI-API-compatible";
  return provider.split("/").pop() ?? provider;
}

function modelProperties(m: CatalogModel): Record<string, unknown> {
  if (m.type === "text-embedding") return { context_size: m.contextSize ?? 8191, max_chunks: m.maxChunks ?? 32 };
  if (m.type === "llm") return { mode: m.mode ?? "chat", context_size: m.contextSize ?? 4096 };
  if (m.type === "rerank") return { context_size: m.contextSize ?? 8192 };
  return {};
}

export function workspaceModelRoutes(app: FastifyInstance, s: Services): void {
  app.get("/v1/workspaces/current/models/model-types/:model_type", { config: { auth: "dataset" } }, async (req) => {
    const raw = (req.params as { model_type: string }).model_type;
    const type = parseModelType(raw);
    // ModelType.value_of raises ValueError → 400 invalid_param.
    if (!type) throw Errors.invalidParam(`invalid origin model type ${raw}`);
    const tenantId = req.datasetKey!.tenant_id;
    const groups = new Map<string, CatalogModel[]>();
    for (const m of s.modelCatalog.list(type)) groups.set(m.provider, [...(groups.get(m.provider) ?? []), m]);
    // Icon URLs are relative, as Dify's are when CONSOLE_API_URL is unset (no console here).
    const icon = (p: string, lang: string) => `/console/api/workspaces/${tenantId}/model-providers/${p}/icon_small/${lang}`;
    return {
      data: [...groups.entries()].map(([provider, models]) => ({
        tenant_id: tenantId,
        provider,
        label: { en_US: providerLabel(provider), zh_Hans: providerLabel(provider) },
        icon_small: { en_US: icon(provider, "en_US"), zh_Hans: icon(provider, "zh_Hans") },
        icon_small_dark: null,
        status: "active",
        models: models.map((m) => ({
          model: m.model,
          label: { en_US: m.model, zh_Hans: m.model },
          model_type: m.type,
          features: null,
          fetch_from: m.fetchFrom,
          model_properties: modelProperties(m),
          deprecated: false,
          status: "active",
          load_balancing_enabled: false,
        })),
      })),
    };
  });
}

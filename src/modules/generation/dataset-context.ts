// Knowledge in basic apps (dsl-and-workflow §2.7): the datasets of `dataset_configs`, retrieved
// in `multiple` or `single` ("router") mode, become the prompt's `{{#context#}}` and — when the
// citations feature (`retriever_resource.enabled`) is on — the `retriever_resources` of
// `message_end.metadata` / the blocking body (apps spec §7.1, §7.3).
//
// DSL files carry the dataset ids of the workspace they were exported from. An operator maps them
// to local datasets with PUT /admin/v1/apps/{id}/datasets (table app_dataset_mappings); an id
// that already is a dataset of the app's tenant is used as it is.
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import { isUuid } from "../../lib/ids.js";
import type { ModelConfig, Models } from "../models/index.js";
import { buildCitations, buildContext } from "../retrieval/format.js";
import { resolveConditionValues, type MetadataFilter } from "../retrieval/metadata-filter.js";
import { retrieve, retrieveSingle, type RetrievalRecord } from "../retrieval/search.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export interface DatasetContext {
  /** `null` when nothing was retrieved: the context block is then left out of the prompt. */
  context: string | null;
  /** Citations (apps spec §7.3); `[]` when the feature is off or nothing was found. */
  retrieverResources: Record<string, unknown>[];
}

const EMPTY: DatasetContext = { context: null, retrieverResources: [] };

/** Enabled dataset ids of a model_config, in DSL order (DatasetConfigManager.convert). */
export function dslDatasetIds(modelConfig: Obj): string[] {
  const ids: string[] = [];
  const dc = modelConfig.dataset_configs;
  const list = isObj(dc) && isObj(dc.datasets) ? dc.datasets.datasets : undefined;
  if (Array.isArray(list)) {
    for (const item of list) {
      const d = isObj(item) ? item.dataset : undefined;
      if (isObj(d) && d.enabled === true && typeof d.id === "string" && d.id) ids.push(d.id);
    }
  }
  // Legacy: datasets listed as agent_mode tools, read only when agent_mode is enabled (§2.7).
  const am = modelConfig.agent_mode;
  if (isObj(am) && am.enabled === true && Array.isArray(am.tools)) {
    for (const tool of am.tools) {
      const d = isObj(tool) && Object.keys(tool).length === 1 ? tool.dataset : undefined;
      if (isObj(d) && d.enabled === true && typeof d.id === "string" && d.id) ids.push(d.id);
    }
  }
  return [...new Set(ids)];
}

/**
 * DSL dataset ids → local dataset ids of the tenant: a mapping wins; else an id that is a local
 * dataset of the tenant; unresolvable ids are dropped (the import warning lists them).
 */
export async function resolveAppDatasetIds(prisma: PrismaClient, appId: string, tenantId: string, dslIds: string[]): Promise<{ resolved: string[]; unmapped: string[] }> {
  if (dslIds.length === 0) return { resolved: [], unmapped: [] };
  const mappings = await prisma.appDatasetMapping.findMany({ where: { app_id: appId, dsl_dataset_id: { in: dslIds } } });
  const mapped = new Map(mappings.map((m) => [m.dsl_dataset_id, m.dataset_id]));
  const candidates = [...new Set([...mapped.values(), ...dslIds.filter(isUuid).map((x) => x.toLowerCase())])];
  const local = new Set(
    (await prisma.dataset.findMany({ where: { tenant_id: tenantId, id: { in: candidates } }, select: { id: true } })).map((d) => d.id),
  );
  const resolved: string[] = [];
  const unmapped: string[] = [];
  for (const id of dslIds) {
    const target = mapped.get(id) ?? (isUuid(id) ? id.toLowerCase() : undefined);
    if (target && local.has(target)) resolved.push(target);
    else unmapped.push(id);
  }
  return { resolved: [...new Set(resolved)], unmapped };
}

/** `{{var}}` in manual metadata condition values come from the run's inputs (§2.7). */
function renderInputs(inputs: Obj): (s: string) => string {
  return (s) => s.replace(/\{\{([a-zA-Z_][a-zA-Z0-9_]{0,29})\}\}/g, (m, name: string) => (name in inputs ? String(inputs[name] ?? "") : m));
}

export interface DatasetContextArgs {
  appId: string;
  tenantId: string;
  appMode: "chat" | "completion" | "agent-chat";
  modelConfig: Obj;
  inputs: Obj;
  query: string;
  model: ModelConfig;
  user?: string | undefined;
  signal?: AbortSignal | undefined;
}

export async function retrieveDatasetContext(
  deps: { prisma: PrismaClient; models: Models; logger?: Logger | undefined },
  args: DatasetContextArgs,
): Promise<DatasetContext> {
  const dslIds = dslDatasetIds(args.modelConfig);
  if (dslIds.length === 0) return EMPTY;
  // Completion apps search with the input named by dataset_query_variable (§2.7).
  const query =
    args.appMode === "completion"
      ? (() => {
          const v = args.modelConfig.dataset_query_variable;
          const value = typeof v === "string" && v ? args.inputs[v] : undefined;
          return typeof value === "string" ? value : "";
        })()
      : args.query;
  if (!query) return EMPTY;
  const { resolved, unmapped } = await resolveAppDatasetIds(deps.prisma, args.appId, args.tenantId, dslIds);
  if (unmapped.length) deps.logger?.warn({ appId: args.appId, unmapped }, "knowledge datasets of the app are not mapped to local datasets");
  if (resolved.length === 0) return EMPTY;

  const dc = isObj(args.modelConfig.dataset_configs) ? args.modelConfig.dataset_configs : {};
  const metadataFilter: MetadataFilter | null =
    dc.metadata_filtering_mode === "manual" && isObj(dc.metadata_filtering_conditions)
      ? resolveConditionValues(dc.metadata_filtering_conditions as MetadataFilter, renderInputs(args.inputs))
      : null;
  const common = { tenantId: args.tenantId, query, metadataFilter, countHits: true, querySource: "app", signal: args.signal };

  let records: RetrievalRecord[];
  if (dc.retrieval_model === "single") {
    records = await retrieveSingle(deps, { ...common, datasetIds: resolved, model: args.model, user: args.user });
  } else {
    records = await retrieve(deps, { ...common, datasetIds: resolved, retrievalModel: dc, strategy: "multiple" });
  }
  const citationsOn = isObj(args.modelConfig.retriever_resource) && args.modelConfig.retriever_resource.enabled === true;
  return { context: buildContext(records), retrieverResources: citationsOn ? buildCitations(records, "dev") : [] };
}

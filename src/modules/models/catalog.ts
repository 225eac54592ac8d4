// Which models a workspace "has" (datasets spec §10, §4.1–4.4). Dify lists the tenant's active
// models per type and checks `embedding_model`/`embedding_model_provider` against them; Servify
// has no provider settings, so the catalogue is derived from the registry (docs/models.md):
//   1. every models-file entry with an exact name (no `*`) and `type: <that type>` (an untyped
//      entry counts as an `llm`), under its provider — or, without one, under Dify's
//      OpenAI-API-compatible provider id (the entry matches any provider name);
//   2. OpenAI's predefined models of that type under `langgenius/openai/openai` (what a Dify
//      workspace with only OpenAI configured lists), plus the configured moderation / speech2text
//      / tts / system models;
// keeping only the ones the registry can actually call (base URL and key present) — Dify lists
// `only_active=True` models. A pair is *available* when it is listed, or when a typed models-file
// entry matches it by glob (e.g. `match: {name: "*"}, type: text-embedding`) and is callable.
import { normaliseProvider, type ModelType, type Registry } from "./registry.js";

export const OPENAI_PROVIDER = "langgenius/openai/openai";
export const COMPATIBLE_PROVIDER = "langgenius/openai_api_compatible/openai_api_compatible";

export interface CatalogModel {
  provider: string;
  model: string;
  type: ModelType;
  fetchFrom: "predefined-model" | "customizable-model";
  contextSize?: number | undefined;
  maxChunks?: number | undefined;
  mode?: "chat" | "completion" | undefined;
}

// OpenAI plugin's predefined text-embedding models in its position order (context sizes from the
// plugin's model schemas).
const PREDEFINED_EMBEDDINGS: Array<{ model: string; contextSize: number; maxChunks: number }> = [
  { model: "text-embedding-3-large", contextSize: 8191, maxChunks: 32 },
  { model: "text-embedding-3-small", contextSize: 8191, maxChunks: 32 },
  { model: "text-embedding-ada-002", contextSize: 8097, maxChunks: 32 },
];

/** Dify's `ModelType.value_of`: canonical values plus the legacy origin names. */
export function parseModelType(value: string): ModelType | null {
  switch (value) {
    case "llm":
    case "text-generation":
      return "llm";
    case "text-embedding":
    case "embeddings":
      return "text-embedding";
    case "rerank":
    case "reranking":
      return "rerank";
    case "speech2text":
      return "speech2text";
    case "tts":
    case "text2speech":
      return "tts";
    case "moderation":
      return "moderation";
    default:
      return null;
  }
}

function globMatches(pattern: string, name: string): boolean {
  if (pattern === "*") return true;
  if (!pattern.includes("*")) return pattern === name;
  const re = new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

function callable(registry: Registry, provider: string, model: string, type: ModelType): boolean {
  try {
    registry.resolve(provider, model, type);
    return true;
  } catch {
    return false;
  }
}

export function createModelCatalog(registry: Registry) {
  function candidates(type: ModelType): CatalogModel[] {
    const out: CatalogModel[] = [];
    const seen = new Set<string>();
    const push = (m: CatalogModel) => {
      const k = `${m.model}:${m.provider}`;
      if (seen.has(k)) return;
      seen.add(k);
      out.push(m);
    };
    for (const e of registry.file.models) {
      const entryType = e.type ?? "llm";
      if (entryType !== type || e.match.name.includes("*")) continue;
      push({
        provider: e.match.provider ? normaliseProvider(e.match.provider) : COMPATIBLE_PROVIDER,
        model: e.match.name,
        type,
        fetchFrom: "customizable-model",
        contextSize: e.context_size,
        maxChunks: e.batch_size,
        mode: e.mode,
      });
    }
    if (type === "text-embedding") {
      for (const p of PREDEFINED_EMBEDDINGS) push({ provider: OPENAI_PROVIDER, model: p.model, type, fetchFrom: "predefined-model", contextSize: p.contextSize, maxChunks: p.maxChunks });
    }
    const configured =
      type === "moderation" ? registry.moderationModel()
      : type === "speech2text" ? registry.speech2textModel()
      : type === "tts" ? registry.ttsModel()
      : type === "llm" ? registry.systemModel()
      : undefined;
    if (configured) push({ provider: normaliseProvider(configured.provider) || OPENAI_PROVIDER, model: configured.name, type, fetchFrom: "predefined-model" });
    return out;
  }

  return {
    /** Active models of one type, in catalogue order. */
    list(type: ModelType): CatalogModel[] {
      return candidates(type).filter((m) => callable(registry, m.provider, m.model, type));
    },

    /** Whether `model` of `provider` (short or full id) may be used as a model of `type`. */
    isAvailable(providerIn: string, model: string, type: ModelType): boolean {
      const provider = normaliseProvider(providerIn);
      if (!provider || !model) return false;
      if (this.list(type).some((m) => m.provider === provider && m.model === model)) return true;
      const entry = registry.file.models.find(
        (e) => e.type === type && (!e.match.provider || normaliseProvider(e.match.provider) === provider) && globMatches(e.match.name, model),
      );
      return entry !== undefined && callable(registry, provider, model, type);
    },

    /** The workspace default of a type (Dify's default model setting): the first models-file
     * model, else OpenAI's text-embedding-3-small (the cheap one), else the first active one. */
    defaultModel(type: ModelType): CatalogModel | undefined {
      const all = this.list(type);
      return all.find((m) => m.fetchFrom === "customizable-model") ?? all.find((m) => m.model === "text-embedding-3-small") ?? all[0];
    },
  };
}
export type ModelCatalog = ReturnType<typeof createModelCatalog>;

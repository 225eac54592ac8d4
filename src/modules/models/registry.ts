// Provider registry (DESIGN §5): maps the Dify provider/model names found in DSL files
// (`model: {provider, name, mode, completion_params}`, dsl spec §2.1) to OpenAI-compatible
// endpoints. With no MODELS_FILE, every model is served by OPENAI_BASE_URL / OPENAI_API_KEY under
// its Dify name, unpriced (usage prices "0.0", apps spec §7.2).
//
// MODELS_FILE (YAML or JSON; JSON is valid YAML) — documented for users in docs/models.md:
//
//   defaults:                      # the default endpoint; each key falls back to the env config
//     base_url: https://api.openai.com/v1      # else OPENAI_BASE_URL
//     api_key: sk-...                          # else api_key_env, else OPENAI_API_KEY
//     api_key_env: MY_OPENAI_KEY               # name of an environment variable holding the key
//     timeout_seconds: 600
//   system_model: { provider: openai, name: gpt-4o-mini }   # conversation names / suggested
//                                                            # questions (Dify: workspace default LLM)
//   moderation_model: { name: omni-moderation-latest }      # `openai_moderation` (dsl spec §2.8)
//   speech2text_model: { name: whisper-1 }
//   tts_model: { name: tts-1, voice: alloy }
//   models:                        # first matching entry wins (file order)
//     - match: { provider: langgenius/openai/openai, name: gpt-4o }
//       type: llm                  # llm | text-embedding | rerank | speech2text | tts | moderation;
//                                  # omitted = the entry matches any type
//       base_url: http://vllm:8000/v1   # an entry with its own base_url never receives the default
//       api_key: ...                    #   key: give api_key / api_key_env, or api_key: "" for
//       api_key_env: ...                #   servers that need none (Ollama, vLLM, LM Studio)
//       model: gpt-4o-2024-08-06   # real model name sent to the endpoint (default: the Dify name)
//       mode: chat                 # chat | completion (legacy /completions); default: the DSL's mode
//       vision: true               # false = image parts are dropped from prompts
//       context_size: 128000       # enables Dify's max_tokens re-calculation (dsl spec §2.3 step 9)
//       max_output_tokens: 16384   # clamps max_tokens
//       max_tokens_param: max_tokens | max_completion_tokens   # default by model family
//       stream_usage: true         # false = don't send stream_options (servers that reject it)
//       extra_params: [top_k]      # completion_params forwarded verbatim besides the OpenAI ones
//       extra_body: { chat_template_kwargs: { enable_thinking: false } }  # merged into each request
//       pricing: { input: "2.5", output: "10", unit: "0.000001", currency: USD }
//       dimensions: 1024           # text-embedding: requested output dimensions
//       batch_size: 32             # text-embedding: inputs per request
//       rerank_path: /rerank       # rerank: path appended to base_url
//       rerank_style: jina         # jina | cohere (same body) | tei (HF text-embeddings-inference)
//       timeout_seconds: 600
//
// Matching: `match.name` is exact or a glob with `*` ("*" matches every name); `match.provider`
// is optional and, like the provider in requests, normalised the way Dify does it: a provider
// without "/" becomes `langgenius/<p>/<p>` ("openai" ≡ "langgenius/openai/openai").
// Prices should be quoted strings: they are Python Decimals in Dify and are echoed as written
// (`"0.0025"`, not a float). Unquoted numbers are read from their source text, so `0.0025` works
// too, but `1.0` would print as "1.0" only when quoted.
import { readFileSync } from "node:fs";
import { isMap, isPair, isScalar, parseDocument, visit } from "yaml";
import { z } from "zod";

import type { Config } from "../../config/index.js";
import { Errors } from "../../lib/errors.js";
import { Decimal } from "./decimal.js";

export const MODEL_TYPES = ["llm", "text-embedding", "rerank", "speech2text", "tts", "moderation"] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/** A model as named in a DSL file or request: Dify's provider id and model name. */
export interface ModelRef {
  provider?: string | undefined;
  name: string;
}

export interface Pricing {
  input: Decimal;
  output?: Decimal | undefined;
  unit: Decimal;
  currency: string;
}

/** Everything needed to call one model. */
export interface ModelEndpoint {
  type: ModelType;
  /** Normalised Dify provider id ("" when the caller gave none). */
  provider: string;
  /** The Dify model name, as requested. */
  name: string;
  baseURL: string;
  /** "" only for keyless endpoints (`api_key: ""`); a placeholder is sent then. */
  apiKey: string;
  /** Real model name sent to the endpoint. */
  model: string;
  mode?: "chat" | "completion" | undefined;
  vision?: boolean | undefined;
  contextSize?: number | undefined;
  maxOutputTokens?: number | undefined;
  maxTokensParam?: "max_tokens" | "max_completion_tokens" | undefined;
  streamUsage: boolean;
  extraParams: string[];
  extraBody?: Record<string, unknown> | undefined;
  pricing?: Pricing | undefined;
  dimensions?: number | undefined;
  batchSize?: number | undefined;
  rerankPath: string;
  rerankStyle: "jina" | "cohere" | "tei";
  timeoutMs?: number | undefined;
  /** Which models-file entry matched (index), for logs; undefined = defaults only. */
  entry?: number | undefined;
}

const decimalString = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine((v) => Decimal.isValid(v), "must be a decimal number, e.g. \"0.0025\"");

const pricingSchema = z.object({
  input: decimalString,
  output: decimalString.optional(),
  unit: decimalString,
  currency: z.string().min(1).default("USD"),
});

const refSchema = z.object({ provider: z.string().optional(), name: z.string().min(1) });

const endpointFields = {
  base_url: z.string().min(1).optional(),
  api_key: z.string().optional(),
  api_key_env: z.string().min(1).optional(),
  timeout_seconds: z.number().positive().optional(),
};

const entrySchema = z.object({
  match: z.object({ provider: z.string().optional(), name: z.string().min(1) }),
  type: z.enum(MODEL_TYPES).optional(),
  ...endpointFields,
  model: z.string().min(1).optional(),
  mode: z.enum(["chat", "completion"]).optional(),
  vision: z.boolean().optional(),
  context_size: z.number().int().positive().optional(),
  max_output_tokens: z.number().int().positive().optional(),
  max_tokens_param: z.enum(["max_tokens", "max_completion_tokens"]).optional(),
  stream_usage: z.boolean().optional(),
  extra_params: z.array(z.string()).optional(),
  extra_body: z.record(z.string(), z.unknown()).optional(),
  pricing: pricingSchema.optional(),
  dimensions: z.number().int().positive().optional(),
  batch_size: z.number().int().positive().optional(),
  rerank_path: z.string().optional(),
  rerank_style: z.enum(["jina", "cohere", "tei"]).optional(),
});

export const modelsFileSchema = z.object({
  defaults: z.object(endpointFields).optional(),
  system_model: refSchema.optional(),
  moderation_model: refSchema.optional(),
  speech2text_model: refSchema.optional(),
  tts_model: refSchema.extend({ voice: z.string().optional() }).optional(),
  models: z.array(entrySchema).default([]),
});

export type ModelsFile = z.infer<typeof modelsFileSchema>;
type Entry = ModelsFile["models"][number];

/** Dify's `ModelProviderID`: "openai" → "langgenius/openai/openai"; full ids pass unchanged. */
export function normaliseProvider(provider: string | undefined | null): string {
  const p = (provider ?? "").trim();
  if (!p) return "";
  return p.includes("/") ? p : `langgenius/${p}/${p}`;
}

/** Parses a models file's text (YAML or JSON), keeping the source text of numeric prices. */
export function parseModelsFile(text: string, source = "MODELS_FILE"): ModelsFile {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new Error(`${source}: ${doc.errors[0]!.message}`);
  // Prices are Python Decimals in Dify and must print as written: a YAML float 0.0025 is
  // replaced by its source text before anything turns it into a binary double.
  visit(doc, {
    Pair(_, pair) {
      if (!isPair(pair) || !isScalar(pair.key) || pair.key.value !== "pricing" || !isMap(pair.value)) return;
      for (const item of pair.value.items) {
        const v = item.value;
        if (isScalar(v) && typeof v.value === "number" && v.range) v.value = text.slice(v.range[0], v.range[1]);
      }
    },
  });
  const parsed = modelsFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`${source} is invalid:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export function loadModelsFile(path: string): ModelsFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`MODELS_FILE ${path} cannot be read: ${(err as Error).message}`);
  }
  return parseModelsFile(text, `MODELS_FILE ${path}`);
}

function toPricing(p: NonNullable<Entry["pricing"]>): Pricing {
  return {
    input: Decimal.parse(p.input),
    output: p.output !== undefined ? Decimal.parse(p.output) : undefined,
    unit: Decimal.parse(p.unit),
    currency: p.currency,
  };
}

function globMatches(pattern: string, name: string): boolean {
  if (pattern === "*") return true;
  if (!pattern.includes("*")) return pattern === name;
  const re = new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

export interface RegistryOptions {
  /** Parsed models file; default: loaded from config.MODELS_FILE when set. */
  file?: ModelsFile | undefined;
  /** Where `api_key_env` names are looked up (default: process.env). */
  env?: Record<string, string | undefined> | undefined;
}

export interface Registry {
  readonly file: ModelsFile;
  /** Endpoint for a Dify model. Throws provider_not_initialize when no base URL / key is configured. */
  resolve(provider: string | undefined, name: string, type: ModelType): ModelEndpoint;
  /** Pricing of a model (no credential check: usage can be computed for any model). */
  pricing(provider: string | undefined, name: string, type?: ModelType): Pricing | undefined;
  /** Model used for conversation names and suggested questions when configured (apps spec §8.7). */
  systemModel(): ModelRef | undefined;
  moderationModel(): ModelRef;
  speech2textModel(): ModelRef;
  ttsModel(): ModelRef & { voice: string };
}

export function createRegistry(config: Config, opts: RegistryOptions = {}): Registry {
  const file = opts.file ?? (config.MODELS_FILE ? loadModelsFile(config.MODELS_FILE) : modelsFileSchema.parse({}));
  // Keys named by api_key_env live in the environment on purpose (secrets out of the file). The
  // config module owns process.env; this is the one documented exception, injectable for tests.
  const env = opts.env ?? process.env;
  const keyOf = (src: { api_key?: string | undefined; api_key_env?: string | undefined }): string | undefined =>
    src.api_key ?? (src.api_key_env ? env[src.api_key_env] : undefined);

  const defaults = file.defaults ?? {};
  const defaultBaseURL = defaults.base_url ?? config.OPENAI_BASE_URL;
  const defaultKey = keyOf(defaults) ?? config.OPENAI_API_KEY;

  function findEntry(provider: string, name: string, type: ModelType): { entry: Entry; index: number } | undefined {
    for (const [index, entry] of file.models.entries()) {
      if (entry.type && entry.type !== type) continue;
      if (entry.match.provider && provider && normaliseProvider(entry.match.provider) !== provider) continue;
      if (entry.match.provider && !provider) continue;
      if (globMatches(entry.match.name, name)) return { entry, index };
    }
    return undefined;
  }

  return {
    file,
    pricing(providerIn, name, type = "llm") {
      const p = findEntry(normaliseProvider(providerIn), name, type)?.entry.pricing;
      return p ? toPricing(p) : undefined;
    },
    resolve(providerIn, name, type) {
      const provider = normaliseProvider(providerIn);
      const found = findEntry(provider, name, type);
      const entry = found?.entry;
      let baseURL: string;
      let apiKey: string | undefined;
      if (entry?.base_url) {
        // A key only ever travels to the base URL it was configured with.
        baseURL = entry.base_url;
        apiKey = keyOf(entry);
      } else {
        baseURL = defaultBaseURL;
        apiKey = keyOf(entry ?? {}) ?? defaultKey;
      }
      const label = name || "model";
      if (!baseURL) throw Errors.providerNotInitialize(`Model ${label} credentials is not initialized.`);
      // An explicit `api_key: ""` on an entry means "this server needs no key"; the default
      // endpoint with an empty OPENAI_API_KEY is simply not configured.
      const keyless = entry?.base_url !== undefined && entry.api_key === "";
      if (!apiKey && !keyless) throw Errors.providerNotInitialize(`Model ${label} credentials is not initialized.`);
      const p = entry?.pricing;
      const timeoutSeconds = entry?.timeout_seconds ?? (entry?.base_url ? undefined : defaults.timeout_seconds);
      return {
        type,
        provider,
        name,
        baseURL: baseURL.replace(/\/+$/, ""),
        apiKey: apiKey ?? "",
        model: entry?.model ?? name,
        mode: entry?.mode,
        vision: entry?.vision,
        contextSize: entry?.context_size,
        maxOutputTokens: entry?.max_output_tokens,
        maxTokensParam: entry?.max_tokens_param,
        streamUsage: entry?.stream_usage ?? true,
        extraParams: entry?.extra_params ?? [],
        extraBody: entry?.extra_body,
        pricing: p ? toPricing(p) : undefined,
        dimensions: entry?.dimensions,
        batchSize: entry?.batch_size,
        rerankPath: entry?.rerank_path ?? "/rerank",
        rerankStyle: entry?.rerank_style ?? "jina",
        timeoutMs: timeoutSeconds !== undefined ? timeoutSeconds * 1000 : undefined,
        entry: found?.index,
      };
    },
    systemModel: () => file.system_model,
    moderationModel: () => file.moderation_model ?? { name: "omni-moderation-latest" },
    speech2textModel: () => file.speech2text_model ?? { name: "whisper-1" },
    ttsModel: () => ({ ...(file.tts_model ?? { name: "tts-1" }), voice: file.tts_model?.voice ?? "alloy" }),
  };
}

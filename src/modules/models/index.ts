// The model module (DESIGN §5): chat, embeddings, rerank, speech-to-text, text-to-speech and
// moderation for every OpenAI-compatible endpoint. This is the only place that imports `openai`;
// everything else talks to models through `createModels(config)`.
//
// - Endpoints, real model names and prices come from the registry (registry.ts, docs/models.md).
// - Token usage comes from the provider (`stream_options.include_usage`) and is estimated with a
//   tokenizer only when absent (tokens.ts).
// - Prices follow Dify's Decimal arithmetic exactly (decimal.ts, apps spec §7.2).
// - Errors leave as DifyErrors from Dify's catalogue (errors.ts, apps spec §5.1 / §6.6).
import OpenAI, { toFile } from "openai";

import type { Config } from "../../config/index.js";
import { DifyError, Errors } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import { computePrice, Decimal, UNPRICED } from "./decimal.js";
import { toDifyModelError } from "./errors.js";
import { createRegistry, type ModelEndpoint, type ModelRef, type ModelType, type Registry, type RegistryOptions } from "./registry.js";
import { countMessageTokens, countTokens, loadTokenizer } from "./tokens.js";

export { Decimal, computePrice } from "./decimal.js";
export { isRetryableModelError, toDifyModelError, toErrorFrameParts, toStreamErrorParts, type StreamErrorParts } from "./errors.js";
export {
  createRegistry,
  loadModelsFile,
  normaliseProvider,
  parseModelsFile,
  type ModelEndpoint,
  type ModelRef,
  type ModelType,
  type ModelsFile,
  type Registry,
} from "./registry.js";
export { countTokens, countMessageTokens } from "./tokens.js";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type ChatContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: "auto" | "low" | "high" | undefined } };

/** A tool call, as emitted by `chatStream` and as fed back in assistant messages. */
export interface ToolCall {
  id: string;
  name: string;
  /** JSON text exactly as the model produced it (may be malformed). */
  arguments: string;
}

/** OpenAI-like chat message. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content?: string | ChatContentPart[] | null | undefined;
  name?: string | undefined;
  /** assistant: the calls it made. */
  tool_calls?: ToolCall[] | undefined;
  /** tool: which call this message answers. */
  tool_call_id?: string | undefined;
}

export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  /** JSON Schema of the arguments. */
  parameters?: Record<string, unknown> | undefined;
}

/** Dify's `model` block (dsl spec §2.1). */
export interface ModelConfig {
  /** Dify provider id ("langgenius/openai/openai" or "openai"); optional for bare model names. */
  provider?: string | undefined;
  name: string;
  mode?: "chat" | "completion" | undefined;
  completion_params?: Record<string, unknown> | undefined;
}

export interface ChatRequest {
  model: ModelConfig;
  messages: ChatMessage[];
  /** The prompt for completion-mode models (legacy /completions); default: the messages' text. */
  prompt?: string | undefined;
  tools?: ToolDefinition[] | undefined;
  /** Stop sequences besides `completion_params.stop`. */
  stop?: string[] | undefined;
  signal?: AbortSignal | undefined;
  /** End-user identifier forwarded to the provider. */
  user?: string | undefined;
}

export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type ChatStreamEvent =
  | { type: "text"; delta: string }
  | { type: "tool_calls"; calls: ToolCall[] }
  | {
      type: "done";
      /** "stop" | "length" | "tool_calls" | "content_filter" …; "stop" after an abort. */
      finishReason: string;
      usage: TokenUsage;
      /** True when the provider reported no usage (or the stream was aborted) and it was estimated. */
      estimated: boolean;
      /** Seconds from the call to the first text/tool delta (null if none came). */
      timeToFirstToken: number | null;
      /** Seconds from the call to the end of the stream. */
      latency: number;
    };

export interface ChatResult {
  text: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: TokenUsage;
  estimated: boolean;
  timeToFirstToken: number | null;
  latency: number;
}

/**
 * Dify's usage object (apps spec §7.2), keys in Dify's order, prices as Python Decimal strings.
 * A type alias (not an interface) so it stays assignable to Record<string, unknown>.
 */
export type DifyUsage = {
  prompt_tokens: number;
  prompt_unit_price: string;
  prompt_price_unit: string;
  prompt_price: string;
  completion_tokens: number;
  completion_unit_price: string;
  completion_price_unit: string;
  completion_price: string;
  total_tokens: number;
  total_price: string;
  currency: string;
  latency: number;
  time_to_first_token: number | null;
  time_to_generate: number | null;
};

export interface ModerationResult {
  flagged: boolean;
  /** Categories flagged in any input (only when flagged). */
  categories?: string[] | undefined;
}

/** Dify's EmbeddingUsage (tokens, prices as Decimal strings, latency in seconds). */
export interface EmbeddingUsage {
  tokens: number;
  total_tokens: number;
  unit_price: string;
  price_unit: string;
  total_price: string;
  currency: string;
  latency: number;
}

export interface EmbedResult {
  vectors: number[][];
  dimension: number;
  usage: EmbeddingUsage;
}

export interface RerankResult {
  index: number;
  score: number;
}

export interface AudioFile {
  data: Buffer | Uint8Array;
  filename: string;
  mimeType: string;
}

export interface SpeechResult {
  data: Buffer | AsyncIterable<Uint8Array>;
  contentType: string;
}

export interface Models {
  readonly registry: Registry;
  /** Streams a chat (or completion-mode) generation. Errors are thrown as DifyErrors. */
  chatStream(req: ChatRequest): AsyncGenerator<ChatStreamEvent, void, undefined>;
  /** Blocking variant of chatStream. */
  chat(req: ChatRequest): Promise<ChatResult>;
  /** Dify's usage object for a model and token counts (apps spec §7.2). */
  usage(
    model: ModelRef,
    promptTokens: number,
    completionTokens: number,
    latencySeconds: number,
    timing?: { timeToFirstToken?: number | null; timeToGenerate?: number | null },
  ): DifyUsage;
  /** OpenAI moderation over the texts (sensitive_word_avoidance `openai_moderation`, dsl spec §2.8). */
  moderate(texts: string[], opts?: { model?: ModelRef | undefined; signal?: AbortSignal | undefined }): Promise<ModerationResult>;
  embed(
    model: ModelRef,
    texts: string[],
    opts?: { batchSize?: number | undefined; dimensions?: number | undefined; signal?: AbortSignal | undefined },
  ): Promise<EmbedResult>;
  /** Relevance scores, best first (Jina/Cohere-style `POST {base_url}/rerank`). */
  rerank(model: ModelRef, query: string, documents: string[], topN?: number, opts?: { signal?: AbortSignal }): Promise<RerankResult[]>;
  /** Speech to text; `model` null = the configured default (whisper-1). */
  transcribe(model: ModelRef | null, file: AudioFile, opts?: { signal?: AbortSignal }): Promise<string>;
  /** Text to speech; `model`/`voice` null = the configured defaults (tts-1 / alloy). */
  speech(
    model: ModelRef | null,
    text: string,
    voice?: string | null,
    opts?: { format?: "mp3" | "opus" | "aac" | "flac" | "wav" | "pcm"; stream?: boolean; signal?: AbortSignal },
  ): Promise<SpeechResult>;
  /** The model for conversation names / suggested questions: `system_model`, else `fallback`. */
  systemModel(fallback: ModelConfig): ModelConfig;
}

export interface CreateModelsOptions extends RegistryOptions {
  logger?: Logger | undefined;
  /** Retries of the openai client for 429/5xx/connection errors (default 2; tests use 0). */
  maxRetries?: number | undefined;
  /** Default request timeout in ms (default: the openai client's 10 minutes). */
  timeoutMs?: number | undefined;
  /** Default embedding batch size (default 32). */
  embeddingBatchSize?: number | undefined;
}

// ---------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------

/** Sent as the key to endpoints configured with `api_key: ""` (the openai client needs one). */
const KEYLESS_PLACEHOLDER = "EMPTY";
/** Dify chunks moderation input at 2 000 characters, 32 chunks per request (openai_moderation). */
const MODERATION_CHUNK_CHARS = 2000;
const MODERATION_CHUNKS_PER_REQUEST = 32;

export function createModels(config: Config, opts: CreateModelsOptions = {}): Models {
  const registry = createRegistry(config, opts);
  const log = opts.logger?.child({ module: "models" });
  const maxRetries = opts.maxRetries ?? 2;
  const clients = new Map<string, OpenAI>();

  /** One client per (baseURL, apiKey): connection pooling and retries live in the client. */
  function clientFor(endpoint: ModelEndpoint): OpenAI {
    const apiKey = endpoint.apiKey || KEYLESS_PLACEHOLDER;
    const key = `${endpoint.baseURL}\u0000${apiKey}`;
    let client = clients.get(key);
    if (!client) {
      client = new OpenAI({
        baseURL: endpoint.baseURL,
        apiKey,
        // Explicit nulls so the client never picks up OPENAI_ORG_ID & co. from the environment
        // (config/ is the only reader of process.env).
        organization: null,
        project: null,
        adminAPIKey: null,
        webhookSecret: null,
        maxRetries,
        ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
        logLevel: "off",
      });
      clients.set(key, client);
    }
    return client;
  }

  function resolve(model: ModelRef, type: ModelType): ModelEndpoint {
    return registry.resolve(model.provider, model.name, type);
  }

  const where = (e: ModelEndpoint) => ({ provider: e.provider, name: e.name, model: e.model, baseURL: safeUrl(e.baseURL) });

  function fail(e: ModelEndpoint | undefined, op: string, err: unknown): DifyError {
    const mapped = toDifyModelError(err);
    log?.warn(
      { op, ...(e ? where(e) : {}), code: mapped.code, status: mapped.status, error: mapped.message },
      "model call failed",
    );
    return mapped;
  }

  function requestOptions(e: ModelEndpoint, signal?: AbortSignal): OpenAI.RequestOptions {
    return { ...(signal ? { signal } : {}), ...(e.timeoutMs ? { timeout: e.timeoutMs } : {}) };
  }

  // ---- chat ---------------------------------------------------------------

  async function* chatStream(req: ChatRequest): AsyncGenerator<ChatStreamEvent, void, undefined> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let endpoint: ModelEndpoint | undefined;
    try {
      endpoint = resolve(req.model, "llm");
    } catch (err) {
      throw fail(undefined, "chat", err);
    }
    const e = endpoint;
    const mode = e.mode ?? req.model.mode ?? "chat";

    // Our own controller: aborted by the caller's signal, and by us in `finally` so that a
    // consumer that stops iterating early also cancels the HTTP request.
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    if (req.signal?.aborted) controller.abort();
    else req.signal?.addEventListener("abort", onAbort, { once: true });

    let text = "";
    let finishReason: string | null = null;
    let providerUsage: TokenUsage | undefined;
    let firstTokenAt: number | null = null;
    const toolCalls = new Map<number, ToolCall>();
    let aborted = false;

    try {
      const params = await buildParams(e, req, mode);
      log?.debug({ op: "chat", mode, ...where(e), stream: true }, "model call");
      if (controller.signal.aborted) {
        aborted = true;
      } else if (mode === "completion") {
        const stream = await clientFor(e).completions.create(
          {
            ...params,
            model: e.model,
            prompt: req.prompt ?? messagesAsPrompt(req.messages),
            stream: true,
            ...(e.streamUsage ? { stream_options: { include_usage: true } } : {}),
          } as OpenAI.CompletionCreateParamsStreaming,
          requestOptions(e, controller.signal),
        );
        for await (const chunk of iterate(stream)) {
          if (chunk.usage) providerUsage = pickUsage(chunk.usage);
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          if (choice.text) {
            firstTokenAt ??= seconds();
            text += choice.text;
            yield { type: "text", delta: choice.text };
          }
          if (choice.finish_reason) finishReason = choice.finish_reason;
        }
      } else {
        const stream = await clientFor(e).chat.completions.create(
          {
            ...params,
            model: e.model,
            messages: toOpenAIMessages(req.messages, e),
            ...(req.tools?.length ? { tools: req.tools.map(toOpenAITool) } : {}),
            stream: true,
            ...(e.streamUsage ? { stream_options: { include_usage: true } } : {}),
          } as OpenAI.ChatCompletionCreateParamsStreaming,
          requestOptions(e, controller.signal),
        );
        let reasoning = false;
        for await (const chunk of iterate(stream)) {
          if (chunk.usage) providerUsage = pickUsage(chunk.usage);
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          const delta = (choice.delta ?? {}) as ReasoningDelta;
          const [piece, stillReasoning] = wrapReasoning(delta, reasoning);
          reasoning = stillReasoning;
          if (piece) {
            firstTokenAt ??= seconds();
            text += piece;
            yield { type: "text", delta: piece };
          }
          for (const [position, tc] of (delta.tool_calls ?? []).entries()) {
            firstTokenAt ??= seconds();
            const index = tc.index ?? position;
            const call = toolCalls.get(index) ?? { id: "", name: "", arguments: "" };
            if (tc.id && !call.id) call.id = tc.id;
            if (tc.function?.name) call.name ||= tc.function.name;
            if (tc.function?.arguments) call.arguments += tc.function.arguments;
            toolCalls.set(index, call);
          }
          if (choice.finish_reason) finishReason = choice.finish_reason;
        }
      }
    } catch (err) {
      if (!req.signal?.aborted) throw fail(e, "chat", err);
      aborted = true;
    } finally {
      req.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
    if (req.signal?.aborted) aborted = true;

    const calls = [...toolCalls.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
    if (calls.length && !aborted) yield { type: "tool_calls", calls };

    // Apps spec §5.8: a stopped generation still reports usage for the prompt and the partial
    // answer; the provider's own figures never arrive then, so both sides are estimated.
    let usage: TokenUsage;
    let estimated = false;
    if (providerUsage && !aborted) {
      usage = providerUsage;
    } else {
      estimated = true;
      const prompt =
        mode === "completion"
          ? await countTokens(req.prompt ?? messagesAsPrompt(req.messages))
          : await countMessageTokens(req.messages, req.tools);
      const completion = await countTokens(text + calls.map((c) => c.name + c.arguments).join(""));
      usage = { prompt_tokens: prompt, completion_tokens: completion };
    }
    const latency = seconds();
    log?.debug({ op: "chat", ...where(e), usage, estimated, aborted, finishReason, latency }, "model call done");
    yield {
      type: "done",
      finishReason: aborted ? "stop" : (finishReason ?? "stop"),
      usage,
      estimated,
      timeToFirstToken: firstTokenAt,
      latency,
    };
  }

  async function chat(req: ChatRequest): Promise<ChatResult> {
    let text = "";
    let toolCalls: ToolCall[] = [];
    for await (const event of chatStream(req)) {
      if (event.type === "text") text += event.delta;
      else if (event.type === "tool_calls") toolCalls = event.calls;
      else {
        return {
          text,
          toolCalls,
          finishReason: event.finishReason,
          usage: event.usage,
          estimated: event.estimated,
          timeToFirstToken: event.timeToFirstToken,
          latency: event.latency,
        };
      }
    }
    // chatStream always ends with `done`; reaching this line is a bug.
    throw Errors.internalServerError();
  }

  // ---- usage --------------------------------------------------------------

  function usage(
    model: ModelRef,
    promptTokens: number,
    completionTokens: number,
    latencySeconds: number,
    timing: { timeToFirstToken?: number | null; timeToGenerate?: number | null } = {},
  ): DifyUsage {
    const pricing = registry.pricing(model.provider, model.name);
    // Dify's AIModel.get_price: an unset unit price gives Decimal("0.0") for unit price, unit and
    // total; otherwise tokens × unit_price × unit quantized to 7 places (ROUND_HALF_UP).
    const side = (tokens: number, unitPrice: Decimal | undefined) =>
      pricing && unitPrice
        ? { unitPrice: unitPrice, unit: pricing.unit, total: computePrice(tokens, unitPrice, pricing.unit) }
        : { unitPrice: UNPRICED, unit: UNPRICED, total: UNPRICED };
    const input = side(promptTokens, pricing?.input);
    const output = side(completionTokens, pricing?.output);
    return {
      prompt_tokens: promptTokens,
      prompt_unit_price: input.unitPrice.toString(),
      prompt_price_unit: input.unit.toString(),
      prompt_price: input.total.toString(),
      completion_tokens: completionTokens,
      completion_unit_price: output.unitPrice.toString(),
      completion_price_unit: output.unit.toString(),
      completion_price: output.total.toString(),
      total_tokens: promptTokens + completionTokens,
      total_price: input.total.add(output.total).toString(),
      currency: pricing?.currency ?? "USD",
      latency: latencySeconds,
      time_to_first_token: timing.timeToFirstToken ?? null,
      time_to_generate: timing.timeToGenerate ?? null,
    };
  }

  // ---- moderation ---------------------------------------------------------

  async function moderate(texts: string[], o: { model?: ModelRef | undefined; signal?: AbortSignal | undefined } = {}): Promise<ModerationResult> {
    const ref = o.model ?? registry.moderationModel();
    let e: ModelEndpoint | undefined;
    try {
      e = resolve(ref, "moderation");
      const chunks: string[] = [];
      for (const text of texts) {
        for (let i = 0; i < text.length; i += MODERATION_CHUNK_CHARS) chunks.push(text.slice(i, i + MODERATION_CHUNK_CHARS));
      }
      const categories = new Set<string>();
      let flagged = false;
      for (let i = 0; i < chunks.length; i += MODERATION_CHUNKS_PER_REQUEST) {
        const res = await clientFor(e).moderations.create(
          { model: e.model, input: chunks.slice(i, i + MODERATION_CHUNKS_PER_REQUEST) },
          requestOptions(e, o.signal),
        );
        for (const r of res.results) {
          if (!r.flagged) continue;
          flagged = true;
          for (const [name, hit] of Object.entries(r.categories ?? {})) if (hit) categories.add(name);
        }
      }
      return flagged ? { flagged, categories: [...categories] } : { flagged };
    } catch (err) {
      throw fail(e, "moderation", err);
    }
  }

  // ---- embeddings ---------------------------------------------------------

  async function embed(
    model: ModelRef,
    texts: string[],
    o: { batchSize?: number | undefined; dimensions?: number | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<EmbedResult> {
    const started = performance.now();
    let e: ModelEndpoint | undefined;
    try {
      e = resolve(model, "text-embedding");
      const batchSize = Math.max(1, o.batchSize ?? e.batchSize ?? opts.embeddingBatchSize ?? 32);
      const dimensions = o.dimensions ?? e.dimensions;
      const vectors: number[][] = [];
      let tokens = 0;
      for (let i = 0; i < texts.length; i += batchSize) {
        const batch = texts.slice(i, i + batchSize);
        const res = await clientFor(e).embeddings.create(
          // float, not the client's default base64: not every compatible server speaks base64.
          { model: e.model, input: batch, encoding_format: "float", ...(dimensions ? { dimensions } : {}) },
          requestOptions(e, o.signal),
        );
        const data = [...res.data].sort((a, b) => a.index - b.index);
        if (data.length !== batch.length) {
          throw Errors.completionRequestError(`Embedding endpoint returned ${data.length} vectors for ${batch.length} inputs.`);
        }
        for (const d of data) vectors.push(d.embedding);
        tokens += res.usage?.prompt_tokens ?? (await Promise.all(batch.map(countTokens))).reduce((a, b) => a + b, 0);
      }
      const pricing = e.pricing;
      const total = pricing ? computePrice(tokens, pricing.input, pricing.unit) : UNPRICED;
      return {
        vectors,
        dimension: vectors[0]?.length ?? 0,
        usage: {
          tokens,
          total_tokens: tokens,
          unit_price: (pricing?.input ?? UNPRICED).toString(),
          price_unit: (pricing?.unit ?? UNPRICED).toString(),
          total_price: total.toString(),
          currency: pricing?.currency ?? "USD",
          latency: (performance.now() - started) / 1000,
        },
      };
    } catch (err) {
      throw fail(e, "embed", err);
    }
  }

  // ---- rerank -------------------------------------------------------------

  async function rerank(model: ModelRef, query: string, documents: string[], topN?: number, o: { signal?: AbortSignal } = {}): Promise<RerankResult[]> {
    if (documents.length === 0) return [];
    let e: ModelEndpoint | undefined;
    try {
      e = resolve(model, "rerank");
      // Rerank is not part of the OpenAI API, so plain fetch: Jina, Cohere, vLLM, Xinference all
      // take {model, query, documents, top_n} → {results: [{index, relevance_score}]}; HF TEI
      // takes {query, texts} → [{index, score}].
      const body =
        e.rerankStyle === "tei"
          ? { query, texts: documents, raw_scores: false }
          : { model: e.model, query, documents, ...(topN !== undefined ? { top_n: topN } : {}) };
      const signals = [o.signal, e.timeoutMs || opts.timeoutMs ? AbortSignal.timeout((e.timeoutMs ?? opts.timeoutMs)!) : undefined];
      const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => !!s));
      let res: Response;
      try {
        res = await fetch(`${e.baseURL}${e.rerankPath.startsWith("/") ? "" : "/"}${e.rerankPath}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json",
            ...(e.apiKey ? { authorization: `Bearer ${e.apiKey}` } : {}),
          },
          body: JSON.stringify(body),
          signal,
        });
      } catch (err) {
        if ((err as Error)?.name === "TimeoutError") throw new OpenAI.APIConnectionTimeoutError();
        throw new OpenAI.APIConnectionError({ cause: err as Error });
      }
      const raw = await res.text();
      let json: unknown;
      try {
        json = raw ? JSON.parse(raw) : undefined;
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        // Same mapping as the openai client's errors (401 → auth, 429 → rate limit, …).
        throw OpenAI.APIError.generate(res.status, json as object | undefined, raw || res.statusText, res.headers);
      }
      const items: Array<{ index?: unknown; relevance_score?: unknown; score?: unknown }> = Array.isArray(json)
        ? json
        : ((json as { results?: unknown[] } | undefined)?.results as typeof items | undefined) ?? [];
      const results = items
        .map((r) => ({ index: Number(r.index), score: Number(r.relevance_score ?? r.score) }))
        .filter((r) => Number.isInteger(r.index) && r.index >= 0 && r.index < documents.length && Number.isFinite(r.score))
        .sort((a, b) => b.score - a.score || a.index - b.index);
      return topN !== undefined ? results.slice(0, topN) : results;
    } catch (err) {
      throw fail(e, "rerank", err);
    }
  }

  // ---- audio --------------------------------------------------------------

  async function transcribe(model: ModelRef | null, file: AudioFile, o: { signal?: AbortSignal } = {}): Promise<string> {
    let e: ModelEndpoint | undefined;
    try {
      e = resolve(model ?? registry.speech2textModel(), "speech2text");
      const upload = await toFile(file.data, file.filename, { type: file.mimeType });
      const res = await clientFor(e).audio.transcriptions.create({ model: e.model, file: upload }, requestOptions(e, o.signal));
      return typeof res === "string" ? res : res.text;
    } catch (err) {
      throw fail(e, "transcribe", err);
    }
  }

  async function speech(
    model: ModelRef | null,
    text: string,
    voice?: string | null,
    o: { format?: "mp3" | "opus" | "aac" | "flac" | "wav" | "pcm"; stream?: boolean; signal?: AbortSignal } = {},
  ): Promise<SpeechResult> {
    let e: ModelEndpoint | undefined;
    try {
      const defaults = registry.ttsModel();
      e = resolve(model ?? defaults, "tts");
      const format = o.format ?? "mp3";
      const res = await clientFor(e).audio.speech.create(
        { model: e.model, input: text, voice: voice || defaults.voice, response_format: format },
        requestOptions(e, o.signal),
      );
      const contentType = res.headers.get("content-type") ?? (format === "mp3" ? "audio/mpeg" : `audio/${format}`);
      if (o.stream && res.body) return { data: streamBody(res.body), contentType };
      return { data: Buffer.from(await res.arrayBuffer()), contentType };
    } catch (err) {
      throw fail(e, "speech", err);
    }
  }

  function systemModel(fallback: ModelConfig): ModelConfig {
    const sys = registry.systemModel();
    return sys ? { provider: sys.provider, name: sys.name } : fallback;
  }

  // Warm the tokenizer in the background: estimates must not stall the first aborted stream.
  void loadTokenizer();

  return { registry, chatStream, chat, usage, moderate, embed, rerank, transcribe, speech, systemModel };
}

// ---------------------------------------------------------------------------
// Request building
// ---------------------------------------------------------------------------

type Params = Record<string, unknown>;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Dify completion_params → OpenAI parameters (dsl spec §2.1). `stop` is merged with the
 * request's stop sequences; `response_format` follows Dify's OpenAI plugin (a string type, with
 * `json_schema` holding the schema as JSON text); unknown keys are dropped unless the endpoint
 * lists them in `extra_params` (strict providers reject unknown arguments).
 */
async function buildParams(e: ModelEndpoint, req: ChatRequest, mode: "chat" | "completion"): Promise<Params> {
  const cp = req.model.completion_params ?? {};
  const out: Params = {};
  for (const key of ["temperature", "top_p", "presence_penalty", "frequency_penalty"] as const) {
    const v = num(cp[key]);
    if (v !== undefined) out[key] = v;
  }
  const seed = num(cp.seed);
  if (seed !== undefined) out.seed = Math.trunc(seed);
  if (typeof cp.reasoning_effort === "string" && cp.reasoning_effort) out.reasoning_effort = cp.reasoning_effort;

  const stop = [...toStops(cp.stop), ...(req.stop ?? [])];
  if (stop.length) out.stop = [...new Set(stop)];

  let maxTokens = num(cp.max_tokens);
  if (maxTokens !== undefined && maxTokens > 0) {
    maxTokens = Math.trunc(maxTokens);
    if (e.maxOutputTokens) maxTokens = Math.min(maxTokens, e.maxOutputTokens);
    // Dify's max_tokens re-calculation (dsl spec §2.3 step 9): leave room for the prompt.
    if (e.contextSize) {
      const promptTokens =
        mode === "completion"
          ? await countTokens(req.prompt ?? messagesAsPrompt(req.messages))
          : await countMessageTokens(req.messages, req.tools);
      if (promptTokens + maxTokens > e.contextSize) maxTokens = Math.max(e.contextSize - promptTokens, 16);
    }
    const param = mode === "completion" ? "max_tokens" : (e.maxTokensParam ?? defaultMaxTokensParam(e.model));
    out[param] = maxTokens;
  }

  if (mode === "chat") {
    const rf = responseFormat(cp.response_format, cp.json_schema);
    if (rf) out.response_format = rf;
  }
  if (req.user) out.user = req.user;
  for (const key of e.extraParams) if (cp[key] !== undefined && cp[key] !== null) out[key] = cp[key];
  if (e.extraBody) Object.assign(out, e.extraBody);
  return out;
}

/** o-series and gpt-5 models reject `max_tokens` and want `max_completion_tokens`. */
function defaultMaxTokensParam(model: string): "max_tokens" | "max_completion_tokens" {
  return /^(o\d|gpt-5)/i.test(model) ? "max_completion_tokens" : "max_tokens";
}

function toStops(v: unknown): string[] {
  if (typeof v === "string") return v ? [v] : [];
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === "string" && s !== "") : [];
}

function responseFormat(format: unknown, jsonSchema: unknown): Params | undefined {
  if (format && typeof format === "object") return format as Params;
  if (typeof format !== "string" || !format) return undefined;
  if (format !== "json_schema") return { type: format };
  let schema: unknown = jsonSchema;
  if (typeof jsonSchema === "string") {
    try {
      schema = JSON.parse(jsonSchema);
    } catch {
      throw Errors.completionRequestError(`not correct json_schema format: ${jsonSchema}`);
    }
  }
  if (!schema || typeof schema !== "object") {
    throw Errors.completionRequestError("Must define JSON Schema when the response format is json_schema");
  }
  // OpenAI wants {name, schema, strict?}; Dify users often paste the bare schema.
  const s = schema as Params;
  const wrapped = "schema" in s && typeof s.schema === "object" ? { name: "response", ...s } : { name: "response", schema: s };
  return { type: "json_schema", json_schema: wrapped };
}

function textOf(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p) => (p.type === "text" ? p.text : "")).join("");
}

/** Completion-mode fallback when the caller gave no `prompt`. */
function messagesAsPrompt(messages: ChatMessage[]): string {
  return messages.map((m) => textOf(m.content)).filter(Boolean).join("\n\n");
}

function toOpenAIMessages(messages: ChatMessage[], e: ModelEndpoint): OpenAI.ChatCompletionMessageParam[] {
  return messages.map((m): OpenAI.ChatCompletionMessageParam => {
    switch (m.role) {
      case "system":
        return { role: "system", content: textOf(m.content), ...(m.name ? { name: m.name } : {}) };
      case "assistant": {
        const calls = m.tool_calls ?? [];
        return {
          role: "assistant",
          content: calls.length && !textOf(m.content) ? null : textOf(m.content),
          ...(calls.length
            ? { tool_calls: calls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })) }
            : {}),
        };
      }
      case "tool":
        return { role: "tool", tool_call_id: m.tool_call_id ?? "", content: textOf(m.content) };
      default: {
        if (!Array.isArray(m.content)) return { role: "user", content: m.content ?? "", ...(m.name ? { name: m.name } : {}) };
        // Models configured without vision get the text only (Dify drops files the model
        // cannot take).
        const parts = e.vision === false ? m.content.filter((p) => p.type === "text") : m.content;
        if (parts.every((p) => p.type === "text")) return { role: "user", content: textOf(parts) };
        return {
          role: "user",
          content: parts.map((p) =>
            p.type === "text"
              ? { type: "text" as const, text: p.text }
              : { type: "image_url" as const, image_url: { url: p.image_url.url, ...(p.image_url.detail ? { detail: p.image_url.detail } : {}) } },
          ),
        };
      }
    }
  });
}

function toOpenAITool(t: ToolDefinition): OpenAI.ChatCompletionTool {
  return {
    type: "function",
    function: {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      parameters: t.parameters ?? { type: "object", properties: {} },
    },
  };
}

function pickUsage(u: { prompt_tokens?: number | null; completion_tokens?: number | null }): TokenUsage {
  return { prompt_tokens: u.prompt_tokens ?? 0, completion_tokens: u.completion_tokens ?? 0 };
}

interface ReasoningDelta {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
  tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
}

/**
 * Reasoning models behind OpenAI-compatible servers (DeepSeek, vLLM, Ollama …) stream their
 * thoughts in `reasoning_content` / `reasoning`; Dify's OpenAI-compatible runtime wraps them in
 * `<think>\n … \n</think>` inside the answer text, so we do the same.
 */
function wrapReasoning(delta: ReasoningDelta, reasoning: boolean): [string, boolean] {
  const content = delta.content ?? "";
  const thought = delta.reasoning_content ?? delta.reasoning ?? "";
  if (thought) return [reasoning ? thought : `<think>\n${thought}`, true];
  if (reasoning && content) return [`\n</think>${content}`, false];
  return [content, reasoning];
}

/**
 * Iterates an openai Stream; a failure while reading the body (socket cut mid-stream, which
 * undici reports as a bare TypeError "terminated") becomes an APIConnectionError so it maps to
 * completion_request_error rather than a 500.
 */
async function* iterate<T>(stream: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    for await (const item of stream) yield item;
  } catch (err) {
    if (err instanceof OpenAI.OpenAIError || err instanceof DifyError) throw err;
    if (err instanceof Error && err.name === "AbortError") throw err;
    throw new OpenAI.APIConnectionError({ cause: err as Error });
  }
}

async function* streamBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // A consumer that stops early must not leave the provider's response open.
    await reader.cancel().catch(() => undefined);
  }
}

/** Base URL for logs, without any user:password part. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "[invalid url]";
  }
}

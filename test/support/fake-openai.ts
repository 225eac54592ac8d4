/**
 * Fake OpenAI-compatible model provider for tests.
 *
 * A real HTTP server on 127.0.0.1 (random free port) so tests exercise the real
 * `openai` client end to end: HTTP framing, SSE parsing, retries, base64
 * embeddings, multipart uploads and aborts all behave as in production.
 *
 * Every answer is deterministic so tests can predict it:
 *   - chat / completion: `"Echo: <last user text>"` (see {@link echoAnswer})
 *   - embeddings: bag-of-words hashed vectors (see {@link fakeEmbedding})
 *   - rerank: term overlap with the query (see {@link termOverlapScore})
 *   - token usage: ~4 characters per token (see {@link roughTokenCount})
 *
 * Scripting: `enqueue(kind, script)` makes the next request of that kind answer
 * with `script` (FIFO); `setDefault(kind, script | handler)` changes what is
 * answered when the queue is empty. Every field of a script is optional.
 *
 * @example
 *   const fake = await startFakeOpenAI();
 *   const client = new OpenAI({ baseURL: fake.baseURL, apiKey: "sk-test", maxRetries: 0 });
 *   fake.enqueue("chat", { text: "Hi there", chunkDelayMs: 5 });
 *   fake.enqueue("chat", { toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
 *   fake.enqueue("chat", { error: "rate_limit" });
 *   fake.enqueue("chat", { hangAfterChunks: 2 }); // then abort, and `await fake.waitForAbort(req)`
 *   await fake.close();
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/** The endpoints the fake understands. */
export type EndpointKind =
  | "chat" // POST /chat/completions
  | "completion" // POST /completions (legacy)
  | "embeddings" // POST /embeddings
  | "rerank" // POST /rerank (Jina / Cohere style)
  | "moderation" // POST /moderations
  | "transcription" // POST /audio/transcriptions (multipart)
  | "speech" // POST /audio/speech
  | "models"; // GET /models, GET /models/:id

export interface MultipartFile {
  field: string;
  filename: string;
  contentType: string;
  size: number;
  /** sha256 hex of the file bytes, so tests can check the upload arrived intact. */
  sha256: string;
}

/** What a multipart request is recorded as (the file bytes themselves are not kept). */
export interface MultipartSummary {
  fields: Record<string, string>;
  files: MultipartFile[];
}

export interface RecordedRequest {
  /** 1-based arrival order across all endpoints. */
  id: number;
  kind: EndpointKind | "unknown";
  method: string;
  /** Path without query string, as received (e.g. `/v1/chat/completions`). */
  path: string;
  query: Record<string, string>;
  /** Lower-cased header names, as Node gives them. */
  headers: IncomingHttpHeaders;
  /**
   * Parsed JSON body, a {@link MultipartSummary} for multipart uploads, the raw
   * text for anything else, or `undefined` when empty. Typed loosely on purpose
   * so tests can dig into it without casts.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** `Date.now()` when the request arrived. */
  time: number;
  /** HTTP status sent (undefined while pending, or if the socket was cut before headers). */
  status?: number;
  /** The response was fully written. */
  completed: boolean;
  /** The client went away before the response was complete (e.g. AbortController). */
  aborted: boolean;
  abortedAt?: number;
  /** The fake itself cut the connection (`disconnect` / `abortAfterChunks`). */
  disconnectedByServer: boolean;
}

/** An OpenAI-style error; fields left out get sensible defaults for the status. */
export interface FakeErrorSpec {
  status: number;
  message?: string;
  type?: string;
  code?: string | null;
  param?: string | null;
}

/** Well-known OpenAI errors, usable as `{ error: "rate_limit" }`. */
export const OPENAI_ERRORS = {
  invalid_api_key: {
    status: 401,
    message:
      "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    type: "invalid_request_error",
    code: "invalid_api_key",
  },
  rate_limit: {
    status: 429,
    message: "Rate limit reached for requests. Please try again in 1ms.",
    type: "requests",
    code: "rate_limit_exceeded",
  },
  insufficient_quota: {
    status: 429,
    message: "You exceeded your current quota, please check your plan and billing details.",
    type: "insufficient_quota",
    code: "insufficient_quota",
  },
  invalid_request: {
    status: 400,
    message: "Invalid request.",
    type: "invalid_request_error",
    code: null,
  },
  context_length_exceeded: {
    status: 400,
    message: "This model's maximum context length is 4096 tokens. Please reduce the length of the messages.",
    type: "invalid_request_error",
    code: "context_length_exceeded",
    param: "messages",
  },
  model_not_found: {
    status: 404,
    message: "The model does not exist or you do not have access to it.",
    type: "invalid_request_error",
    code: "model_not_found",
  },
  server_error: {
    status: 500,
    message: "The server had an error while processing your request. Sorry about that!",
    type: "server_error",
    code: null,
  },
} as const satisfies Record<string, FakeErrorSpec>;

export type OpenAIErrorName = keyof typeof OPENAI_ERRORS;

/** Fields every script accepts, whatever the endpoint. */
export interface CommonScript {
  /** Wait this long before sending anything (headers included). */
  firstByteDelayMs?: number;
  /** Answer with an HTTP error and an OpenAI error body instead. */
  error?: OpenAIErrorName | FakeErrorSpec;
  /**
   * With `error`: value of the `retry-after-ms` header. Defaults to 0 so the
   * openai client's automatic retries (maxRetries, default 2) don't slow tests
   * down; each retry consumes the next scripted response.
   */
  retryAfterMs?: number;
  /** Never answer (not even headers). The request stays open until the client gives up. */
  hang?: boolean;
  /** Destroy the socket without answering (the client sees a connection error). */
  disconnect?: boolean;
  /** Extra response headers. */
  headers?: Record<string, string>;
  /** Escape hatch: write the response yourself. */
  raw?: (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void | Promise<void>;
}

export interface FakeUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** Streaming knobs shared by chat and legacy completions. */
export interface StreamingScript {
  /**
   * Split the answer text into this many pieces when streaming. Default: one
   * piece per word (with its trailing whitespace).
   */
  chunks?: number;
  /** Delay between consecutive SSE chunks. */
  chunkDelayMs?: number;
  /**
   * Streaming: destroy the socket after k chunks (not counting the initial
   * role chunk). If k ≥ the number of chunks, cut just before `[DONE]`.
   * Blocking: same as `disconnect`.
   */
  abortAfterChunks?: number;
  /**
   * Streaming: send headers and k chunks (not counting the role chunk), then
   * go silent forever. Blocking: same as `hang`.
   */
  hangAfterChunks?: number;
  finishReason?: "stop" | "length" | "tool_calls" | "content_filter";
  /** Overrides the deterministic token counts. */
  usage?: FakeUsage;
  /** Model name echoed in the response (default: the requested one). */
  model?: string;
}

export interface FakeToolCall {
  /** Default: `call_fake_<n>`, unique per fake server. */
  id?: string;
  name: string;
  /** An object is JSON-encoded; a string is sent verbatim (e.g. to test malformed JSON). */
  arguments?: string | Record<string, unknown>;
}

export interface ChatScript extends CommonScript, StreamingScript {
  /** Answer text. Default: `"Echo: <last user text>"`, or none when `toolCalls` are given. */
  text?: string;
  /** Tool calls to make; finish_reason becomes `tool_calls` unless set. */
  toolCalls?: FakeToolCall[];
}

export interface CompletionScript extends CommonScript, StreamingScript {
  /** Default: `"Echo: <prompt>"`. */
  text?: string;
}

export interface EmbeddingsScript extends CommonScript {
  /** Vector size (overrides request `dimensions` and the per-model mapping). */
  dimensions?: number;
  /** Exact vectors to return, one per input (overrides the generated ones). */
  vectors?: number[][];
  usage?: { prompt_tokens?: number };
}

export interface RerankScript extends CommonScript {
  /** Exact score per document index (overrides term overlap). */
  scores?: number[];
}

export interface ModerationScript extends CommonScript {
  /** Force `flagged` per input (overrides the flagged-words check). */
  flagged?: boolean[];
}

export interface TranscriptionScript extends CommonScript {
  text?: string;
}

export interface SpeechScript extends CommonScript {
  audio?: Uint8Array;
  contentType?: string;
}

export interface ModelsScript extends CommonScript {
  models?: string[];
}

export interface ScriptMap {
  chat: ChatScript;
  completion: CompletionScript;
  embeddings: EmbeddingsScript;
  rerank: RerankScript;
  moderation: ModerationScript;
  transcription: TranscriptionScript;
  speech: SpeechScript;
  models: ModelsScript;
}

/** A script, or a function computing one from the recorded request. */
export type ScriptFor<K extends EndpointKind> =
  | ScriptMap[K]
  | ((req: RecordedRequest) => ScriptMap[K] | Promise<ScriptMap[K]>);

/** An endpoint kind, or its path (`"/chat/completions"`, `"/v1/embeddings"`, …). */
export type EndpointTarget = EndpointKind | (string & {});

export interface FakeOpenAIOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get a 401. */
  apiKey?: string;
  /** Default embedding size. Default 1536. */
  embeddingDimensions?: number;
  /** Embedding size per model name, e.g. `{ "text-embedding-3-large": 3072 }`. */
  embeddingModels?: Record<string, number>;
  /** Words that make `/moderations` flag an input (whole-word, case-insensitive). Default `["forbidden"]`. */
  flaggedWords?: string[];
  /** Default transcription text. */
  transcriptionText?: string;
  /** Model ids listed by `GET /models`. */
  models?: string[];
}

export interface FakeOpenAI {
  /** e.g. `http://127.0.0.1:54321/v1` — pass as the openai client's `baseURL`. */
  readonly baseURL: string;
  readonly port: number;
  /** Every request received, in arrival order (live array; `reset()` empties it). */
  readonly requests: RecordedRequest[];
  /** Script the next response(s) for an endpoint (FIFO per endpoint). */
  enqueue<K extends EndpointKind>(target: K, script: ScriptFor<K>, opts?: { times?: number }): void;
  enqueue(target: EndpointTarget, script: ScriptFor<EndpointKind>, opts?: { times?: number }): void;
  /** What an endpoint answers when nothing is queued (the built-in default is `{}`). */
  setDefault<K extends EndpointKind>(kind: K, script: ScriptFor<K>): void;
  /** Requests of one kind, in arrival order. */
  requestsOf(kind: EndpointKind): RecordedRequest[];
  /** The latest request (of a kind, if given). */
  lastRequest(kind?: EndpointKind): RecordedRequest | undefined;
  /** Resolves with the `count`-th request of `kind` (default: the first) once it has arrived. */
  waitForRequest(kind?: EndpointKind, opts?: { count?: number; timeoutMs?: number }): Promise<RecordedRequest>;
  /** Resolves once the server has noticed that the client dropped this request (default: the latest). */
  waitForAbort(req?: RecordedRequest, opts?: { timeoutMs?: number }): Promise<RecordedRequest>;
  /** Forget recorded requests, queued scripts and custom defaults. */
  reset(): void;
  /** Stop the server, cutting any hanging connections. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Deterministic helpers (exported so tests can predict responses)
// ---------------------------------------------------------------------------

export const DEFAULT_EMBEDDING_DIMENSIONS = 1536;
export const DEFAULT_FLAGGED_WORDS = ["forbidden"];
export const DEFAULT_TRANSCRIPTION_TEXT = "This is a fake transcription.";
export const DEFAULT_MODELS = [
  "gpt-4o-mini",
  "gpt-4o",
  "gpt-3.5-turbo-instruct",
  "text-embedding-3-small",
  "text-embedding-3-large",
  "omni-moderation-latest",
  "whisper-1",
  "tts-1",
];

/** The default chat/completion answer. */
export function echoAnswer(input: string): string {
  return `Echo: ${input}`;
}

/** Rough, deterministic token count: ~4 characters per token (what usage reports by default). */
export function roughTokenCount(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Lower-cased words; CJK ideographs / kana count as one word each, since those
 * scripts have no spaces. Used by embeddings, rerank and moderation.
 */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Deterministic embedding: the sum of one hash-seeded random vector per word,
 * L2-normalised and rounded to float32. Texts sharing words therefore have a
 * higher cosine similarity, which makes retrieval tests predictable; identical
 * bags of words give identical vectors. Values are exactly what the client
 * gets back, whether it asked for float or base64.
 */
export function fakeEmbedding(text: string, dimensions = DEFAULT_EMBEDDING_DIMENSIONS): number[] {
  const words = tokenize(text);
  const sum = new Float64Array(dimensions);
  for (const word of words.length ? words : [text]) {
    const next = mulberry32(createHash("sha256").update(word).digest().readUInt32LE(0));
    for (let i = 0; i < dimensions; i++) sum[i]! += next() * 2 - 1;
  }
  let squares = 0;
  for (const v of sum) squares += v * v;
  const norm = Math.sqrt(squares) || 1;
  return Array.from(sum, (v) => Math.fround(v / norm));
}

/** Rerank score: the fraction of distinct query words that occur in the document (0..1). */
export function termOverlapScore(query: string, document: string): number {
  const queryWords = new Set(tokenize(query));
  if (queryWords.size === 0) return 0;
  const docWords = new Set(tokenize(document));
  let hits = 0;
  for (const w of queryWords) if (docWords.has(w)) hits++;
  return hits / queryWords.size;
}

/** Little-endian float32 bytes, base64 — OpenAI's `encoding_format: "base64"`. */
export function float32ToBase64(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("base64");
}

/** Small, fast seeded PRNG returning floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/** Everything a handler needs about the request being answered. */
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  recorded: RecordedRequest;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** Aborted when the client disconnects or the server closes: stops delays and hangs. */
  signal: AbortSignal;
  opts: FakeOpenAIOptions;
  /** Per-server counter for ids (`chatcmpl-fake-3`, `call_fake_7`, …). */
  nextId(prefix: string): string;
}

/** Thrown by handlers for invalid requests; answered as an OpenAI error body. */
class FakeHttpError extends Error {
  constructor(readonly spec: FakeErrorSpec) {
    super(spec.message);
  }
}

function invalidRequest(message: string, param: string | null = null): FakeHttpError {
  return new FakeHttpError({ status: 400, message, type: "invalid_request_error", code: null, param });
}

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  const queues = new Map<EndpointKind, ScriptFor<EndpointKind>[]>();
  const defaults = new Map<EndpointKind, ScriptFor<EndpointKind>>();
  let idCounter = 0;
  let closing = false;
  const nextId = (prefix: string) => `${prefix}${++idCounter}`;

  async function pickScript(kind: EndpointKind, recorded: RecordedRequest): Promise<CommonScript> {
    const script = queues.get(kind)?.shift() ?? defaults.get(kind) ?? {};
    return typeof script === "function" ? await script(recorded) : script;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const rawBody = await readBody(req);
    const kind = routeKind(req.method ?? "GET", url.pathname);
    const recorded: RecordedRequest = {
      id: requests.length + 1,
      kind: kind ?? "unknown",
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: undefined,
      time: Date.now(),
      completed: false,
      aborted: false,
      disconnectedByServer: false,
    };
    requests.push(recorded);

    // The client dropping the connection before we finished is how aborts show up.
    const controller = new AbortController();
    res.on("finish", () => (recorded.completed = true));
    res.on("close", () => {
      if (!recorded.completed && !recorded.disconnectedByServer && !closing) {
        recorded.aborted = true;
        recorded.abortedAt = Date.now();
      }
      controller.abort();
    });
    const ctx: Ctx = { req, res, recorded, body: undefined, signal: controller.signal, opts, nextId };

    try {
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        return sendError(ctx, OPENAI_ERRORS.invalid_api_key);
      }
      try {
        ctx.body = recorded.body = parseBody(req.headers["content-type"], rawBody);
      } catch (err) {
        recorded.body = rawBody.toString("utf8"); // keep what was sent, for debugging
        throw err;
      }
      if (!kind) {
        return sendError(ctx, {
          status: 404,
          message: `Invalid URL (${recorded.method} ${recorded.path})`,
          type: "invalid_request_error",
        });
      }
      const script = await pickScript(kind, recorded);
      await runScript(ctx, kind, script);
    } catch (err) {
      if (err instanceof FakeHttpError) return sendError(ctx, err.spec);
      // A bug in the fake or in a test's handler: make it loud on the client side too.
      console.error("[fake-openai] handler failed:", err);
      sendError(ctx, { ...OPENAI_ERRORS.server_error, message: `fake-openai: ${String(err)}` });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only reachable if the connection broke while reading the body.
      console.error("[fake-openai] request failed:", err);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const requestsOf = (kind: EndpointKind) => requests.filter((r) => r.kind === kind);

  const fake: FakeOpenAI = {
    baseURL: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    enqueue(target: EndpointTarget, script: ScriptFor<EndpointKind>, { times = 1 } = {}) {
      const kind = toKind(target);
      const queue = queues.get(kind) ?? [];
      for (let i = 0; i < times; i++) queue.push(script);
      queues.set(kind, queue);
    },
    setDefault(kind, script) {
      defaults.set(kind, script as ScriptFor<EndpointKind>);
    },
    requestsOf,
    lastRequest(kind) {
      const list = kind ? requestsOf(kind) : requests;
      return list[list.length - 1];
    },
    async waitForRequest(kind, { count = 1, timeoutMs = 5000 } = {}) {
      const describe = `request #${count}${kind ? ` of kind ${kind}` : ""}`;
      await waitUntil(() => (kind ? requestsOf(kind) : requests).length >= count, timeoutMs, describe);
      return (kind ? requestsOf(kind) : requests)[count - 1]!;
    },
    async waitForAbort(req = requests[requests.length - 1], { timeoutMs = 5000 } = {}) {
      if (!req) throw new Error("fake-openai: waitForAbort: no request recorded yet");
      await waitUntil(() => req.aborted, timeoutMs, `abort of request #${req.id} (${req.path})`);
      return req;
    },
    reset() {
      requests.length = 0;
      queues.clear();
      defaults.clear();
    },
    async close() {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hanging requests and idle keep-alive sockets would keep close() waiting forever.
      server.closeAllConnections();
      await closed;
    },
  };
  return fake;
}

// ---------------------------------------------------------------------------
// Routing and script execution
// ---------------------------------------------------------------------------

const PATH_KINDS: Record<string, EndpointKind> = {
  "chat/completions": "chat",
  completions: "completion",
  embeddings: "embeddings",
  rerank: "rerank",
  moderations: "moderation",
  "audio/transcriptions": "transcription",
  "audio/speech": "speech",
  models: "models",
};
const KINDS = new Set<string>(Object.values(PATH_KINDS));

/** `/v1/chat/completions` → `chat/completions`; the `/v1` prefix is optional (Jina/Cohere rerank URLs). */
function normalisePath(path: string): string {
  return path.replace(/^\/+/, "").replace(/^v1\//, "").replace(/\/+$/, "");
}

function routeKind(method: string, path: string): EndpointKind | undefined {
  const p = normalisePath(path);
  if (method === "GET") return p === "models" || p.startsWith("models/") ? "models" : undefined;
  if (method !== "POST" || p === "models") return undefined;
  return PATH_KINDS[p];
}

function toKind(target: EndpointTarget): EndpointKind {
  if (KINDS.has(target)) return target as EndpointKind;
  const kind = PATH_KINDS[normalisePath(target)];
  if (!kind) throw new Error(`fake-openai: unknown endpoint ${JSON.stringify(target)}`);
  return kind;
}

const HANDLERS: { [K in EndpointKind]: (ctx: Ctx, script: ScriptMap[K]) => Promise<void> | void } = {
  chat: handleChat,
  completion: handleCompletion,
  embeddings: handleEmbeddings,
  rerank: handleRerank,
  moderation: handleModeration,
  transcription: handleTranscription,
  speech: handleSpeech,
  models: handleModels,
};

async function runScript(ctx: Ctx, kind: EndpointKind, script: CommonScript): Promise<void> {
  if (script.firstByteDelayMs) await sleep(script.firstByteDelayMs, ctx.signal);
  if (ctx.signal.aborted) return;
  for (const [name, value] of Object.entries(script.headers ?? {})) ctx.res.setHeader(name, value);
  if (script.raw) return script.raw(ctx.req, ctx.res, ctx.recorded);
  if (script.hang) return waitForever(ctx.signal);
  if (script.disconnect) return disconnect(ctx);
  if (script.error) {
    const spec = typeof script.error === "string" ? OPENAI_ERRORS[script.error] : script.error;
    ctx.res.setHeader("retry-after-ms", String(script.retryAfterMs ?? 0));
    return sendError(ctx, spec);
  }
  const handler = HANDLERS[kind] as (ctx: Ctx, script: CommonScript) => Promise<void> | void;
  await handler(ctx, script);
}

// ---------------------------------------------------------------------------
// Chat and legacy completions
// ---------------------------------------------------------------------------

interface ChatMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null;
}

/** Text of a message, whether `content` is a string or an array of parts. */
function messageText(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => (part.type === "text" ? (part.text ?? "") : "")).join("");
}

function usageOf(script: StreamingScript, promptText: string, completionText: string) {
  const prompt_tokens = script.usage?.prompt_tokens ?? roughTokenCount(promptText);
  const completion_tokens = script.usage?.completion_tokens ?? roughTokenCount(completionText);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

async function handleChat(ctx: Ctx, script: ChatScript): Promise<void> {
  const body = ctx.body;
  if (!body?.model) throw invalidRequest("you must provide a model parameter", "model");
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw invalidRequest("'messages' must contain at least one message", "messages");
  }
  const messages = body.messages as ChatMessage[];
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const toolCalls = (script.toolCalls ?? []).map((call) => ({
    id: call.id ?? ctx.nextId("call_fake_"),
    name: call.name,
    arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments ?? {}),
  }));
  const text = script.text ?? (toolCalls.length ? "" : echoAnswer(lastUser ? messageText(lastUser) : ""));
  const finishReason = script.finishReason ?? (toolCalls.length ? "tool_calls" : "stop");
  const usage = usageOf(
    script,
    messages.map(messageText).join("\n"),
    text + toolCalls.map((c) => c.name + c.arguments).join(""),
  );
  const base = {
    id: ctx.nextId("chatcmpl-fake-"),
    created: Math.floor(Date.now() / 1000),
    model: script.model ?? body.model,
    system_fingerprint: "fp_fake",
  };

  if (!body.stream) {
    if (script.hangAfterChunks !== undefined) return waitForever(ctx.signal);
    if (script.abortAfterChunks !== undefined) return disconnect(ctx);
    const message: Record<string, unknown> = {
      role: "assistant",
      content: text === "" && toolCalls.length ? null : text,
      refusal: null,
    };
    if (toolCalls.length) {
      message.tool_calls = toolCalls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      }));
    }
    return sendJson(ctx, 200, {
      ...base,
      object: "chat.completion",
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
      usage,
    });
  }

  // Streaming, shaped like OpenAI: a role chunk, content deltas, tool call
  // deltas (header first, then the arguments in small pieces), a finish chunk,
  // and — with stream_options.include_usage — a usage chunk with no choices.
  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null) => ({
    ...base,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  const deltas: Record<string, unknown>[] = splitText(text, script.chunks).map((content) => ({ content }));
  toolCalls.forEach((call, index) => {
    deltas.push({
      tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }],
    });
    for (const piece of splitEvery(call.arguments, TOOL_ARGUMENT_PIECE)) {
      deltas.push({ tool_calls: [{ index, function: { arguments: piece } }] });
    }
  });
  const roleChunk = chunk({ role: "assistant", content: text === "" && toolCalls.length ? null : "", refusal: null });
  const chunks: object[] = [...deltas.map((delta) => chunk(delta)), chunk({}, finishReason)];
  if (includeUsage) chunks.push({ ...base, object: "chat.completion.chunk", choices: [], usage });
  await streamEvents(ctx, script, [roleChunk], chunks);
}

/** Tool call arguments are streamed in pieces of this many characters, as OpenAI does (roughly). */
const TOOL_ARGUMENT_PIECE = 8;

async function handleCompletion(ctx: Ctx, script: CompletionScript): Promise<void> {
  const body = ctx.body;
  if (!body?.model) throw invalidRequest("you must provide a model parameter", "model");
  const prompt: string = Array.isArray(body.prompt) ? String(body.prompt[0] ?? "") : String(body.prompt ?? "");
  const text = script.text ?? echoAnswer(prompt);
  const finishReason = script.finishReason ?? "stop";
  const usage = usageOf(script, prompt, text);
  const base = {
    id: ctx.nextId("cmpl-fake-"),
    object: "text_completion",
    created: Math.floor(Date.now() / 1000),
    model: script.model ?? body.model,
  };
  const choice = (piece: string, finish_reason: string | null) => ({
    text: piece,
    index: 0,
    logprobs: null,
    finish_reason,
  });

  if (!body.stream) {
    if (script.hangAfterChunks !== undefined) return waitForever(ctx.signal);
    if (script.abortAfterChunks !== undefined) return disconnect(ctx);
    return sendJson(ctx, 200, { ...base, choices: [choice(text, finishReason)], usage });
  }
  const chunks: object[] = splitText(text, script.chunks).map((piece) => ({ ...base, choices: [choice(piece, null)] }));
  chunks.push({ ...base, choices: [choice("", finishReason)] });
  if (body.stream_options?.include_usage === true) chunks.push({ ...base, choices: [], usage });
  await streamEvents(ctx, script, [], chunks);
}

/**
 * Writes the SSE response: `head` events (the chat role chunk), then `chunks`,
 * then `data: [DONE]`, honouring the chunk delay and the abort/hang knobs.
 * Only `chunks` count towards "after k chunks"; k beyond the end means "just
 * before `[DONE]`".
 */
async function streamEvents(ctx: Ctx, script: StreamingScript, head: object[], chunks: object[]): Promise<void> {
  const { res, signal } = ctx;
  res.writeHead(200, {
    ...requestIdHeader(ctx),
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  ctx.recorded.status = 200;
  res.flushHeaders(); // so the client sees the response start even if we then hang

  const clamp = (k: number | undefined) => (k === undefined ? undefined : Math.min(k, chunks.length));
  const abortAt = clamp(script.abortAfterChunks);
  const hangAt = clamp(script.hangAfterChunks);
  let written = 0;
  const write = async (event: object) => {
    if (written++ > 0 && script.chunkDelayMs) await sleep(script.chunkDelayMs, signal);
    if (signal.aborted) return;
    // Wait for the flush so a following disconnect() can't drop this chunk.
    await new Promise<void>((resolve) => res.write(`data: ${JSON.stringify(event)}\n\n`, () => resolve()));
  };

  for (const event of head) await write(event);
  for (let i = 0; i <= chunks.length; i++) {
    if (signal.aborted) return;
    if (i === abortAt) return disconnect(ctx);
    if (i === hangAt) return waitForever(signal);
    if (i < chunks.length) await write(chunks[i]!);
  }
  res.end("data: [DONE]\n\n");
}

/** Default: one piece per word (keeping whitespace); with `n`, n near-equal pieces. */
function splitText(text: string, n?: number): string[] {
  if (text === "") return [];
  if (n === undefined) return text.match(/\s*\S+\s*/g) ?? [text];
  const chars = Array.from(text); // code points, so emoji are never split in half
  const count = Math.max(1, Math.min(n, chars.length));
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * chars.length) / count);
    const to = Math.floor(((i + 1) * chars.length) / count);
    pieces.push(chars.slice(from, to).join(""));
  }
  return pieces;
}

function splitEvery(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  return pieces;
}

// ---------------------------------------------------------------------------
// Embeddings, rerank, moderation
// ---------------------------------------------------------------------------

async function handleEmbeddings(ctx: Ctx, script: EmbeddingsScript): Promise<void> {
  const body = ctx.body;
  if (!body?.model) throw invalidRequest("you must provide a model parameter", "model");
  if (body.input === undefined || body.input === null || body.input === "") {
    throw invalidRequest("'input' is a required property", "input");
  }
  const inputs = embeddingInputs(body.input);
  const dimensions: number =
    script.dimensions ??
    body.dimensions ??
    ctx.opts.embeddingModels?.[body.model] ??
    ctx.opts.embeddingDimensions ??
    DEFAULT_EMBEDDING_DIMENSIONS;
  const base64 = body.encoding_format === "base64";
  const data = inputs.map(({ text }, index) => {
    // Round scripted vectors to float32 too, so float and base64 agree exactly.
    const vector = script.vectors?.[index]?.map(Math.fround) ?? fakeEmbedding(text, dimensions);
    return { object: "embedding", index, embedding: base64 ? float32ToBase64(vector) : vector };
  });
  const promptTokens = script.usage?.prompt_tokens ?? inputs.reduce((n, input) => n + input.tokens, 0);
  sendJson(ctx, 200, {
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

/** `input` may be a string, strings, a token array or token arrays. */
function embeddingInputs(input: unknown): Array<{ text: string; tokens: number }> {
  const fromOne = (item: unknown) =>
    Array.isArray(item)
      ? { text: item.join(" "), tokens: item.length } // pre-tokenised input
      : { text: String(item), tokens: roughTokenCount(String(item)) };
  if (typeof input === "string") return [fromOne(input)];
  if (Array.isArray(input) && input.every((x) => typeof x === "number")) return [fromOne(input)];
  if (Array.isArray(input)) return input.map(fromOne);
  throw invalidRequest("'input' must be a string or an array", "input");
}

async function handleRerank(ctx: Ctx, script: RerankScript): Promise<void> {
  const body = ctx.body;
  if (typeof body?.query !== "string") throw invalidRequest("'query' is required", "query");
  if (!Array.isArray(body.documents)) throw invalidRequest("'documents' must be an array", "documents");
  // Jina/Cohere accept plain strings or `{ text }` objects.
  const documents: string[] = body.documents.map((d: unknown) =>
    typeof d === "string" ? d : String((d as { text?: unknown })?.text ?? ""),
  );
  const returnDocuments = body.return_documents !== false;
  const results = documents
    .map((text, index) => ({
      index,
      relevance_score: script.scores?.[index] ?? termOverlapScore(body.query, text),
      ...(returnDocuments ? { document: { text } } : {}),
    }))
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, typeof body.top_n === "number" ? body.top_n : undefined);
  const tokens = roughTokenCount(body.query) * documents.length + roughTokenCount(documents.join(""));
  sendJson(ctx, 200, {
    id: ctx.nextId("rerank-fake-"),
    model: body.model ?? "rerank-fake",
    results,
    usage: { total_tokens: tokens },
  });
}

const MODERATION_CATEGORIES = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/intent",
  "self-harm/instructions",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
];

async function handleModeration(ctx: Ctx, script: ModerationScript): Promise<void> {
  const body = ctx.body;
  if (body?.input === undefined) throw invalidRequest("'input' is a required property", "input");
  const inputs = moderationInputs(body.input);
  const words = ctx.opts.flaggedWords ?? DEFAULT_FLAGGED_WORDS;
  const results = inputs.map((text, i) => {
    const flagged = script.flagged?.[i] ?? words.some((word) => containsWord(text, word));
    // Flagged inputs are reported as "violence"; everything else scores ~0.
    const hit = (category: string) => flagged && category === "violence";
    return {
      flagged,
      categories: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, hit(c)])),
      category_scores: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, hit(c) ? 0.99 : 0.0001])),
    };
  });
  sendJson(ctx, 200, { id: ctx.nextId("modr-fake-"), model: body.model ?? "omni-moderation-latest", results });
}

/** A string, strings, or multimodal parts (one result for all the text parts together). */
function moderationInputs(input: unknown): string[] {
  if (typeof input === "string") return [input];
  if (!Array.isArray(input)) throw invalidRequest("'input' must be a string or an array", "input");
  if (input.every((x) => typeof x === "string")) return input as string[];
  const parts = input as Array<{ type?: string; text?: string }>;
  return [parts.map((part) => (part?.type === "text" ? (part.text ?? "") : "")).join(" ")];
}

function containsWord(text: string, word: string): boolean {
  const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "iu").test(text);
}

// ---------------------------------------------------------------------------
// Audio and models
// ---------------------------------------------------------------------------

async function handleTranscription(ctx: Ctx, script: TranscriptionScript): Promise<void> {
  const form = ctx.body as MultipartSummary | undefined;
  if (!form?.files?.some((f) => f.field === "file")) throw invalidRequest("'file' is a required property", "file");
  if (!form.fields.model) throw invalidRequest("'model' is a required property", "model");
  const text = script.text ?? ctx.opts.transcriptionText ?? DEFAULT_TRANSCRIPTION_TEXT;
  switch (form.fields.response_format ?? "json") {
    case "text":
    case "srt":
    case "vtt":
      return sendBytes(ctx, 200, "text/plain; charset=utf-8", Buffer.from(text));
    case "verbose_json":
      return sendJson(ctx, 200, { task: "transcribe", language: "english", duration: 1.0, text, segments: [] });
    default:
      return sendJson(ctx, 200, { text });
  }
}

const SPEECH_CONTENT_TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  opus: "audio/ogg",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

/** An empty ID3v2.4 tag followed by an MPEG-1 Layer III frame header. */
const FAKE_MP3_HEADER = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0, 0xff, 0xfb, 0x90, 0x64]);

async function handleSpeech(ctx: Ctx, script: SpeechScript): Promise<void> {
  const body = ctx.body;
  if (typeof body?.input !== "string") throw invalidRequest("'input' is a required property", "input");
  const format: string = body.response_format ?? "mp3";
  // Not playable audio: an ID3 tag and an MPEG frame header, then the input
  // text, so tests can tell what was synthesised.
  const audio = script.audio ?? Buffer.concat([FAKE_MP3_HEADER, Buffer.from(body.input)]);
  sendBytes(ctx, 200, script.contentType ?? SPEECH_CONTENT_TYPES[format] ?? "audio/mpeg", audio);
}

async function handleModels(ctx: Ctx, script: ModelsScript): Promise<void> {
  const ids = script.models ?? ctx.opts.models ?? DEFAULT_MODELS;
  const model = (id: string) => ({ id, object: "model", created: 1700000000, owned_by: "fake-openai" });
  const wanted = normalisePath(ctx.recorded.path).split("/").slice(1).join("/"); // GET /models/:id
  if (!wanted) return sendJson(ctx, 200, { object: "list", data: ids.map(model) });
  if (!ids.includes(wanted)) {
    return sendError(ctx, { ...OPENAI_ERRORS.model_not_found, message: `The model '${wanted}' does not exist` });
  }
  sendJson(ctx, 200, model(wanted));
}

// ---------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseBody(contentType: string | undefined, raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const type = contentType ?? "";
  if (type.startsWith("multipart/form-data")) {
    const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
    if (!boundary) throw invalidRequest("multipart body without boundary");
    return parseMultipart(raw, boundary[1] ?? boundary[2]!);
  }
  if (type.includes("json")) {
    try {
      return JSON.parse(raw.toString("utf8"));
    } catch {
      throw invalidRequest("We could not parse the JSON body of your request.");
    }
  }
  return raw.toString("utf8");
}

/** Just enough multipart/form-data parsing for audio uploads. */
function parseMultipart(raw: Buffer, boundary: string): MultipartSummary {
  const summary: MultipartSummary = { fields: {}, files: [] };
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = raw.indexOf(delimiter);
  while (pos !== -1) {
    const start = pos + delimiter.length;
    if (raw.subarray(start, start + 2).toString() === "--") break; // closing delimiter
    const next = raw.indexOf(delimiter, start);
    if (next === -1) break;
    const part = raw.subarray(start + 2, next - 2); // strip the CRLFs around the part
    const headerEnd = part.indexOf("\r\n\r\n");
    const headers = part.subarray(0, headerEnd).toString("utf8");
    const content = part.subarray(headerEnd + 4);
    const name = /\bname="([^"]*)"/i.exec(headers)?.[1] ?? "";
    const filename = /\bfilename="([^"]*)"/i.exec(headers)?.[1];
    if (filename === undefined) {
      summary.fields[name] = content.toString("utf8");
    } else {
      summary.files.push({
        field: name,
        filename,
        contentType: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim() ?? "application/octet-stream",
        size: content.length,
        sha256: createHash("sha256").update(content).digest("hex"),
      });
    }
    pos = next;
  }
  return summary;
}

function requestIdHeader(ctx: Ctx): Record<string, string> {
  return { "x-request-id": `req_fake_${ctx.recorded.id}` };
}

function sendJson(ctx: Ctx, status: number, payload: unknown): void {
  sendBytes(ctx, status, "application/json", Buffer.from(JSON.stringify(payload)));
}

function sendBytes(ctx: Ctx, status: number, contentType: string, bytes: Uint8Array): void {
  if (ctx.signal.aborted || ctx.res.headersSent) return;
  ctx.recorded.status = status;
  ctx.res.writeHead(status, { ...requestIdHeader(ctx), "content-type": contentType, "content-length": bytes.length });
  ctx.res.end(bytes);
}

/** OpenAI's error envelope: `{ error: { message, type, param, code } }`. */
function sendError(ctx: Ctx, spec: FakeErrorSpec): void {
  sendJson(ctx, spec.status, {
    error: {
      message: spec.message ?? `Fake error (HTTP ${spec.status})`,
      type: spec.type ?? (spec.status >= 500 ? "server_error" : "invalid_request_error"),
      param: spec.param ?? null,
      code: spec.code ?? null,
    },
  });
}

/** Cut the connection from our side; the client sees a network error. */
function disconnect(ctx: Ctx): void {
  ctx.recorded.disconnectedByServer = true;
  ctx.res.socket?.destroy();
}

/** Resolves after `ms`, or early when `signal` aborts (client gone). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Hang until the client disconnects (or the server closes). */
function waitForever(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`fake-openai: timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

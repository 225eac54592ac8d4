// Shared pieces of the model-using nodes (llm, question-classifier, parameter-extractor,
// knowledge-retrieval): model config, conversation memory (dsl-and-workflow §2.6), files as
// prompt parts, the `prompts` record of process_data (§5.4), usage/metadata (§3.8), and Dify's
// JSON-in-text extraction. Behaviour mirrors graphon `nodes/llm/llm_utils.py` and Dify's
// `PromptMessageUtil.prompt_messages_to_prompt_for_saving`.
import { extractThread, historyMessagesToText, historyToMessages, MAX_HISTORY_MESSAGES, pruneHistoryMessages, type HistoryTurn } from "../../generation/prompt.js";
import type { ChatContentPart, ChatMessage, ChatStreamEvent, DifyUsage, ModelConfig } from "../../models/index.js";
import { isFile, parseTemplate } from "../variable-pool.js";
import { NodeError, type NodeContext, type NodeResult, type NodeUsage, type WorkflowFile } from "../types.js";

export type Rec = Record<string, unknown>;

export const asRec = (v: unknown): Rec => (v && typeof v === "object" && !Array.isArray(v) ? (v as Rec) : {});
export const asStr = (v: unknown): string => (typeof v === "string" ? v : "");
export const asSelector = (v: unknown): string[] | null =>
  Array.isArray(v) && v.length >= 2 && v.every((s) => typeof s === "string") ? (v as string[]) : null;

/** Dify's history budget when the model declares no context size (`calculate_rest_token`). */
const DEFAULT_REST_TOKENS = 2000;

// ------------------------------------------------------------------ model

/** The node's `model` block (dsl §2.1) with string completion params resolved (§4.4 step 5). */
export function readModel(ctx: NodeContext, data: Rec): ModelConfig & { mode: "chat" | "completion" } {
  const m = asRec(data.model);
  const name = asStr(m.name);
  if (!name) throw new NodeError("Model is not configured.", "ModelNotExistError");
  const params = resolveCompletionParams(ctx, asRec(m.completion_params));
  return {
    ...(typeof m.provider === "string" ? { provider: m.provider } : {}),
    name,
    mode: m.mode === "completion" ? "completion" : "chat",
    completion_params: params,
  };
}

/**
 * graphon `resolve_completion_params_variables`: string params holding `{{#…#}}` are rendered
 * (capped at 1 024 chars) and JSON number/boolean literals coerced back.
 */
export function resolveCompletionParams(ctx: NodeContext, params: Rec): Rec {
  const out: Rec = {};
  for (const [k, v] of Object.entries(params)) {
    if (typeof v === "string" && /\{\{#[^#]+#\}\}/.test(v)) {
      const text = ctx.pool.renderTemplate(v).slice(0, 1024);
      let coerced: unknown = text;
      try {
        const parsed: unknown = JSON.parse(text.trim());
        if (typeof parsed === "number" || typeof parsed === "boolean") coerced = parsed;
      } catch {
        /* not a literal: keep the text */
      }
      out[k] = coerced;
    } else out[k] = v;
  }
  return out;
}

/** What the registry knows of the model (context size for memory budgets, vision support). */
export function modelTraits(ctx: NodeContext, model: ModelConfig): { contextSize?: number; vision?: boolean } {
  try {
    const e = ctx.services.models.registry.resolve(model.provider, model.name, "llm");
    return { ...(e.contextSize ? { contextSize: e.contextSize } : {}), ...(e.vision !== undefined ? { vision: e.vision } : {}) };
  } catch {
    // An unresolvable model fails later, at the call, with the models module's own error.
    return {};
  }
}

/** graphon `calculate_rest_token` with no prompt yet: context − max_tokens, else 2000. */
export function historyBudget(ctx: NodeContext, model: ModelConfig): number {
  const { contextSize } = modelTraits(ctx, model);
  if (!contextSize) return DEFAULT_REST_TOKENS;
  const maxTokens = Number(model.completion_params?.max_tokens ?? 0) || 0;
  return Math.max(contextSize - maxTokens, 0);
}

// ------------------------------------------------------------------ memory (§2.6)

/**
 * Earlier turns of the run's conversation as chat messages, oldest first: the newest
 * `min(window, 500)` rows (500 without window), the thread of the newest row, the turn being
 * generated dropped (its answer is still empty), pruned from the oldest end to `budget` tokens.
 * No conversation (workflow apps, §2.6 "only when the request carries a conversation") → [].
 */
export async function loadHistory(ctx: NodeContext, opts: { windowSize: number | null; budget: number }): Promise<ChatMessage[]> {
  const conversationId = ctx.run.conversationId;
  if (!conversationId) return [];
  const limit = opts.windowSize && opts.windowSize > 0 ? Math.min(Math.floor(opts.windowSize), MAX_HISTORY_MESSAGES) : MAX_HISTORY_MESSAGES;
  const rows = await ctx.services.prisma.message.findMany({
    where: { conversation_id: conversationId },
    orderBy: [{ created_at: "desc" }, { id: "desc" }],
    take: limit,
    select: { id: true, query: true, answer: true, parent_message_id: true },
  });
  let thread = extractThread(rows.map((r) => ({ ...r, parentMessageId: r.parent_message_id })));
  const currentLoaded = ctx.run.messageId !== null && rows.some((r) => r.id === ctx.run.messageId);
  if (thread[0] && (thread[0].answer === "" || thread[0].id === ctx.run.messageId)) thread = thread.slice(1);
  // Dify's row limit includes the turn being generated; keep the same count when that row is not
  // (yet) in the table.
  else if (!currentLoaded && thread.length >= limit) thread = thread.slice(0, limit - 1);
  const turns: HistoryTurn[] = thread.reverse().map((r) => ({ query: r.query, answer: r.answer }));
  return pruneHistoryMessages(historyToMessages(turns), opts.budget) as ChatMessage[];
}

/** History as `Human: …`/`Assistant: …` lines (completion prompts, classifier/extractor `{histories}`). */
export function historyText(messages: ChatMessage[], human = "Human", ai = "Assistant"): string {
  return historyMessagesToText(
    messages.map((m) => ({ role: m.role as "user" | "assistant", content: (m.content ?? "") as string })),
    human,
    ai,
  );
}

/** The node's `memory` block; null when memory is off. */
export function readMemory(
  data: Rec,
): { windowSize: number | null; rawWindowSize: number | null; queryTemplate: string; rolePrefix: { user: string; assistant: string } | null } | null {
  if (!data.memory || typeof data.memory !== "object") return null;
  const m = asRec(data.memory);
  const w = asRec(m.window);
  const rp = m.role_prefix && typeof m.role_prefix === "object" ? asRec(m.role_prefix) : null;
  return {
    windowSize: w.enabled === true && Number(w.size) > 0 ? Number(w.size) : null,
    // The classifier and extractor pass `window.size` whether or not the window is enabled.
    rawWindowSize: Number(w.size) > 0 ? Number(w.size) : null,
    queryTemplate: asStr(m.query_prompt_template),
    rolePrefix: rp ? { user: asStr(rp.user), assistant: asStr(rp.assistant) } : null,
  };
}

// ------------------------------------------------------------------ files

/** graphon `fetch_files`: file / array[file] → files; none / missing / empty array → []; else fail. */
export function fetchFiles(ctx: NodeContext, selector: string[] | null): WorkflowFile[] {
  if (!selector) return [];
  const v = ctx.pool.get(selector);
  if (v === undefined || v === null) return [];
  if (isFile(v)) return [v];
  if (Array.isArray(v)) {
    if (v.length === 0) return [];
    if (v.every(isFile)) return v;
  }
  throw new NodeError(`Invalid variable type: ${Array.isArray(v) ? "array" : typeof v}`, "InvalidVariableTypeError");
}

/**
 * A file as a prompt part. Only images: the models module speaks OpenAI chat parts, and Dify drops
 * parts the model does not declare (§4.4 step 6). Uploads are inlined as base64 so the provider
 * never needs to reach our storage; remote files are sent by URL.
 */
export async function fileToPart(ctx: NodeContext, file: WorkflowFile, detail: "low" | "high"): Promise<ChatContentPart | null> {
  if (file.type !== "image") return null;
  if (file.related_id && file.transfer_method !== "remote_url") {
    const up = await ctx.services.prisma.uploadFile.findUnique({ where: { id: file.related_id } });
    if (up && up.tenant_id === ctx.run.tenantId) {
      try {
        const data = await ctx.services.storage.load(up.key);
        return { type: "image_url", image_url: { url: `data:${up.mime_type || file.mime_type || "image/png"};base64,${data.toString("base64")}`, detail } };
      } catch (err) {
        ctx.services.logger.warn({ fileId: file.related_id, err: (err as Error).message }, "image for prompt not readable");
      }
    }
  }
  const url = file.remote_url ?? file.url ?? null;
  return url ? { type: "image_url", image_url: { url, detail } } : null;
}

export async function filesToParts(ctx: NodeContext, files: WorkflowFile[], detail: "low" | "high"): Promise<ChatContentPart[]> {
  const parts: ChatContentPart[] = [];
  for (const f of files) {
    const p = await fileToPart(ctx, f, detail);
    if (p) parts.push(p);
  }
  return parts;
}

/**
 * graphon `_append_file_prompts`: files go in front of the parts of a last multi-part user
 * message, else into a new user message.
 */
export function appendFileParts(messages: ChatMessage[], parts: ChatContentPart[]): void {
  if (parts.length === 0) return;
  const last = messages[messages.length - 1];
  if (last && last.role === "user" && Array.isArray(last.content)) last.content = [...parts, ...last.content];
  else messages.push({ role: "user", content: [...parts] });
}

/**
 * graphon `_filter_prompt_messages`: a single text part becomes plain text, empty messages are
 * dropped, nothing left → "No prompt found…".
 */
export function finalizeMessages(messages: ChatMessage[], vision: boolean | undefined): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    let content = m.content;
    if (Array.isArray(content)) {
      const parts = vision === false ? content.filter((p) => p.type === "text") : content;
      content = parts.length === 1 && parts[0]!.type === "text" ? parts[0]!.text : parts;
    }
    const empty = content === null || content === undefined || content === "" || (Array.isArray(content) && content.length === 0);
    if (empty && !m.tool_calls?.length) continue;
    out.push({ ...m, content });
  }
  if (out.length === 0) {
    throw new NodeError(
      "No prompt found in the LLM configuration. Please ensure a prompt is properly configured before proceeding.",
      "NoPromptFoundError",
    );
  }
  return out;
}

// ------------------------------------------------------------------ templates

/** `{{#…#}}` selectors of a template (graphon VariableTemplateParser: at least one dot). */
export function templateSelectors(template: string): { key: string; selector: string[] }[] {
  return parseTemplate(template)
    .filter((s) => s.kind === "var")
    .map((s) => ({ key: `#${s.text}#`, selector: s.selector! }));
}

/**
 * Renders a basic template as graphon `convert_template` + `handle_list_messages`: the text, and
 * the file values it referenced (those become a second message of the same role).
 */
export function renderWithFiles(ctx: NodeContext, template: string): { text: string; files: WorkflowFile[] } {
  const files: WorkflowFile[] = [];
  let text = "";
  for (const seg of parseTemplate(template)) {
    if (seg.kind === "text") {
      text += seg.text;
      continue;
    }
    const v = ctx.pool.get(seg.selector!);
    if (v === undefined) {
      text += seg.text;
      continue;
    }
    if (isFile(v)) files.push(v);
    else if (Array.isArray(v) && v.length > 0 && v.every(isFile)) files.push(...v);
    text += ctx.pool.toText(v);
  }
  return { text, files };
}

// ------------------------------------------------------------------ records

type SavedPrompt = { role: string; text: string; files: Rec[]; tool_calls?: Rec[] };

function savedParts(content: ChatMessage["content"]): { text: string; files: Rec[] } {
  if (!Array.isArray(content)) return { text: content ?? "", files: [] };
  let text = "";
  const files: Rec[] = [];
  for (const p of content) {
    if (p.type === "text") text += p.text;
    else {
      const d = p.image_url.url;
      files.push({ type: "image", data: `${d.slice(0, 10)}...[TRUNCATED]...${d.slice(-10)}`, detail: p.image_url.detail ?? "low" });
    }
  }
  return { text, files };
}

/** process_data `prompts` (Dify `prompt_messages_to_prompt_for_saving`). */
export function savedPrompts(mode: "chat" | "completion", messages: ChatMessage[], prompt?: string): SavedPrompt[] | Rec[] {
  if (mode === "completion") {
    const first = messages[0];
    const { text, files } = prompt !== undefined ? { text: prompt, files: [] as Rec[] } : savedParts(first?.content);
    return [{ role: "user", text, ...(files.length ? { files } : {}) }];
  }
  return messages.map((m) => {
    const { text, files } = savedParts(m.content);
    const out: SavedPrompt = { role: m.role, text, files };
    if (m.tool_calls?.length) {
      out.tool_calls = m.tool_calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    }
    return out;
  });
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Dify usage for a finished call (latency and timings rounded to ms as graphon does). */
export function usageFrom(ctx: NodeContext, model: ModelConfig, done: Extract<ChatStreamEvent, { type: "done" }>): DifyUsage {
  const ttft = done.timeToFirstToken;
  return ctx.services.models.usage(model, done.usage.prompt_tokens, done.usage.completion_tokens, round3(done.latency), {
    timeToFirstToken: ttft === null ? null : round3(ttft),
    timeToGenerate: ttft === null ? null : round3(done.latency - ttft),
  });
}

export function usageMetadata(usage: DifyUsage | null): Rec {
  return usage
    ? { total_tokens: usage.total_tokens, total_price: usage.total_price, currency: usage.currency }
    : { total_tokens: 0, total_price: "0", currency: "USD" };
}

export function nodeUsage(usage: DifyUsage): NodeUsage {
  return { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, usage };
}

/** A failed NodeResult from a thrown error (NodeError keeps its type; model errors keep their message). */
export function failed(err: unknown, extra: Partial<NodeResult> = {}): NodeResult {
  const e = err as { message?: string; errorType?: string; code?: string; name?: string };
  return {
    status: "failed",
    error: e?.message ?? String(err),
    errorType: e?.errorType ?? (e?.code ? e.code : (e?.name ?? "Error")),
    ...extra,
  };
}

// ------------------------------------------------------------------ JSON in text

/** graphon parameter_extractor `extract_json`: the balanced `{…}`/`[…]` at the start of `text`. */
export function balancedJson(text: string): string | null {
  const stack: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "{" || c === "[") stack.push(c);
    else if (c === "}" || c === "]") {
      if (stack.length === 0) return text.slice(0, i);
      const top = stack[stack.length - 1];
      if ((c === "}" && top === "{") || (c === "]" && top === "[")) {
        stack.pop();
        if (stack.length === 0) return text.slice(0, i + 1);
      } else return text.slice(0, i);
    }
  }
  return null;
}

/** The first JSON object found from any `{`/`[` onward (parameter extractor). */
export function firstJsonObject(text: string): Rec | null {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "{" && c !== "[") continue;
    const candidate = balancedJson(text.slice(i));
    if (!candidate) continue;
    try {
      const parsed: unknown = JSON.parse(candidate);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Rec;
    } catch {
      /* keep looking */
    }
  }
  return null;
}

/**
 * Dify `parse_and_check_json_markdown` (question classifier): JSON inside a ```json fence, or the
 * outermost `{…}`/`[…]`; a one-element array of objects is unwrapped. Unparsable → throws.
 */
export function parseJsonMarkdown(text: string): Rec {
  let s = text.trim();
  const fence = /```(?:json|JSON)?\s*([\s\S]*?)```/.exec(s);
  if (fence) s = fence[1]!.trim();
  const starts = [s.indexOf("{"), s.indexOf("[")].filter((i) => i >= 0);
  const start = starts.length ? Math.min(...starts) : -1;
  const end = Math.max(s.lastIndexOf("}"), s.lastIndexOf("]"));
  if (start < 0 || end < start) throw new NodeError(`Could not parse JSON: ${text}`, "OutputParserError");
  let parsed: unknown;
  try {
    parsed = JSON.parse(s.slice(start, end + 1));
  } catch {
    throw new NodeError(`Could not parse JSON: ${text}`, "OutputParserError");
  }
  if (Array.isArray(parsed) && parsed.length === 1 && parsed[0] && typeof parsed[0] === "object") parsed = parsed[0];
  return asRec(parsed);
}

/** Streams one model call, forwarding text deltas; returns the full text, tool calls and `done`. */
export async function callModel(
  ctx: NodeContext,
  req: Parameters<NodeContext["services"]["models"]["chatStream"]>[0],
  onText?: (delta: string) => Promise<void>,
): Promise<{ text: string; toolCalls: { id: string; name: string; arguments: string }[]; done: Extract<ChatStreamEvent, { type: "done" }> }> {
  let text = "";
  let toolCalls: { id: string; name: string; arguments: string }[] = [];
  for await (const ev of ctx.services.models.chatStream({ ...req, signal: ctx.signal, user: ctx.run.userId })) {
    if (ev.type === "text") {
      text += ev.delta;
      if (onText) await onText(ev.delta);
    } else if (ev.type === "tool_calls") toolCalls = ev.calls;
    else return { text, toolCalls, done: ev };
  }
  throw new NodeError("LLM invocation ended without a completion event", "LLMNodeError");
}

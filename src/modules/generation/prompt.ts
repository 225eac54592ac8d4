// Prompt assembly for Dify's basic app modes (completion, chat; agent-chat reuses it), plus the
// two small text features that share its template syntax: the conversation introduction
// (opening statement) and keyword moderation (`sensitive_word_avoidance` type `keywords`).
//
// Pure: no database, no model calls, no logging. The runner loads config/history/context and
// calls in here; everything observable about the prompt text is decided by this file.
//
// Spec: shared/spec/dsl-and-workflow.md §2.1 (model_config fields), §2.3 (run pipeline), §2.4
// (simple prompts), §2.5 (advanced prompts), §2.6 (memory window), §2.7 (context placement), §2.8
// (keyword moderation); service-api-apps.md §5.7/§8.7 (introduction). Behaviour mirrors Dify's
// `simple_prompt_transform.py`, `advanced_prompt_transform.py`, `prompt_transform.py`,
// `prompt_template_parser.py`, `token_buffer_memory.py`, `moderation/keywords/keywords.py`,
// `MessageBasedAppGenerator._get_conversation_introduction`. Choices where the spec is silent or
// disagrees with Dify's code are listed in docs/prompt-assembly.md.

// ---------------------------------------------------------------------------------------------
// Types

export type TextPart = { type: "text"; text: string };
export type ImagePart = { type: "image_url"; image_url: { url: string; detail?: "low" | "high" } };
export type ContentPart = TextPart | ImagePart;

export type PromptMessage = {
  role: "system" | "user" | "assistant";
  content: string | ContentPart[];
};

/** One earlier question/answer pair of the conversation thread (spec §2.6). */
export type HistoryTurn = { query: string; answer: string; files?: ImagePart[] };

export type BasicAppMode = "completion" | "chat" | "agent-chat";
export type ModelMode = "chat" | "completion";

export interface BuildBasicPromptInput {
  appMode: BasicAppMode;
  /** The DSL `model_config` mapping (spec §2.1). */
  modelConfig: Record<string, unknown>;
  /** The model's mode (`model_config.model.mode`). */
  modelMode: ModelMode;
  /** Validated inputs (apps spec §5.5). */
  inputs: Record<string, unknown>;
  /** The user query; `""` for completion apps. */
  query: string;
  /**
   * Earlier turns of the conversation thread, oldest → newest, WITHOUT the turn being generated.
   * `null` or `[]` = no memory (first turn of a conversation, completion apps): Dify only builds a
   * memory when the request carries an existing conversation_id (spec §2.6). The window
   * (`selectHistoryWindow`) and the token pruning are applied here.
   */
  history: HistoryTurn[] | null;
  /** Retrieved dataset context (spec §2.7); `null` when no retrieval happened. */
  context: string | null;
  /** Image parts for the current query (already shaped with the app's `image.detail`). */
  images?: ImagePart[];
  /**
   * Token budget for the history, used as-is when given. Otherwise Dify's computation is used:
   * `modelContextSize − maxTokens − tokens(prompt built so far)` (floored at 0), or 2000 when the
   * model's context size is unknown (`PromptTransform._calculate_rest_token`).
   */
  memoryBudgetTokens?: number;
  /** The model's context size in tokens (model schema `context_size`), if known. */
  modelContextSize?: number;
  /** Defaults to `model_config.model.completion_params.max_tokens` (0 if absent). */
  maxTokens?: number;
  /** Tokenizer for budgets; defaults to `estimateTokens`. */
  countTokens?: (text: string) => number;
}

/**
 * Chat-mode models get messages; completion-mode models get one prompt string plus stop words
 * (and the current query's images, which Dify sends as parts of the same user message).
 */
export type BasicPromptResult =
  | { messages: PromptMessage[]; stop: string[] }
  | { prompt: string; stop: string[]; images: ImagePart[] };

/** A `model_config` that cannot be assembled (Dify raises InvokeBadRequestError / ValueError). */
export class PromptConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PromptConfigError";
  }
}

// ---------------------------------------------------------------------------------------------
// Dify's built-in simple-mode templates (spec §2.4), verbatim from
// api/core/prompt/prompt_templates/common_chat.json and common_completion.json (Dify licence,
// modified Apache-2.0; reproduced for behavioural parity, spec §8 question 11). The Baichuan
// variants are not carried: Dify picks them only when `provider == "baichuan"`, which never holds
// once providers are normalised to plugin ids (`langgenius/baichuan/baichuan`, spec §1.9).

export interface PromptRules {
  humanPrefix: string;
  assistantPrefix: string;
  contextPrompt: string;
  historiesPrompt: string;
  systemPromptOrders: readonly ("context_prompt" | "pre_prompt" | "histories_prompt")[];
  queryPrompt: string;
  stops: readonly string[];
}

const CONTEXT_PROMPT =
  "Use the following context as your learned knowledge, inside <context></context> XML tags.\n\n" +
  "<context>\n{{#context#}}\n</context>\n\n" +
  "When answer to user:\n" +
  "- If you don't know, just say that you don't know.\n" +
  "- If you don't know when you are not sure, ask for clarification.\n" +
  "Avoid mentioning that you obtained the information from the context.\n" +
  "And answer according to the language of the user's question.\n\n";

export const COMMON_CHAT_RULES: Readonly<PromptRules> = Object.freeze<PromptRules>({
  humanPrefix: "Human",
  assistantPrefix: "Assistant",
  contextPrompt: CONTEXT_PROMPT,
  historiesPrompt:
    "Here is the chat histories between human and assistant, inside <histories></histories> XML tags.\n\n" +
    "<histories>\n{{#histories#}}\n</histories>\n\n",
  systemPromptOrders: ["context_prompt", "pre_prompt", "histories_prompt"],
  queryPrompt: "\n\nHuman: {{#query#}}\n\nAssistant: ",
  stops: ["\nHuman:", "</histories>"],
});

export const COMMON_COMPLETION_RULES: Readonly<PromptRules> = Object.freeze<PromptRules>({
  // No prefixes in the file: the history text falls back to Human/Assistant.
  humanPrefix: "Human",
  assistantPrefix: "Assistant",
  contextPrompt: CONTEXT_PROMPT,
  historiesPrompt: "", // absent from common_completion.json and not in its orders
  systemPromptOrders: ["context_prompt", "pre_prompt"],
  queryPrompt: "{{#query#}}",
  stops: [], // `"stops": null`
});

// ---------------------------------------------------------------------------------------------
// Python str() / repr() of input values (spec §2.4 "Python-ism": inputs are str()-ed)

/**
 * Marks a number that Python holds as a float, so that integral values render `3.0` like
 * Python's `str(3.0)`. A plain JS number renders as a Python int when integral (`3`), because a
 * JSON `3.0` and `3` are the same JS value; callers that know a value is a float can wrap it.
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python `str(value)` for JSON-like values (None/True/False, int/float repr, list/dict repr). */
export function pyStr(value: unknown): string {
  return typeof value === "string" ? value : pyRepr(value);
}

/** Python `repr(value)` for JSON-like values. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  switch (typeof value) {
    case "boolean":
      return value ? "True" : "False";
    case "number":
      return Number.isInteger(value) ? pyIntRepr(value) : pyFloatRepr(value);
    case "bigint":
      return value.toString();
    case "string":
      return pyStrRepr(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
      if (value instanceof Date) return pyStrRepr(value.toISOString());
      const parts = Object.entries(value).map(([k, v]) => `${pyStrRepr(k)}: ${pyRepr(v)}`);
      return `{${parts.join(", ")}}`;
    }
    default:
      return String(value);
  }
}

function pyIntRepr(n: number): string {
  if (Object.is(n, -0)) return "0";
  // JS switches to exponent notation at 1e21; a Python int prints every digit.
  return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString();
}

/** Python float repr: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // toExponential() without an argument yields the shortest round-trip digits (as repr does).
  const [mantissa = "0", expText = "0"] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const e = Number(expText);
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e >= 0) {
    const intLen = e + 1;
    if (digits.length <= intLen) return `${sign}${digits.padEnd(intLen, "0")}.0`;
    return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
  }
  return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
}

// Python's str.isprintable() is false for these categories (space excepted).
const PY_NON_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch !== " " && PY_NON_PRINTABLE.test(ch)) {
      const cp = ch.codePointAt(0)!;
      out +=
        cp <= 0xff
          ? `\\x${cp.toString(16).padStart(2, "0")}`
          : cp <= 0xffff
            ? `\\u${cp.toString(16).padStart(4, "0")}`
            : `\\U${cp.toString(16).padStart(8, "0")}`;
    } else out += ch;
  }
  return out + quote;
}

// ---------------------------------------------------------------------------------------------
// Basic-mode `{{var}}` templates (Dify's PromptTemplateParser without `with_variable_tmpl`).
// Graph templates (`{{#node.var#}}`, spec §3.5) are a different grammar and live with the
// workflow engine; nothing here resolves selectors.

/** `{{name}}` (30-char identifier) or one of the specials `{{#histories#}}`, `{{#query#}}`, `{{#context#}}`. */
export const BASIC_TEMPLATE_VARIABLE_SOURCE = String.raw`\{\{([a-zA-Z_][a-zA-Z0-9_]{0,29}|#histories#|#query#|#context#)\}\}`;
const basicVariableRegex = (): RegExp => new RegExp(BASIC_TEMPLATE_VARIABLE_SOURCE, "g");
// Python's `.` stops only at "\n" (JS's also stops at \r, \u2028, \u2029).
const SPECIAL_TOKEN = /<\|[^\n]*?\|>/g;

export type TemplateVars = Readonly<Record<string, string | null | undefined>>;

/** The variable keys a template references, in order of appearance (duplicates kept). */
export function extractTemplateVariables(template: string): string[] {
  return Array.from(template.matchAll(basicVariableRegex()), (m) => m[1]!);
}

/** Neutralises placeholders inside a substituted value: `{{x}}` → `{x}` (no second-level expansion). */
export function sanitizeTemplateValue(value: string): string {
  return value.replace(basicVariableRegex(), "{$1}");
}

/**
 * `PromptTemplateParser.format`: every `{{key}}` whose key is present in `vars` is replaced by its
 * sanitised value (`null`/`undefined` → empty, as Python's re.sub treats a None replacement);
 * unknown keys stay literally. Afterwards every `<|…|>` sequence (one line) is deleted from the
 * whole result (special-token guard).
 */
export function renderTemplate(template: string, vars: TemplateVars): string {
  const rendered = template.replace(basicVariableRegex(), (whole: string, key: string) => {
    if (!Object.hasOwn(vars, key)) return whole;
    const value = vars[key];
    return value === null || value === undefined ? "" : sanitizeTemplateValue(value);
  });
  return rendered.replace(SPECIAL_TOKEN, "");
}

/** The `{key: inputs[key]}` subset for the keys `template` references (Dify builds it this way). */
function templateInputs(
  template: string,
  inputs: Readonly<Record<string, unknown>>,
  stringify: (v: unknown) => string | null,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const key of extractTemplateVariables(template)) {
    if (key.startsWith("#") || !Object.hasOwn(inputs, key)) continue;
    out[key] = stringify(inputs[key]);
  }
  return out;
}

// Simple mode str()-s every input first (`{k: str(v)}`), so None renders "None". Advanced mode and
// the introduction pass raw values: a None value renders empty; a non-string would make Dify's
// re.sub raise, so Servify renders it with str() instead of failing the run.
const simpleStringify = (v: unknown): string => pyStr(v);
const rawStringify = (v: unknown): string | null => (v === null || v === undefined ? null : pyStr(v));

// ---------------------------------------------------------------------------------------------
// Conversation introduction (apps spec §5.7, §8.7)

/**
 * The conversation `introduction`: the app's `opening_statement` with `{{var}}` placeholders
 * filled from the conversation inputs; `""` when there is no statement.
 */
export function renderOpeningStatement(statement: string | null | undefined, inputs: Record<string, unknown>): string {
  if (typeof statement !== "string" || statement === "") return "";
  return renderTemplate(statement, templateInputs(statement, inputs, rawStringify));
}

// ---------------------------------------------------------------------------------------------
// Memory (spec §2.6)

/** Dify loads at most 500 messages of a conversation (TokenBufferMemory). */
export const MAX_HISTORY_MESSAGES = 500;
/** History budget when the model declares no context size (`_calculate_rest_token`). */
export const DEFAULT_HISTORY_TOKEN_BUDGET = 2000;

/**
 * Which earlier turns can enter the prompt. Dify loads the newest `min(window, 500)` message rows
 * (500 when the window is disabled — always the case for basic apps, spec §2.5) and the row of the
 * turn being generated is among them (it exists with an empty answer and is dropped afterwards),
 * so at most `limit − 1` earlier turns survive. `turns` is oldest → newest without the current
 * turn; the result keeps that order. `windowSize` counts question/answer pairs.
 */
export function selectHistoryWindow<T>(turns: readonly T[], windowSize?: number | null): T[] {
  const limit =
    windowSize !== null && windowSize !== undefined && windowSize > 0
      ? Math.min(Math.floor(windowSize), MAX_HISTORY_MESSAGES)
      : MAX_HISTORY_MESSAGES;
  const keep = Math.max(limit - 1, 0);
  return keep === 0 ? [] : turns.slice(-keep);
}

/**
 * The thread of the newest message (spec §2.6 step 2; Dify's `extract_thread_messages`). `rows`
 * are newest first; follows `parentMessageId` links and stops at a row without a parent.
 */
export function extractThread<T extends { id: string; parentMessageId: string | null }>(rows: readonly T[]): T[] {
  const UUID_NIL = "00000000-0000-0000-0000-000000000000";
  const thread: T[] = [];
  let next: string | null = null;
  for (const row of rows) {
    if (!row.parentMessageId) {
      thread.push(row);
      break;
    }
    if (next === null) {
      thread.push(row);
      next = row.parentMessageId;
    } else if (row.id === next || next === UUID_NIL) {
      thread.push(row);
      next = row.parentMessageId;
    }
  }
  return thread;
}

/** `user(query [+ images])`, `assistant(answer)` per turn; history images follow the text. */
export function historyToMessages(turns: readonly HistoryTurn[]): PromptMessage[] {
  const out: PromptMessage[] = [];
  for (const t of turns) {
    const files = t.files ?? [];
    out.push({
      role: "user",
      content: files.length ? [{ type: "text", text: t.query }, ...files.map(cloneImage)] : t.query,
    });
    out.push({ role: "assistant", content: t.answer });
  }
  return out;
}

/**
 * Drops the oldest single message (not pair) while the history is over budget and more than one
 * message remains (TokenBufferMemory pruning).
 */
export function pruneHistoryMessages(
  messages: readonly PromptMessage[],
  budgetTokens: number,
  countTokens: (text: string) => number = estimateTokens,
): PromptMessage[] {
  const kept = [...messages];
  if (kept.length === 0) return kept;
  let tokens = countMessagesTokens(kept, countTokens);
  while (tokens > budgetTokens && kept.length > 1) {
    kept.shift();
    tokens = countMessagesTokens(kept, countTokens);
  }
  return kept;
}

/**
 * History as text for completion models: `"<prefix>: <content>"` lines joined by `"\n"`; in
 * multimodal content each text part is followed by "\n", each image becomes `[image]`, and the
 * result is stripped (`get_history_prompt_text`).
 */
export function historyMessagesToText(
  messages: readonly PromptMessage[],
  humanPrefix = "Human",
  aiPrefix = "Assistant",
): string {
  const lines: string[] = [];
  for (const m of messages) {
    const role = m.role === "user" ? humanPrefix : m.role === "assistant" ? aiPrefix : null;
    if (role === null) continue;
    if (typeof m.content === "string") {
      lines.push(`${role}: ${m.content}`);
    } else {
      let inner = "";
      for (const part of m.content) inner += part.type === "text" ? `${part.text}\n` : "[image]\n";
      lines.push(`${role}: ${inner.trim()}`);
    }
  }
  return lines.join("\n");
}

/**
 * Rough default tokenizer: one token per CJK character, one per four other characters. Callers
 * with the model's tokenizer should pass `countTokens`.
 */
export function estimateTokens(text: string): number {
  if (!text) return 0;
  const cjk = text.match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu)?.length ?? 0;
  return cjk + Math.ceil((text.length - cjk) / 4);
}

/** Sum of the text tokens of the messages (image parts count 0 in this approximation). */
export function countMessagesTokens(
  messages: readonly PromptMessage[],
  countTokens: (text: string) => number = estimateTokens,
): number {
  let total = 0;
  for (const m of messages) {
    if (typeof m.content === "string") total += countTokens(m.content);
    else for (const p of m.content) if (p.type === "text") total += countTokens(p.text);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Prompt assembly (spec §2.4, §2.5)

export function buildBasicPrompt(input: BuildBasicPromptInput): BasicPromptResult {
  const promptType = input.modelConfig.prompt_type;
  if (promptType === undefined || promptType === null || promptType === "" || promptType === "simple") {
    return input.modelMode === "chat" ? simpleChat(input) : simpleCompletion(input);
  }
  if (promptType === "advanced") {
    return input.modelMode === "chat" ? advancedChat(input) : advancedCompletion(input);
  }
  throw new PromptConfigError(`invalid prompt type value ${pyStr(promptType)}`);
}

interface Ctx {
  input: BuildBasicPromptInput;
  countTokens: (text: string) => number;
  images: ImagePart[];
  hasMemory: boolean;
}

function ctxOf(input: BuildBasicPromptInput): Ctx {
  return {
    input,
    countTokens: input.countTokens ?? estimateTokens,
    images: (input.images ?? []).map(cloneImage),
    hasMemory: Array.isArray(input.history) && input.history.length > 0,
  };
}

/** Tokens left for the history after `current` (the prompt as built before the history). */
function historyBudget(ctx: Ctx, current: readonly PromptMessage[]): number {
  const { input } = ctx;
  if (input.memoryBudgetTokens !== undefined) return Math.max(Math.floor(input.memoryBudgetTokens), 0);
  if (!input.modelContextSize) return DEFAULT_HISTORY_TOKEN_BUDGET;
  const maxTokens = input.maxTokens ?? configuredMaxTokens(input.modelConfig);
  return Math.max(input.modelContextSize - maxTokens - countMessagesTokens(current, ctx.countTokens), 0);
}

function historyMessages(ctx: Ctx, budget: number): PromptMessage[] {
  const turns = selectHistoryWindow(ctx.input.history ?? []);
  return pruneHistoryMessages(historyToMessages(turns), budget, ctx.countTokens);
}

/** The final user message: files first, then the text (current Dify; older releases put text first). */
function userMessage(text: string, images: readonly ImagePart[]): PromptMessage {
  return images.length
    ? { role: "user", content: [...images.map(cloneImage), { type: "text", text }] }
    : { role: "user", content: text };
}

// ---- simple -------------------------------------------------------------------------------

function rulesFor(appMode: BasicAppMode): Readonly<PromptRules> {
  return appMode === "completion" ? COMMON_COMPLETION_RULES : COMMON_CHAT_RULES;
}

/**
 * `SimplePromptTransform._get_prompt_str_and_rules`: concatenates the pieces in the template's
 * order (context block iff context !== null, pre_prompt + "\n" iff non-empty, histories block iff
 * histories !== null, query block iff query !== null) and renders the whole with the pre_prompt's
 * input variables plus the specials that were included.
 */
function renderSimple(
  rules: Readonly<PromptRules>,
  prePrompt: string,
  inputs: Readonly<Record<string, unknown>>,
  query: string | null,
  context: string | null,
  histories: string | null,
): string {
  let template = "";
  let vars: Record<string, string | null> = {};
  const specials: Record<string, string> = {};
  for (const order of rules.systemPromptOrders) {
    if (order === "context_prompt" && context !== null) {
      template += rules.contextPrompt;
      specials["#context#"] = context;
    } else if (order === "pre_prompt" && prePrompt) {
      template += `${prePrompt}\n`;
      vars = templateInputs(prePrompt, inputs, simpleStringify);
    } else if (order === "histories_prompt" && histories !== null) {
      template += rules.historiesPrompt;
      specials["#histories#"] = histories;
    }
  }
  if (query !== null) {
    template += rules.queryPrompt;
    specials["#query#"] = query;
  }
  return renderTemplate(template, { ...vars, ...specials });
}

function prePromptOf(modelConfig: Record<string, unknown>): string {
  return typeof modelConfig.pre_prompt === "string" ? modelConfig.pre_prompt : "";
}

function simpleChat(input: BuildBasicPromptInput): BasicPromptResult {
  const ctx = ctxOf(input);
  const rules = rulesFor(input.appMode);
  // Rendered without the query: context block + pre_prompt only.
  const system = renderSimple(rules, prePromptOf(input.modelConfig), input.inputs, null, input.context, null);
  const messages: PromptMessage[] = [];
  if (system && input.query) messages.push({ role: "system", content: system });
  if (ctx.hasMemory) messages.push(...historyMessages(ctx, historyBudget(ctx, messages)));
  // A completion app (empty query) sends the whole rendered prompt as the user message.
  messages.push(userMessage(input.query ? input.query : system, ctx.images));
  // Simple mode passes no stop words for chat models (Dify returns `stop=None`; the configured
  // completion_params.stop is not forwarded) — see docs/prompt-assembly.md.
  return { messages, stop: [] };
}

function simpleCompletion(input: BuildBasicPromptInput): BasicPromptResult {
  const ctx = ctxOf(input);
  const rules = rulesFor(input.appMode);
  const pre = prePromptOf(input.modelConfig);
  let prompt = renderSimple(rules, pre, input.inputs, input.query, input.context, null);
  if (ctx.hasMemory) {
    const budget = historyBudget(ctx, [{ role: "user", content: prompt }]);
    const histories = historyMessagesToText(historyMessages(ctx, budget), rules.humanPrefix, rules.assistantPrefix);
    prompt = renderSimple(rules, pre, input.inputs, input.query, input.context, histories);
  }
  return { prompt, stop: [...rules.stops], images: ctx.images };
}

// ---- advanced -----------------------------------------------------------------------------

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNonEmptyRecord = (v: unknown): v is Record<string, unknown> => isRecord(v) && Object.keys(v).length > 0;

function completionParams(modelConfig: Record<string, unknown>): Record<string, unknown> {
  const model = modelConfig.model;
  return isRecord(model) && isRecord(model.completion_params) ? model.completion_params : {};
}

/** `completion_params.stop` (≤ 4 strings), the stop words of advanced prompts. */
export function configuredStop(modelConfig: Record<string, unknown>): string[] {
  const stop = completionParams(modelConfig).stop;
  return Array.isArray(stop) ? stop.filter((s): s is string => typeof s === "string") : [];
}

function configuredMaxTokens(modelConfig: Record<string, unknown>): number {
  const v = completionParams(modelConfig).max_tokens;
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** Advanced templates: the referenced inputs plus `#context#` (empty without context). */
function advancedVars(template: string, input: BuildBasicPromptInput): Record<string, string | null> {
  const vars = templateInputs(template, input.inputs, rawStringify);
  if (extractTemplateVariables(template).includes("#context#")) vars["#context#"] = input.context || "";
  return vars;
}

function advancedChat(input: BuildBasicPromptInput): BasicPromptResult {
  const ctx = ctxOf(input);
  const config = input.modelConfig.chat_prompt_config;
  if (!isNonEmptyRecord(config)) throw new PromptConfigError("Advanced chat prompt template is required.");
  const items = Array.isArray(config.prompt) ? config.prompt : [];

  const messages: PromptMessage[] = [];
  for (const item of items) {
    const text = isRecord(item) ? item.text : undefined;
    const role = isRecord(item) ? item.role : undefined;
    if (typeof text !== "string") throw new PromptConfigError("message text must be a string");
    if (typeof role !== "string") throw new PromptConfigError("message role must be a string");
    const rendered = renderTemplate(text, advancedVars(text, input));
    switch (role) {
      case "system":
        if (rendered) messages.push({ role: "system", content: rendered }); // empty system messages are dropped
        break;
      case "user":
      case "assistant":
        messages.push({ role, content: rendered }); // kept even when empty
        break;
      case "tool":
        break; // accepted by Dify's role parser, ignored by the transform
      default:
        throw new PromptConfigError(`invalid prompt message type value ${role}`);
    }
  }

  const { query } = input;
  if (ctx.hasMemory) {
    // History goes after the template messages, then the query (spec §2.5, §7 item 7).
    messages.push(...historyMessages(ctx, historyBudget(ctx, messages)));
    messages.push(userMessage(query, ctx.images));
  } else if (ctx.images.length) {
    if (!query) {
      const last = messages.at(-1);
      if (last && last.role === "user" && typeof last.content === "string") {
        last.content = [...ctx.images, { type: "text", text: last.content }];
      } else {
        messages.push(userMessage("", ctx.images));
      }
    } else {
      messages.push(userMessage(query, ctx.images));
    }
  } else if (query) {
    messages.push({ role: "user", content: query });
  }
  return { messages, stop: configuredStop(input.modelConfig) };
}

function advancedCompletion(input: BuildBasicPromptInput): BasicPromptResult {
  const ctx = ctxOf(input);
  const config = input.modelConfig.completion_prompt_config;
  if (!isNonEmptyRecord(config)) throw new PromptConfigError("Advanced completion prompt template is required.");
  const text = isRecord(config.prompt) ? config.prompt.text : undefined;
  if (typeof text !== "string") throw new PromptConfigError("completion_prompt_config.prompt.text must be a string");

  const keys = extractTemplateVariables(text);
  const vars = advancedVars(text, input);

  // Histories are filled only with a memory AND a `conversation_histories_role` mapping; otherwise
  // `{{#histories#}}` stays literal (Dify leaves unknown keys in place). Empty prefixes fall back to
  // Human/Assistant.
  const roles = config.conversation_histories_role;
  if (ctx.hasMemory && isRecord(roles) && keys.includes("#histories#")) {
    const budget = historyBudget(ctx, [{ role: "user", content: renderTemplate(text, { "#histories#": "", ...vars }) }]);
    const userPrefix = typeof roles.user_prefix === "string" && roles.user_prefix ? roles.user_prefix : "Human";
    const aiPrefix =
      typeof roles.assistant_prefix === "string" && roles.assistant_prefix ? roles.assistant_prefix : "Assistant";
    vars["#histories#"] = historyMessagesToText(historyMessages(ctx, budget), userPrefix, aiPrefix);
  }
  // Dify sets `#query#` only for a non-empty query: with none, `{{#query#}}` stays literal.
  if (input.query && keys.includes("#query#")) vars["#query#"] = input.query;

  return { prompt: renderTemplate(text, vars), stop: configuredStop(input.modelConfig), images: ctx.images };
}

function cloneImage(p: ImagePart): ImagePart {
  return { type: "image_url", image_url: { ...p.image_url } };
}

// ---------------------------------------------------------------------------------------------
// Keyword moderation (spec §2.3 steps 3 and 11, §2.8; Dify's KeywordsModeration)
//
// What is checked (Dify): on input, every value of the run's inputs (str()-ed: numbers, None →
// "None", lists/dicts as Python repr) plus the query when it is non-empty — see
// `keywordModerationInputTexts`; on output, the answer text (the accumulated stream). Input
// checking runs only when `config.inputs_config.enabled`, output checking only when
// `config.outputs_config.enabled`; a hit answers with that side's `preset_response` (input: the
// preset becomes the whole answer and the model is not called; output: a `message_replace`).

export interface KeywordModerationResult {
  flagged: boolean;
  presetResponse: string;
}

/** `config.keywords` split on "\n" (the only separator Dify uses), empty rows dropped. */
export function parseModerationKeywords(keywords: unknown): string[] {
  if (typeof keywords !== "string") return [];
  return keywords.split("\n").filter((k) => k !== "");
}

/** The texts Dify's input check looks at: all input values, then the query if non-empty. */
export function keywordModerationInputTexts(inputs: Record<string, unknown>, query: string): unknown[] {
  const texts: unknown[] = Object.values(inputs);
  if (query) texts.push(query);
  return texts;
}

/**
 * Case-insensitive substring match of any keyword in any text (`keyword.lower() in str(value).lower()`).
 *
 * `config` is the `sensitive_word_avoidance.config` mapping (`{keywords, inputs_config,
 * outputs_config}`); the whole `sensitive_word_avoidance` mapping is accepted too (not enabled or
 * not `type: keywords` → never flagged). Without `stage` only the keywords are matched and
 * `presetResponse` is `""`; with `stage` the result is Dify's `moderation_for_inputs` /
 * `moderation_for_outputs`: a disabled side is never flagged, an enabled side reports its
 * `preset_response` (even when not flagged).
 */
export function checkKeywordModeration(
  config: unknown,
  texts: readonly unknown[],
  stage?: "inputs" | "outputs",
): KeywordModerationResult {
  const none: KeywordModerationResult = { flagged: false, presetResponse: "" };
  if (!isRecord(config)) return none;
  let inner: Record<string, unknown> = config;
  if (!("keywords" in config) && ("type" in config || "enabled" in config)) {
    if (!config.enabled || config.type !== "keywords" || !isRecord(config.config)) return none;
    inner = config.config;
  }
  let presetResponse = "";
  if (stage) {
    const side = inner[`${stage}_config`];
    if (!isRecord(side) || !side.enabled) return none;
    presetResponse = typeof side.preset_response === "string" ? side.preset_response : "";
  }
  const keywords = parseModerationKeywords(inner.keywords).map((k) => k.toLowerCase());
  const flagged =
    keywords.length > 0 &&
    texts.some((t) => {
      const haystack = pyStr(t).toLowerCase();
      return keywords.some((k) => haystack.includes(k));
    });
  return { flagged, presetResponse };
}

// Small LLM tasks around a conversation, with Dify's prompts and parsing
// (api/core/llm_generator/llm_generator.py, prompts.py, output_parser/suggested_questions_after_answer.py):
// - conversation names (apps spec §8.4, §8.7)
// - suggested questions after an answer (apps spec §8.8, dsl spec §2.8)
// Prompt texts are Dify's, verbatim: the models were tuned against them by Dify users.
import type { Logger } from "../../lib/logger.js";
import type { ModelConfig, Models } from "../models/index.js";

/** Dify's CONVERSATION_TITLE_PROMPT; the user's query is appended after "User Input:\n". */
export const CONVERSATION_TITLE_PROMPT = `You are asked to generate a concise chat title by decomposing the user’s input into two parts: “Intention” and “Subject”.

1. Detect Input Language
Automatically identify the language of the user’s input (e.g. English, Chinese, Italian, Español, Arabic, Japanese, French, and etc.).

2. Generate Title
- Combine Intention + Subject into a single, as-short-as-possible phrase.
- The title must be natural, friendly, and in the same language as the input.
- If the input is a direct question to the model, you may add an emoji at the end.

3. Output Format
Return **only** a valid JSON object with these exact keys and no additional text:
{
"Language Type": "<Detected language>",
"Your Reasoning": "<Brief explanation in that language>",
"Your Output": "<Intention + Subject>"
}

User Input:
`;

/** Dify's DEFAULT_SUGGESTED_QUESTIONS_AFTER_ANSWER_INSTRUCTION_PROMPT. */
export const SUGGESTED_QUESTIONS_INSTRUCTION_PROMPT =
  "Please help me predict the three most likely questions that human would ask, " +
  "and keep each question under 20 characters.\n" +
  "MAKE SURE your output is the SAME language as the Assistant's latest response. " +
  "The output must be an array in JSON format following the specified schema:\n" +
  '["question1","question2","question3"]\n';

/** Dify's sampling for titles (generate_conversation_name). */
const TITLE_PARAMS = { max_tokens: 500, temperature: 1 };
/** Dify's built-in tuning when the suggested-questions model is the default one. */
const SUGGESTED_PARAMS = { max_tokens: 256, temperature: 0 };
/** Python `len()` limit for titles; longer ones become the first 75 characters + "...". */
const TITLE_MAX_CHARS = 75;
const MAX_SUGGESTED_QUESTIONS = 3;

export interface LlmTaskOptions {
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

/** Python string length/slicing work on code points, not UTF-16 units. */
const chars = (s: string) => Array.from(s);

/**
 * A short title for a conversation from its first query (apps spec §8.7). Dify's algorithm:
 * queries over 2 000 characters keep their first and last 300; newlines become spaces; the model's
 * JSON "Your Output" is the title, and anything unusable (empty reply, no JSON object, empty
 * value) falls back to the query itself; the result is trimmed and cut to 75 characters + "...".
 *
 * A failing model call is retried once on `system_model` (when configured and different); if that
 * fails too the error is thrown and the caller keeps the old name (Dify swallows it in the
 * background thread; `POST /conversations/{id}/name` leaves the name unchanged).
 */
export async function generateConversationName(
  models: Models,
  model: ModelConfig,
  query: string,
  opts: LlmTaskOptions = {},
): Promise<string> {
  let q = query;
  const qc = chars(q);
  if (qc.length > 2000) q = qc.slice(0, 300).join("") + "...[TRUNCATED]..." + qc.slice(-300).join("");
  q = q.replaceAll("\n", " ");
  const prompt = `${CONVERSATION_TITLE_PROMPT}${q}\n`;

  const answer = await withSystemFallback(models, model, opts, (m) =>
    models
      .chat({
        model: { provider: m.provider, name: m.name, ...(m.mode ? { mode: m.mode } : {}), completion_params: TITLE_PARAMS },
        messages: [{ role: "user", content: prompt }],
        prompt,
        signal: opts.signal,
      })
      .then((r) => r.text),
  );

  let title = q;
  if (answer.trim()) {
    const output = parseJsonObject(stripReasoning(answer))?.["Your Output"];
    if (typeof output === "string" && output.trim()) title = output.trim();
  }
  let name = title.trim();
  const nc = chars(name);
  if (nc.length > TITLE_MAX_CHARS) name = nc.slice(0, TITLE_MAX_CHARS).join("") + "...";
  return name;
}

/**
 * Up to three follow-up questions for the latest turn (apps spec §8.8). `historyText` is the
 * recent history as Dify renders it (e.g. "Human: …\nAssistant: …"). Prompt:
 * `{histories}\n{instructions}\nquestions:\n`. The first JSON array in the reply is used (after
 * dropping `<think>` blocks); anything else, and any model failure, yields [] (newest Dify).
 *
 * `completionParams`: the parameters of a model configured for the feature
 * (`suggested_questions_after_answer.model`); without them Dify's built-in tuning is used
 * (max_tokens 256, temperature 0). `instructionPrompt`: a custom prompt from the same feature.
 */
export async function generateSuggestedQuestions(
  models: Models,
  model: ModelConfig,
  historyText: string,
  opts: LlmTaskOptions & { instructionPrompt?: string | undefined; completionParams?: Record<string, unknown> | undefined } = {},
): Promise<string[]> {
  const instructions = opts.instructionPrompt?.trim()
    ? `${opts.instructionPrompt}\nYou must output a JSON array like ["question1", "question2", "question3"].`
    : SUGGESTED_QUESTIONS_INSTRUCTION_PROMPT;
  const prompt = `${historyText}\n${instructions}\nquestions:\n`;
  const { params, stop } = opts.completionParams ? normaliseCompletionParams(opts.completionParams) : { params: SUGGESTED_PARAMS, stop: [] };
  try {
    const text = await withSystemFallback(models, model, opts, (m) =>
      models
        .chat({
          model: { provider: m.provider, name: m.name, ...(m.mode ? { mode: m.mode } : {}), completion_params: params },
          messages: [{ role: "user", content: prompt }],
          prompt,
          stop,
          signal: opts.signal,
        })
        .then((r) => r.text),
    );
    return parseSuggestedQuestions(text);
  } catch (err) {
    opts.logger?.warn({ err: (err as Error)?.message }, "suggested questions generation failed");
    return [];
  }
}

/** Dify's parser, plus a second try over the widest `[…]` when the first match is not JSON. */
export function parseSuggestedQuestions(text: string): string[] {
  const stripped = stripReasoning(text);
  const candidates: string[] = [];
  const first = /\[.*?\]/s.exec(stripped);
  if (first) candidates.push(first[0]);
  const open = stripped.indexOf("[");
  const close = stripped.lastIndexOf("]");
  if (open !== -1 && close > open) candidates.push(stripped.slice(open, close + 1));
  for (const candidate of candidates) {
    try {
      const parsed: unknown = JSON.parse(candidate.trim());
      if (Array.isArray(parsed)) {
        return parsed.filter((q): q is string => typeof q === "string").slice(0, MAX_SUGGESTED_QUESTIONS);
      }
    } catch {
      // try the next candidate
    }
  }
  return [];
}

/**
 * Dify's `_normalize_completion_params`: `stop` (a list of strings) moves to the stop sequences
 * and non-positive token limits are dropped.
 */
function normaliseCompletionParams(cp: Record<string, unknown>): { params: Record<string, unknown>; stop: string[] } {
  const params: Record<string, unknown> = { ...cp };
  const stopValue = params.stop;
  delete params.stop;
  const stop = Array.isArray(stopValue) && stopValue.every((s) => typeof s === "string") ? (stopValue as string[]) : [];
  for (const key of ["max_tokens", "max_output_tokens"]) {
    const v = params[key];
    if (typeof v === "number" && v <= 0) delete params[key];
  }
  return { params, stop };
}

/** Runs `call` on the app's model; on failure, once more on `system_model` if that differs. */
async function withSystemFallback<T>(
  models: Models,
  model: ModelConfig,
  opts: LlmTaskOptions,
  call: (m: ModelConfig) => Promise<T>,
): Promise<T> {
  try {
    return await call(model);
  } catch (err) {
    const sys = models.systemModel(model);
    if (sys === model || (sys.name === model.name && sys.provider === model.provider) || opts.signal?.aborted) throw err;
    opts.logger?.info({ err: (err as Error)?.message, fallback: sys.name }, "app model unusable, using system_model");
    return call(sys);
  }
}

/**
 * Reasoning models put `<think>…</think>` before the answer; drop it (an unclosed block keeps
 * what follows its first "[" or "{"), as Dify's newest suggested-questions parser does.
 */
function stripReasoning(text: string): string {
  let s = text.replace(/<think>[\s\S]*?<\/think>/gi, "");
  const open = s.toLowerCase().indexOf("<think>");
  if (open !== -1) {
    const tail = s.slice(open + "<think>".length);
    const start = tail.search(/[[{]/);
    s = start !== -1 ? tail.slice(start) : s.slice(0, open);
  }
  return s.trim();
}

/**
 * Lenient JSON-object parsing in the spirit of Python's `json_repair.loads`: the whole text,
 * then inside code fences, then the outermost `{…}`, and finally the "Your Output" value picked
 * out of broken JSON. Returns undefined when no object can be recovered.
 */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const attempts = [text];
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fenced?.[1]) attempts.push(fenced[1]);
  const open = text.indexOf("{");
  const close = text.lastIndexOf("}");
  if (open !== -1 && close > open) attempts.push(text.slice(open, close + 1));
  for (const candidate of attempts) {
    try {
      const v: unknown = JSON.parse(candidate.trim());
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
      return undefined; // valid JSON but not an object: Dify falls back to the query
    } catch {
      // next attempt
    }
  }
  const m = /"Your Output"\s*:\s*"((?:[^"\\]|\\.)*)"?/.exec(text);
  if (m?.[1] !== undefined) {
    try {
      return { "Your Output": JSON.parse(`"${m[1]}"`) as string };
    } catch {
      return { "Your Output": m[1] };
    }
  }
  return undefined;
}

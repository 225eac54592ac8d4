// Token estimates, used only when a provider reports no usage (DESIGN §5: usage comes from
// `stream_options.include_usage`), for aborted streams (apps spec §5.8: usage is computed for the
// prompt and the partial answer) and for Dify's max_tokens re-calculation (dsl spec §2.3 step 9).
// o200k_base is the encoding of current OpenAI models; for other model families it is an
// approximation, which is all Dify itself offers for OpenAI-compatible endpoints (it falls back to
// a GPT-2 tokenizer). The encoding is loaded lazily (~250 ms, a few MB) on first use; if it cannot
// be loaded, ~4 characters per token.

type CountFn = (text: string) => number;

let counter: CountFn | undefined;
let loading: Promise<CountFn> | undefined;

const roughCount: CountFn = (text) => Math.ceil(text.length / 4);

export function loadTokenizer(): Promise<CountFn> {
  if (counter) return Promise.resolve(counter);
  loading ??= import("gpt-tokenizer/encoding/o200k_base")
    .then((m) => {
      // Special-token text in user content (e.g. "<|endoftext|>") must count as text, not throw.
      const count: CountFn = (text) => m.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() }).length;
      count("warm up");
      return count;
    })
    .catch(() => roughCount)
    .then((fn) => (counter = fn));
  return loading;
}

/** Tokens in a text (sync once the tokenizer has loaded; ~chars/4 before that). */
export function countTokensSync(text: string): number {
  if (!text) return 0;
  return (counter ?? roughCount)(text);
}

export async function countTokens(text: string): Promise<number> {
  if (!text) return 0;
  return (await loadTokenizer())(text);
}

/** What the estimator needs of a chat message. */
export interface CountableMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null | undefined;
  name?: string | undefined;
  tool_calls?: Array<{ name: string; arguments: string }> | undefined;
}

/**
 * Prompt tokens of a chat request, following OpenAI's documented accounting: 3 tokens of framing
 * per message, the role, the text (images count a low-detail 85 tokens each), tool calls, plus 3
 * tokens priming the reply; tool definitions are counted as their JSON.
 */
export async function countMessageTokens(messages: CountableMessage[], tools?: unknown[]): Promise<number> {
  const count = await loadTokenizer();
  let total = 3;
  for (const m of messages) {
    total += 3 + count(m.role);
    if (m.name) total += 1 + count(m.name);
    if (typeof m.content === "string") total += count(m.content);
    else if (Array.isArray(m.content)) {
      for (const part of m.content) total += part.type === "text" ? count(part.text ?? "") : 85;
    }
    for (const call of m.tool_calls ?? []) total += 3 + count(call.name) + count(call.arguments);
  }
  if (tools?.length) total += count(JSON.stringify(tools));
  return total;
}

// Pure unit tests for basic-mode prompt assembly (dsl-and-workflow spec §2.4–2.8, apps spec §5.7).
// Every config here is written inline; expected texts are Dify's templates verbatim.
import { describe, expect, it } from "vitest";
import {
  buildBasicPrompt,
  checkKeywordModeration,
  extractTemplateVariables,
  extractThread,
  historyMessagesToText,
  historyToMessages,
  keywordModerationInputTexts,
  parseModerationKeywords,
  pruneHistoryMessages,
  PromptConfigError,
  PyFloat,
  pyStr,
  renderOpeningStatement,
  renderTemplate,
  selectHistoryWindow,
  type BuildBasicPromptInput,
  type HistoryTurn,
  type ImagePart,
} from "../src/modules/generation/prompt.js";

// common_chat.json / common_completion.json `context_prompt`, with {{#context#}} filled.
const contextBlock = (ctx: string): string =>
  "Use the following context as your learned knowledge, inside <context></context> XML tags.\n\n" +
  `<context>\n${ctx}\n</context>\n\n` +
  "When answer to user:\n" +
  "- If you don't know, just say that you don't know.\n" +
  "- If you don't know when you are not sure, ask for clarification.\n" +
  "Avoid mentioning that you obtained the information from the context.\n" +
  "And answer according to the language of the user's question.\n\n";
// common_chat.json `histories_prompt`, with {{#histories#}} filled.
const historiesBlock = (h: string): string =>
  "Here is the chat histories between human and assistant, inside <histories></histories> XML tags.\n\n" +
  `<histories>\n${h}\n</histories>\n\n`;
const chatQuery = (q: string): string => `\n\nHuman: ${q}\n\nAssistant: `;
const CHAT_STOPS = ["\nHuman:", "</histories>"];

const simpleConfig = (prePrompt: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  prompt_type: "simple",
  pre_prompt: prePrompt,
  model: { provider: "langgenius/openai/openai", name: "gpt-4o", mode: "chat", completion_params: { stop: ["END"] } },
  ...extra,
});

const base = (over: Partial<BuildBasicPromptInput>): BuildBasicPromptInput => ({
  appMode: "chat",
  modelConfig: simpleConfig("You are {{name}}."),
  modelMode: "chat",
  inputs: { name: "Bob" },
  query: "hi",
  history: null,
  context: null,
  ...over,
});

const turns = (n: number): HistoryTurn[] => Array.from({ length: n }, (_, i) => ({ query: `q${i + 1}`, answer: `a${i + 1}` }));
const img = (url: string, detail: "low" | "high" = "low"): ImagePart => ({ type: "image_url", image_url: { url, detail } });

// ---------------------------------------------------------------------------------------------

describe("simple prompt, chat-mode model (§2.4)", () => {
  it("system(pre_prompt + \\n), then user(query); no stop words", () => {
    expect(buildBasicPrompt(base({}))).toEqual({
      messages: [
        { role: "system", content: "You are Bob.\n" },
        { role: "user", content: "hi" },
      ],
      stop: [],
    });
  });

  it("puts the context block before the pre_prompt in the system message", () => {
    const r = buildBasicPrompt(base({ context: "Paris is in France." }));
    expect(r).toEqual({
      messages: [
        { role: "system", content: contextBlock("Paris is in France.") + "You are Bob.\n" },
        { role: "user", content: "hi" },
      ],
      stop: [],
    });
  });

  it("an empty context string still includes the block (only null omits it)", () => {
    const r = buildBasicPrompt(base({ context: "" }));
    expect("messages" in r && r.messages[0]).toEqual({ role: "system", content: contextBlock("") + "You are Bob.\n" });
  });

  it("no system message when pre_prompt is empty and there is no context", () => {
    const r = buildBasicPrompt(base({ modelConfig: simpleConfig("") }));
    expect(r).toEqual({ messages: [{ role: "user", content: "hi" }], stop: [] });
  });

  it("history turns go between the system message and the query, oldest first", () => {
    const r = buildBasicPrompt(base({ history: turns(2), context: "C" }));
    expect("messages" in r && r.messages).toEqual([
      { role: "system", content: contextBlock("C") + "You are Bob.\n" },
      { role: "user", content: "q1" },
      { role: "assistant", content: "a1" },
      { role: "user", content: "q2" },
      { role: "assistant", content: "a2" },
      { role: "user", content: "hi" },
    ]);
  });

  it("a completion app (empty query) sends the whole rendered prompt as one user message", () => {
    const r = buildBasicPrompt(
      base({ appMode: "completion", query: "", modelConfig: simpleConfig("Translate {{text}}"), inputs: { text: "bonjour" }, context: "K" }),
    );
    expect(r).toEqual({ messages: [{ role: "user", content: contextBlock("K") + "Translate bonjour\n" }], stop: [] });
  });

  it("images of the current query become parts of the last user message (files first, then text)", () => {
    const r = buildBasicPrompt(base({ images: [img("https://x/a.png", "high")] }));
    expect("messages" in r && r.messages.at(-1)).toEqual({
      role: "user",
      content: [
        { type: "image_url", image_url: { url: "https://x/a.png", detail: "high" } },
        { type: "text", text: "hi" },
      ],
    });
  });

  it("history images follow the history text", () => {
    const r = buildBasicPrompt(base({ history: [{ query: "look", answer: "a cat", files: [img("u1")] }] }));
    expect("messages" in r && r.messages[1]).toEqual({
      role: "user",
      content: [
        { type: "text", text: "look" },
        { type: "image_url", image_url: { url: "u1", detail: "low" } },
      ],
    });
  });

  it("agent-chat uses the chat templates", () => {
    const r = buildBasicPrompt(base({ appMode: "agent-chat", context: "C" }));
    expect("messages" in r && r.messages[0]?.content).toBe(contextBlock("C") + "You are Bob.\n");
  });

  it("the query is sent raw (no template processing)", () => {
    const r = buildBasicPrompt(base({ query: "{{name}} <|endoftext|>" }));
    expect("messages" in r && r.messages.at(-1)).toEqual({ role: "user", content: "{{name}} <|endoftext|>" });
  });
});

describe("simple prompt, completion-mode model (§2.4)", () => {
  it("chat app, first turn: pre_prompt + Human/Assistant framing and the template stops", () => {
    const r = buildBasicPrompt(base({ modelMode: "completion" }));
    expect(r).toEqual({ prompt: "You are Bob.\n" + chatQuery("hi"), stop: CHAT_STOPS, images: [] });
  });

  it("chat app with context and history: context, pre_prompt, histories, query", () => {
    const r = buildBasicPrompt(base({ modelMode: "completion", context: "C", history: turns(2) }));
    expect(r).toEqual({
      prompt:
        contextBlock("C") +
        "You are Bob.\n" +
        historiesBlock("Human: q1\nAssistant: a1\nHuman: q2\nAssistant: a2") +
        chatQuery("hi"),
      stop: CHAT_STOPS,
      images: [],
    });
  });

  it("history images render as [image] in the history text", () => {
    const r = buildBasicPrompt(
      base({ modelMode: "completion", modelConfig: simpleConfig(""), history: [{ query: "see", answer: "ok", files: [img("u")] }] }),
    );
    expect("prompt" in r && r.prompt).toBe(historiesBlock("Human: see\n[image]\nAssistant: ok") + chatQuery("hi"));
  });

  it("completion app: context + pre_prompt + the (empty) query, no stop words", () => {
    const r = buildBasicPrompt(
      base({
        appMode: "completion",
        modelMode: "completion",
        query: "",
        modelConfig: simpleConfig("Summarise: {{doc}}"),
        inputs: { doc: "long text" },
        context: "K",
      }),
    );
    expect(r).toEqual({ prompt: contextBlock("K") + "Summarise: long text\n", stop: [], images: [] });
  });

  it("a query in a completion-model prompt goes through the template (braces neutralised, <|…|> removed)", () => {
    const r = buildBasicPrompt(base({ modelMode: "completion", query: "say {{name}}<|im_end|>!" }));
    expect("prompt" in r && r.prompt).toBe("You are Bob.\n" + chatQuery("say {name}!"));
  });

  it("keeps the current images beside the prompt", () => {
    const r = buildBasicPrompt(base({ modelMode: "completion", images: [img("u")] }));
    expect("prompt" in r && r.images).toEqual([img("u")]);
  });
});

describe("advanced prompt, chat-mode model (§2.5)", () => {
  const advChat = (prompt: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    prompt_type: "advanced",
    chat_prompt_config: { prompt },
    completion_prompt_config: {},
    model: { provider: "p", name: "m", mode: "chat", completion_params: { stop: ["END", "STOP"], max_tokens: 100 } },
    ...extra,
  });

  it("renders each template message; drops empty system messages, keeps empty user/assistant ones; stops from completion_params", () => {
    const cfg = advChat([
      { role: "system", text: "You help {{name}}.\n{{#context#}}" },
      { role: "system", text: "{{empty}}" },
      { role: "user", text: "" },
      { role: "assistant", text: "Sure, {{name}}." },
    ]);
    const r = buildBasicPrompt(base({ modelConfig: cfg, inputs: { name: "Ann", empty: "" }, context: "CTX" }));
    expect(r).toEqual({
      messages: [
        { role: "system", content: "You help Ann.\nCTX" },
        { role: "user", content: "" },
        { role: "assistant", content: "Sure, Ann." },
        { role: "user", content: "hi" },
      ],
      stop: ["END", "STOP"],
    });
  });

  it("{{#context#}} renders empty without context; {{#query#}} and unknown names stay literal", () => {
    const cfg = advChat([{ role: "system", text: "[{{#context#}}] {{#query#}} {{nope}}" }]);
    const r = buildBasicPrompt(base({ modelConfig: cfg }));
    expect("messages" in r && r.messages[0]).toEqual({ role: "system", content: "[] {{#query#}} {{nope}}" });
  });

  it("history goes after the template messages, then the query", () => {
    const cfg = advChat([
      { role: "system", text: "S" },
      { role: "user", text: "example q" },
      { role: "assistant", text: "example a" },
    ]);
    const r = buildBasicPrompt(base({ modelConfig: cfg, history: turns(1), images: [img("u")] }));
    expect("messages" in r && r.messages).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: "example q" },
      { role: "assistant", content: "example a" },
      { role: "user", content: "q1" },
      { role: "assistant", content: "a1" },
      { role: "user", content: [img("u"), { type: "text", text: "hi" }] },
    ]);
  });

  it("without a query, images attach to the last template user message (or a new empty one)", () => {
    const r1 = buildBasicPrompt(
      base({ appMode: "completion", query: "", modelConfig: advChat([{ role: "user", text: "Describe" }]), images: [img("u")] }),
    );
    expect("messages" in r1 && r1.messages).toEqual([{ role: "user", content: [img("u"), { type: "text", text: "Describe" }] }]);
    const r2 = buildBasicPrompt(
      base({ appMode: "completion", query: "", modelConfig: advChat([{ role: "system", text: "S" }]), images: [img("u")] }),
    );
    expect("messages" in r2 && r2.messages).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: [img("u"), { type: "text", text: "" }] },
    ]);
  });

  it("without query, images or memory only the template is sent", () => {
    const r = buildBasicPrompt(base({ appMode: "completion", query: "", modelConfig: advChat([{ role: "user", text: "T {{name}}" }]) }));
    expect("messages" in r && r.messages).toEqual([{ role: "user", content: "T Bob" }]);
  });

  it("rejects a missing template and bad roles", () => {
    expect(() => buildBasicPrompt(base({ modelConfig: advChat([], { chat_prompt_config: {} }) }))).toThrow(
      new PromptConfigError("Advanced chat prompt template is required."),
    );
    expect(() => buildBasicPrompt(base({ modelConfig: advChat([{ role: "robot", text: "x" }]) }))).toThrow(PromptConfigError);
    expect(() => buildBasicPrompt(base({ modelConfig: { prompt_type: "expert" } }))).toThrow(PromptConfigError);
  });
});

describe("advanced prompt, completion-mode model (§2.5)", () => {
  const advCompletion = (text: string, roles?: Record<string, unknown>): Record<string, unknown> => ({
    prompt_type: "advanced",
    chat_prompt_config: {},
    completion_prompt_config: { prompt: { text }, ...(roles ? { conversation_histories_role: roles } : {}) },
    model: { provider: "p", name: "m", mode: "completion", completion_params: { stop: ["\nUser:"] } },
  });
  const TEMPLATE = "{{name}} ctx={{#context#}}\n<histories>\n{{#histories#}}\n</histories>\nUser: {{#query#}}\nBot: ";

  it("fills inputs, context, histories (with role_prefix) and query; stops from completion_params", () => {
    const r = buildBasicPrompt(
      base({
        modelMode: "completion",
        modelConfig: advCompletion(TEMPLATE, { user_prefix: "User", assistant_prefix: "Bot" }),
        history: turns(2),
        context: "C",
      }),
    );
    expect(r).toEqual({
      prompt: "Bob ctx=C\n<histories>\nUser: q1\nBot: a1\nUser: q2\nBot: a2\n</histories>\nUser: hi\nBot: ",
      stop: ["\nUser:"],
      images: [],
    });
  });

  it("empty role prefixes fall back to Human/Assistant", () => {
    const r = buildBasicPrompt(
      base({ modelMode: "completion", modelConfig: advCompletion("{{#histories#}}", { user_prefix: "", assistant_prefix: "" }), history: turns(1) }),
    );
    expect("prompt" in r && r.prompt).toBe("Human: q1\nAssistant: a1");
  });

  it("without memory (first turn) or without conversation_histories_role, {{#histories#}} stays literal", () => {
    const first = buildBasicPrompt(base({ modelMode: "completion", modelConfig: advCompletion(TEMPLATE, { user_prefix: "U", assistant_prefix: "A" }) }));
    expect("prompt" in first && first.prompt).toBe("Bob ctx=\n<histories>\n{{#histories#}}\n</histories>\nUser: hi\nBot: ");
    const noRoles = buildBasicPrompt(base({ modelMode: "completion", modelConfig: advCompletion("{{#histories#}}"), history: turns(1) }));
    expect("prompt" in noRoles && noRoles.prompt).toBe("{{#histories#}}");
  });

  it("an empty query leaves {{#query#}} literal", () => {
    const r = buildBasicPrompt(base({ appMode: "completion", query: "", modelMode: "completion", modelConfig: advCompletion("Q={{#query#}}") }));
    expect("prompt" in r && r.prompt).toBe("Q={{#query#}}");
  });

  it("requires completion_prompt_config", () => {
    expect(() =>
      buildBasicPrompt(base({ modelMode: "completion", modelConfig: { prompt_type: "advanced", completion_prompt_config: {} } })),
    ).toThrow("Advanced completion prompt template is required.");
  });
});

describe("variable substitution (§2.4 PromptTemplateParser, Python str())", () => {
  const render = (pre: string, inputs: Record<string, unknown>, prompt_type = "simple"): string => {
    const modelConfig =
      prompt_type === "simple"
        ? simpleConfig(pre)
        : { prompt_type, chat_prompt_config: { prompt: [{ role: "system", text: pre }] }, model: {} };
    const r = buildBasicPrompt(base({ modelConfig, inputs }));
    return "messages" in r ? String(r.messages[0]?.content) : r.prompt;
  };

  it("stringifies numbers, booleans and None like Python str() in simple mode", () => {
    expect(render("{{i}} {{f}} {{pf}} {{t}} {{n}} {{l}} {{d}}", {
      i: 3,
      f: 3.5,
      pf: new PyFloat(3),
      t: true,
      n: null,
      l: ["a", 1, false],
      d: { k: null, "it's": 1.5 },
    })).toBe("3 3.5 3.0 True None ['a', 1, False] {'k': None, \"it's\": 1.5}\n");
  });

  it("advanced mode renders None as empty (Dify passes raw values)", () => {
    expect(render("[{{n}}] {{i}} {{t}}", { n: null, i: 7, t: false }, "advanced")).toBe("[] 7 False");
  });

  it("leaves missing variables, invalid names and spaced placeholders literally", () => {
    const long = "a".repeat(31);
    expect(render(`{{missing}} {{${long}}} {{ name }} {{1x}} {{name}}`, { name: "Bob" })).toBe(
      `{{missing}} {{${long}}} {{ name }} {{1x}} Bob\n`,
    );
  });

  it("neutralises placeholders inside values and deletes <|…|> from the whole prompt", () => {
    expect(render("{{a}} <|system|>end", { a: "{{name}} {{#context#}} {x}", name: "Bob" })).toBe("{name} {#context#} {x} end\n");
  });

  it("Python float repr", () => {
    expect([0.1 + 0.2, 1e-5, 0.0001, 1e22, 123456.789, -2.5].map(pyStr)).toEqual([
      "0.30000000000000004",
      "1e-05",
      "0.0001",
      "10000000000000000000000",
      "123456.789",
      "-2.5",
    ]);
    expect([new PyFloat(1e16), new PyFloat(-0), new PyFloat(1.5e-7), new PyFloat(Infinity)].map(pyStr)).toEqual([
      "1e+16",
      "-0.0",
      "1.5e-07",
      "inf",
    ]);
    expect(pyStr(["tab\there", "new\nline", "\u0001"])).toBe("['tab\\there', 'new\\nline', '\\x01']");
  });

  it("renderTemplate / extractTemplateVariables", () => {
    expect(extractTemplateVariables("{{a}} {{#query#}} {{#sys.query#}} {{a}}")).toEqual(["a", "#query#", "a"]);
    expect(renderTemplate("{{a}}-{{b}}-{{c}}", { a: "1", b: null })).toBe("1--{{c}}");
    expect(renderTemplate("{{constructor}} {{toString}}", {})).toBe("{{constructor}} {{toString}}");
  });
});

describe("memory window and budget (§2.6)", () => {
  it("keeps at most 499 earlier turns (500 rows incl. the current one), oldest dropped, order kept", () => {
    const r = buildBasicPrompt(base({ modelConfig: simpleConfig(""), history: turns(600), memoryBudgetTokens: 1e9 }));
    const msgs = "messages" in r ? r.messages : [];
    expect(msgs).toHaveLength(499 * 2 + 1);
    expect(msgs[0]).toEqual({ role: "user", content: "q102" });
    expect(msgs.at(-2)).toEqual({ role: "assistant", content: "a600" });
  });

  it("a window of N pairs keeps N-1 earlier turns", () => {
    expect(selectHistoryWindow(turns(5), 3)).toEqual(turns(5).slice(3));
    expect(selectHistoryWindow(turns(5), 1)).toEqual([]);
    expect(selectHistoryWindow(turns(5), 0)).toEqual(turns(5));
    expect(selectHistoryWindow(turns(5), null)).toEqual(turns(5));
  });

  it("prunes single messages from the oldest end until the history fits the budget", () => {
    const count = (t: string): number => t.length;
    // q1 a1 q2 a2 q3 a3 → 2 chars each; budget 5 keeps the last two messages.
    const r = buildBasicPrompt(base({ modelConfig: simpleConfig(""), history: turns(3), memoryBudgetTokens: 5, countTokens: count }));
    expect("messages" in r && r.messages).toEqual([
      { role: "user", content: "q3" },
      { role: "assistant", content: "a3" },
      { role: "user", content: "hi" },
    ]);
    // An odd budget can leave an assistant message first (Dify prunes messages, not pairs).
    expect(pruneHistoryMessages(historyToMessages(turns(2)), 6, count)).toEqual([
      { role: "assistant", content: "a1" },
      { role: "user", content: "q2" },
      { role: "assistant", content: "a2" },
    ]);
    // Never below one message.
    expect(pruneHistoryMessages(historyToMessages(turns(2)), 0, count)).toEqual([{ role: "assistant", content: "a2" }]);
  });

  it("derives the budget from context size − max_tokens − the prompt so far", () => {
    const count = (t: string): number => t.length;
    // system "You are Bob.\n" = 13 chars; 13 + 4 = 17 → with context 100 and max_tokens 83 → 4 left.
    const cfg = simpleConfig("You are {{name}}.", { model: { mode: "chat", completion_params: { max_tokens: 83 } } });
    const r = buildBasicPrompt(base({ modelConfig: cfg, history: turns(3), modelContextSize: 100, countTokens: count }));
    expect("messages" in r && r.messages.map((m) => m.content)).toEqual(["You are Bob.\n", "q3", "a3", "hi"]);
    // Unknown context size → 2000 tokens.
    const r2 = buildBasicPrompt(base({ modelConfig: cfg, history: turns(3), countTokens: count }));
    expect("messages" in r2 && r2.messages).toHaveLength(8);
  });

  it("history text for completion models", () => {
    expect(
      historyMessagesToText(
        [
          { role: "user", content: [{ type: "text", text: " hi " }, img("u")] },
          { role: "assistant", content: "yo" },
          { role: "system", content: "ignored" },
        ],
        "U",
        "A",
      ),
    ).toBe("U: hi \n[image]\nA: yo");
  });

  it("extractThread follows parent links from the newest message", () => {
    const rows = [
      { id: "m4", parentMessageId: "m2" },
      { id: "m3", parentMessageId: "m2" }, // sibling (regenerated), excluded
      { id: "m2", parentMessageId: "m1" },
      { id: "m1", parentMessageId: null },
      { id: "m0", parentMessageId: null },
    ];
    expect(extractThread(rows).map((r) => r.id)).toEqual(["m4", "m2", "m1"]);
  });
});

describe("opening statement (apps §5.7)", () => {
  it("fills {{var}} from inputs, keeps unknown placeholders", () => {
    expect(renderOpeningStatement("Hello {{name}}, {{missing}}! {{n}} {{empty}}", { name: "Bob", n: 3, empty: null })).toBe(
      "Hello Bob, {{missing}}! 3 ",
    );
  });
  it("is empty without a statement", () => {
    expect(renderOpeningStatement("", { a: 1 })).toBe("");
    expect(renderOpeningStatement(null, {})).toBe("");
  });
});

describe("keyword moderation (§2.8)", () => {
  const config = {
    keywords: "forbidden\nBad Word\n\n",
    inputs_config: { enabled: true, preset_response: "Not allowed." },
    outputs_config: { enabled: false, preset_response: "Hidden." },
  };

  it("splits keywords on newlines only, dropping empty rows", () => {
    expect(parseModerationKeywords("a\n\nb,c\n")).toEqual(["a", "b,c"]);
  });

  it("matches case-insensitive substrings in any text", () => {
    expect(checkKeywordModeration(config, ["fine", "this has a BAD word inside"])).toEqual({ flagged: true, presetResponse: "" });
    expect(checkKeywordModeration(config, ["all fine", "Forbid"])).toEqual({ flagged: false, presetResponse: "" });
  });

  it("with a stage: the side must be enabled and its preset is reported", () => {
    expect(checkKeywordModeration(config, ["FORBIDDEN"], "inputs")).toEqual({ flagged: true, presetResponse: "Not allowed." });
    expect(checkKeywordModeration(config, ["clean"], "inputs")).toEqual({ flagged: false, presetResponse: "Not allowed." });
    expect(checkKeywordModeration(config, ["FORBIDDEN"], "outputs")).toEqual({ flagged: false, presetResponse: "" });
  });

  it("accepts the whole sensitive_word_avoidance mapping", () => {
    expect(checkKeywordModeration({ enabled: true, type: "keywords", config }, ["forbidden"], "inputs").flagged).toBe(true);
    expect(checkKeywordModeration({ enabled: false, type: "keywords", config }, ["forbidden"], "inputs").flagged).toBe(false);
    expect(checkKeywordModeration({ enabled: true, type: "api", config }, ["forbidden"]).flagged).toBe(false);
    expect(checkKeywordModeration({ enabled: false, type: "", configs: [] }, ["x"]).flagged).toBe(false);
  });

  it("input texts are every input value (Python str()) plus a non-empty query", () => {
    const texts = keywordModerationInputTexts({ a: "x", n: null, k: 5 }, "");
    expect(texts).toEqual(["x", null, 5]);
    expect(checkKeywordModeration({ ...config, keywords: "none" }, texts, "inputs").flagged).toBe(true);
    expect(keywordModerationInputTexts({ a: "x" }, "q")).toEqual(["x", "q"]);
  });
});

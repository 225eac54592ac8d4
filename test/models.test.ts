// The model module against the fake OpenAI-compatible server (test/support/fake-openai.ts), so
// the real `openai` client is exercised end to end. No database needed.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { loadConfig } from "../src/config/index.js";
import { DifyError } from "../src/lib/errors.js";
import { createLogger } from "../src/lib/logger.js";
import {
  countMessageTokens,
  countTokens,
  createModels,
  isRetryableModelError,
  parseModelsFile,
  toStreamErrorParts,
  type ChatRequest,
  type ChatStreamEvent,
  type Models,
} from "../src/modules/models/index.js";
import { fakeEmbedding, roughTokenCount, startFakeOpenAI, termOverlapScore, type FakeOpenAI } from "./support/fake-openai.js";

const logger = createLogger({ level: "silent" });
let fake: FakeOpenAI;
let models: Models;

const configFor = (baseURL: string, extra: Record<string, string> = {}) =>
  loadConfig({ ...process.env, OPENAI_BASE_URL: baseURL, OPENAI_API_KEY: "sk-test", MODELS_FILE: "", ...extra });

beforeAll(async () => {
  fake = await startFakeOpenAI();
  models = createModels(configFor(fake.baseURL), { logger, maxRetries: 0 });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const gpt = { provider: "langgenius/openai/openai", name: "gpt-4o-mini", mode: "chat" as const };

async function collect(stream: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const events: ChatStreamEvent[] = [];
  for await (const e of stream) events.push(e);
  return events;
}

async function caught(p: Promise<unknown> | (() => Promise<unknown>)): Promise<DifyError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(DifyError);
    return err as DifyError;
  }
  throw new Error("expected a DifyError");
}

describe("chatStream", () => {
  it("streams text deltas and ends with the provider's usage; maps completion_params", async () => {
    const events = await collect(
      models.chatStream({
        model: {
          ...gpt,
          completion_params: {
            temperature: 0.2,
            top_p: 0.9,
            max_tokens: 100,
            presence_penalty: 0.1,
            frequency_penalty: 0.3,
            seed: 7,
            stop: ["END"],
            response_format: "json_object",
            top_k: 5, // not an OpenAI parameter: dropped
          },
        },
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "hello there world" },
        ],
        stop: ["Human:"],
        user: "end-user-1",
      }),
    );
    expect(events.filter((e) => e.type === "text").map((e) => (e as { delta: string }).delta)).toEqual([
      "Echo: ",
      "hello ",
      "there ",
      "world",
    ]);
    const done = events.at(-1)!;
    expect(done).toMatchObject({
      type: "done",
      finishReason: "stop",
      estimated: false,
      usage: {
        prompt_tokens: roughTokenCount("Be brief.\nhello there world"),
        completion_tokens: roughTokenCount("Echo: hello there world"),
      },
    });
    const body = fake.lastRequest("chat")!.body;
    expect(body).toMatchObject({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 100,
      presence_penalty: 0.1,
      frequency_penalty: 0.3,
      seed: 7,
      stop: ["END", "Human:"],
      response_format: { type: "json_object" },
      user: "end-user-1",
    });
    expect(body.top_k).toBeUndefined();
    expect(fake.lastRequest("chat")!.headers.authorization).toBe("Bearer sk-test");
  });

  it("maps response_format json_schema with Dify's json_schema text", async () => {
    const schema = { type: "object", properties: { a: { type: "string" } } };
    await models.chat({
      model: { ...gpt, completion_params: { response_format: "json_schema", json_schema: JSON.stringify(schema) } },
      messages: [{ role: "user", content: "x" }],
    });
    expect(fake.lastRequest("chat")!.body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "response", schema },
    });
  });

  it("blocking chat returns the whole answer", async () => {
    const result = await models.chat({ model: gpt, messages: [{ role: "user", content: "ping" }] });
    expect(result).toMatchObject({
      text: "Echo: ping",
      toolCalls: [],
      finishReason: "stop",
      estimated: false,
      usage: { prompt_tokens: roughTokenCount("ping"), completion_tokens: roughTokenCount("Echo: ping") },
    });
    expect(result.latency).toBeGreaterThan(0);
    expect(result.timeToFirstToken).not.toBeNull();
  });

  it("assembles streamed tool calls and sends tools / tool messages in OpenAI's shape", async () => {
    fake.enqueue("chat", { toolCalls: [{ name: "get_weather", arguments: { city: "Paris", unit: "celsius" } }] });
    const events = await collect(
      models.chatStream({
        model: gpt,
        messages: [
          { role: "user", content: "weather?" },
          { role: "assistant", content: "", tool_calls: [{ id: "call_0", name: "lookup", arguments: "{}" }] },
          { role: "tool", tool_call_id: "call_0", content: "nothing" },
        ],
        tools: [{ name: "get_weather", description: "Weather by city", parameters: { type: "object", properties: { city: { type: "string" } } } }],
      }),
    );
    const calls = events.find((e) => e.type === "tool_calls");
    expect(calls).toEqual({
      type: "tool_calls",
      calls: [{ id: expect.stringMatching(/^call_fake_/), name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' }],
    });
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "tool_calls" });
    const body = fake.lastRequest("chat")!.body;
    expect(body.tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather by city", parameters: { type: "object", properties: { city: { type: "string" } } } },
      },
    ]);
    expect(body.messages[1]).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_0", type: "function", function: { name: "lookup", arguments: "{}" } }],
    });
    expect(body.messages[2]).toEqual({ role: "tool", tool_call_id: "call_0", content: "nothing" });
  });

  it("sends image parts, and drops them for models configured without vision", async () => {
    const messages: ChatRequest["messages"] = [
      {
        role: "user",
        content: [
          { type: "text", text: "what is this?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } },
        ],
      },
    ];
    await models.chat({ model: gpt, messages });
    expect(fake.lastRequest("chat")!.body.messages[0].content).toEqual([
      { type: "text", text: "what is this?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } },
    ]);

    const noVision = createModels(configFor(fake.baseURL), {
      logger,
      maxRetries: 0,
      file: parseModelsFile(`models:\n  - match: { name: text-only }\n    vision: false\n`),
    });
    await noVision.chat({ model: { name: "text-only" }, messages });
    expect(fake.lastRequest("chat")!.body.messages[0].content).toBe("what is this?");
  });

  it("estimates usage with the tokenizer when the provider reports none", async () => {
    const m = createModels(configFor(fake.baseURL), {
      logger,
      maxRetries: 0,
      file: parseModelsFile(`models:\n  - match: { name: no-usage-model }\n    stream_usage: false\n`),
    });
    const messages: ChatRequest["messages"] = [{ role: "user", content: "count these tokens please" }];
    const result = await m.chat({ model: { provider: "openai", name: "no-usage-model" }, messages });
    expect(fake.lastRequest("chat")!.body.stream_options).toBeUndefined();
    expect(result.estimated).toBe(true);
    expect(result.usage).toEqual({
      prompt_tokens: await countMessageTokens(messages),
      completion_tokens: await countTokens("Echo: count these tokens please"),
    });
    // A real tokenizer, not chars/4: "Echo: count these tokens please" is 6 o200k tokens.
    expect(result.usage.completion_tokens).toBe(6);
  });

  it("re-calculates max_tokens against the context size (dsl spec §2.3 step 9)", async () => {
    const m = createModels(configFor(fake.baseURL), {
      logger,
      maxRetries: 0,
      file: parseModelsFile(`models:\n  - match: { name: tiny-context }\n    context_size: 100\n`),
    });
    const messages: ChatRequest["messages"] = [{ role: "user", content: "word ".repeat(60) }];
    await m.chat({ model: { name: "tiny-context", completion_params: { max_tokens: 500 } }, messages });
    const prompt = await countMessageTokens(messages);
    expect(fake.lastRequest("chat")!.body.max_tokens).toBe(Math.max(100 - prompt, 16));
  });

  it("uses max_completion_tokens for o-series / gpt-5 models", async () => {
    await models.chat({ model: { name: "o3-mini", completion_params: { max_tokens: 50 } }, messages: [{ role: "user", content: "x" }] });
    const body = fake.lastRequest("chat")!.body;
    expect(body.max_completion_tokens).toBe(50);
    expect(body.max_tokens).toBeUndefined();
  });

  it("wraps reasoning_content in <think> tags like Dify's OpenAI-compatible runtime", async () => {
    fake.enqueue("chat", {
      raw: (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: object, finish: string | null = null) =>
          `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        res.write(chunk({ role: "assistant", reasoning_content: "Let me" }));
        res.write(chunk({ reasoning_content: " think." }));
        res.write(chunk({ content: "Answer." }));
        res.write(chunk({}, "stop"));
        res.end("data: [DONE]\n\n");
      },
    });
    const result = await models.chat({ model: gpt, messages: [{ role: "user", content: "q" }] });
    expect(result.text).toBe("<think>\nLet me think.\n</think>Answer.");
    expect(result.estimated).toBe(true);
  });

  it("completion-mode models use the legacy /completions endpoint with the prompt", async () => {
    const result = await models.chat({
      model: { provider: "openai", name: "gpt-3.5-turbo-instruct", mode: "completion", completion_params: { max_tokens: 20, stop: ["\n\n"] } },
      messages: [],
      prompt: "Say hi",
    });
    expect(result.text).toBe("Echo: Say hi");
    expect(result.estimated).toBe(false);
    const req = fake.lastRequest("completion")!;
    expect(req.path).toBe("/v1/completions");
    expect(req.body).toMatchObject({
      model: "gpt-3.5-turbo-instruct",
      prompt: "Say hi",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 20,
      stop: ["\n\n"],
    });
    expect(fake.requestsOf("chat")).toHaveLength(0);
  });
});

describe("aborting", () => {
  it("cancels the provider request at once and ends quietly with estimated usage", async () => {
    fake.enqueue("chat", { hangAfterChunks: 2 });
    const controller = new AbortController();
    const messages: ChatRequest["messages"] = [{ role: "user", content: "hello there world" }];
    const events: ChatStreamEvent[] = [];
    for await (const e of models.chatStream({ model: gpt, messages, signal: controller.signal })) {
      events.push(e);
      if (events.filter((x) => x.type === "text").length === 2) controller.abort();
    }
    const recorded = await fake.waitForAbort();
    expect(recorded.aborted).toBe(true);
    expect(events.filter((e) => e.type === "text").map((e) => (e as { delta: string }).delta)).toEqual(["Echo: ", "hello "]);
    expect(events.at(-1)).toEqual({
      type: "done",
      finishReason: "stop",
      estimated: true,
      usage: { prompt_tokens: await countMessageTokens(messages), completion_tokens: await countTokens("Echo: hello ") },
      timeToFirstToken: expect.any(Number),
      latency: expect.any(Number),
    });
  });

  it("an abort before the response headers also ends with done", async () => {
    fake.enqueue("chat", { hang: true });
    const controller = new AbortController();
    const stream = models.chatStream({ model: gpt, messages: [{ role: "user", content: "x" }], signal: controller.signal });
    const pending = collect(stream);
    await fake.waitForRequest("chat");
    controller.abort();
    const events = await pending;
    await fake.waitForAbort();
    expect(events).toEqual([expect.objectContaining({ type: "done", finishReason: "stop", estimated: true, usage: expect.objectContaining({ completion_tokens: 0 }) })]);
  });

  it("a consumer that stops iterating cancels the request too", async () => {
    fake.enqueue("chat", { hangAfterChunks: 1 });
    for await (const e of models.chatStream({ model: gpt, messages: [{ role: "user", content: "a b c" }] })) {
      if (e.type === "text") break;
    }
    await fake.waitForAbort();
  });
});

describe("error mapping (apps spec §5.1, §6.6)", () => {
  const run = (m: Models = models) => m.chat({ model: gpt, messages: [{ role: "user", content: "x" }] });

  it("401 → completion_request_error 'Incorrect API key provided'", async () => {
    fake.enqueue("chat", { error: "invalid_api_key" });
    const err = await caught(run());
    expect(err.toBody()).toEqual({ code: "completion_request_error", message: "Incorrect API key provided", status: 400 });
    const parts = toStreamErrorParts(err);
    expect(parts).toEqual({ code: "completion_request_error", status: 400, message: "Incorrect API key provided" });
    expect(Object.keys(parts)).toEqual(["code", "status", "message"]);
  });

  it("429 rate limit → rate_limit_error with the provider's text (SSE: completion_request_error)", async () => {
    fake.enqueue("chat", { error: "rate_limit" });
    const err = await caught(run());
    expect(err.toBody()).toEqual({
      code: "rate_limit_error",
      message: "Rate limit reached for requests. Please try again in 1ms.",
      status: 429,
    });
    expect(toStreamErrorParts(err)).toEqual({
      code: "completion_request_error",
      status: 400,
      message: "Rate limit reached for requests. Please try again in 1ms.",
    });
  });

  it("429 insufficient_quota → provider_quota_exceeded", async () => {
    fake.enqueue("chat", { error: "insufficient_quota" });
    const err = await caught(run());
    expect(err.code).toBe("provider_quota_exceeded");
    expect(err.status).toBe(400);
    const parts = toStreamErrorParts(err);
    expect(Object.keys(parts)).toEqual(["code", "message", "status"]);
    expect(parts.message).toBe(
      "Your quota for Dify Hosted Model Provider has been exhausted. Please go to Settings -> Model Provider to complete your own provider credentials.",
    );
  });

  it("404 model not found → model_currently_not_support", async () => {
    fake.enqueue("chat", { error: "model_not_found" });
    const err = await caught(run());
    expect(err.toBody()).toEqual({
      code: "model_currently_not_support",
      message: "The model does not exist or you do not have access to it.",
      status: 400,
    });
    expect(toStreamErrorParts(err)).toEqual({ code: "model_currently_not_support", status: 400, message: err.message });
  });

  it("500 → completion_request_error with the provider's message", async () => {
    fake.enqueue("chat", { error: "server_error" });
    const err = await caught(run());
    expect(err.toBody()).toEqual({
      code: "completion_request_error",
      message: "The server had an error while processing your request. Sorry about that!",
      status: 400,
    });
  });

  it("400 context length → completion_request_error with the provider's message", async () => {
    fake.enqueue("chat", { error: "context_length_exceeded" });
    const err = await caught(run());
    expect(err.code).toBe("completion_request_error");
    expect(err.message).toMatch(/maximum context length/);
  });

  it("connection refused → completion_request_error", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const m = createModels(configFor(`http://127.0.0.1:${port}/v1`), { logger, maxRetries: 0 });
    const err = await caught(run(m));
    expect(err.code).toBe("completion_request_error");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^Connection error/);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("a stream cut mid-way → completion_request_error", async () => {
    fake.enqueue("chat", { abortAfterChunks: 2 });
    const err = await caught(collect(models.chatStream({ model: gpt, messages: [{ role: "user", content: "a b c d" }] })));
    expect(err.code).toBe("completion_request_error");
  });

  it("no API key configured → provider_not_initialize", async () => {
    const m = createModels(configFor(fake.baseURL, { OPENAI_API_KEY: "" }), { logger, maxRetries: 0 });
    const err = await caught(run(m));
    expect(err.toBody()).toEqual({
      code: "provider_not_initialize",
      message: "Model gpt-4o-mini credentials is not initialized.",
      status: 400,
    });
    expect(fake.requests).toHaveLength(0);
    expect(Object.keys(toStreamErrorParts(err))).toEqual(["code", "status", "message"]);
  });

  it("tells transient failures from permanent ones", async () => {
    fake.enqueue("chat", { error: "rate_limit" });
    expect(isRetryableModelError(await caught(run()))).toBe(true);
    fake.enqueue("chat", { error: "server_error" });
    expect(isRetryableModelError(await caught(run()))).toBe(true);
    fake.enqueue("chat", { error: "insufficient_quota" });
    expect(isRetryableModelError(await caught(run()))).toBe(false);
    fake.enqueue("chat", { error: "invalid_request" });
    expect(isRetryableModelError(await caught(run()))).toBe(false);
    fake.enqueue("chat", { disconnect: true });
    expect(isRetryableModelError(await caught(run()))).toBe(true);
  });

  it("anything else → internal_server_error frame", () => {
    expect(toStreamErrorParts(new Error("boom"))).toEqual({
      code: "internal_server_error",
      message: "Internal Server Error, please contact support.",
      status: 500,
    });
  });

  it("retries 429s when maxRetries allows", async () => {
    const m = createModels(configFor(fake.baseURL), { logger, maxRetries: 1 });
    fake.enqueue("chat", { error: "rate_limit" });
    const result = await run(m);
    expect(result.text).toBe("Echo: x");
    expect(fake.requestsOf("chat")).toHaveLength(2);
  });
});

describe("MODELS_FILE", () => {
  let second: FakeOpenAI;
  let dir: string;
  beforeAll(async () => {
    second = await startFakeOpenAI({ apiKey: "sk-second" });
    dir = mkdtempSync(join(tmpdir(), "servify-models-"));
  });
  afterAll(async () => {
    await second.close();
  });
  beforeEach(() => second.reset());

  function withFile(yaml: string, env: Record<string, string> = {}): Models {
    const path = join(dir, `models-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, yaml);
    return createModels(configFor(fake.baseURL, { MODELS_FILE: path }), { logger, maxRetries: 0, env });
  }

  const mapped = () => `
system_model: { provider: openai, name: gpt-4o-mini }
models:
  - match: { provider: openai, name: gpt-4o }
    base_url: ${second.baseURL}
    api_key_env: SECOND_KEY
    model: real-model-x
    pricing: { input: "0.0025", output: "0.01", unit: "0.001", currency: USD }
  - match: { name: "text-embedding-*" }
    type: text-embedding
    pricing: { input: 0.00002, unit: "0.001" }
`;

  it("routes a Dify provider/model to its endpoint, key and real model name", async () => {
    const m = withFile(mapped(), { SECOND_KEY: "sk-second" });
    const result = await m.chat({
      model: { provider: "langgenius/openai/openai", name: "gpt-4o", mode: "chat" },
      messages: [{ role: "user", content: "routed" }],
    });
    expect(result.text).toBe("Echo: routed");
    expect(fake.requests).toHaveLength(0);
    const req = second.lastRequest("chat")!;
    expect(req.body.model).toBe("real-model-x");
    expect(req.headers.authorization).toBe("Bearer sk-second");

    // Another provider's gpt-4o does not match the entry: the default endpoint serves it.
    await m.chat({ model: { provider: "langgenius/azure_openai/azure_openai", name: "gpt-4o" }, messages: [{ role: "user", content: "x" }] });
    expect(fake.lastRequest("chat")!.body.model).toBe("gpt-4o");
  });

  it("an entry with its own base_url never gets the default key", async () => {
    const m = withFile(mapped()); // SECOND_KEY unset
    const err = await caught(m.chat({ model: { provider: "openai", name: "gpt-4o" }, messages: [{ role: "user", content: "x" }] }));
    expect(err.code).toBe("provider_not_initialize");
    expect(second.requests).toHaveLength(0);
  });

  it("prices usage with exact Python Decimal strings (apps spec §7.2)", () => {
    const m = withFile(mapped(), { SECOND_KEY: "sk-second" });
    const usage = m.usage({ provider: "openai", name: "gpt-4o" }, 1234, 56, 1.25);
    expect(Object.keys(usage)).toEqual([
      "prompt_tokens",
      "prompt_unit_price",
      "prompt_price_unit",
      "prompt_price",
      "completion_tokens",
      "completion_unit_price",
      "completion_price_unit",
      "completion_price",
      "total_tokens",
      "total_price",
      "currency",
      "latency",
      "time_to_first_token",
      "time_to_generate",
    ]);
    expect(usage).toEqual({
      prompt_tokens: 1234,
      prompt_unit_price: "0.0025",
      prompt_price_unit: "0.001",
      prompt_price: "0.0030850",
      completion_tokens: 56,
      completion_unit_price: "0.01",
      completion_price_unit: "0.001",
      completion_price: "0.0005600",
      total_tokens: 1290,
      total_price: "0.0036450",
      currency: "USD",
      latency: 1.25,
      time_to_first_token: null,
      time_to_generate: null,
    });
    // A priced side with zero tokens: Python prints the quantized zero as "0E-7".
    const zero = m.usage({ provider: "openai", name: "gpt-4o" }, 10, 0, 0.5, { timeToFirstToken: 0.1, timeToGenerate: 0.4 });
    expect(zero).toMatchObject({ prompt_price: "0.0000250", completion_price: "0E-7", total_price: "0.0000250" });
    expect(zero).toMatchObject({ time_to_first_token: 0.1, time_to_generate: 0.4 });
    expect(m.usage({ name: "gpt-4o" }, 0, 0, 0)).toMatchObject({ prompt_price: "0.0", total_price: "0.0" });
  });

  it("unpriced models report '0.0' everywhere", () => {
    expect(models.usage({ provider: "openai", name: "gpt-4o-mini" }, 100, 20, 0.7)).toEqual({
      prompt_tokens: 100,
      prompt_unit_price: "0.0",
      prompt_price_unit: "0.0",
      prompt_price: "0.0",
      completion_tokens: 20,
      completion_unit_price: "0.0",
      completion_price_unit: "0.0",
      completion_price: "0.0",
      total_tokens: 120,
      total_price: "0.0",
      currency: "USD",
      latency: 0.7,
      time_to_first_token: null,
      time_to_generate: null,
    });
  });

  it("keeps unquoted prices as written and globs names", async () => {
    const m = withFile(mapped());
    const res = await m.embed({ provider: "openai", name: "text-embedding-3-small" }, ["one two three four"]);
    // 18 characters → 5 fake tokens; 5 × 0.00002 × 0.001 = 1E-7 exactly.
    expect(res.usage).toMatchObject({ tokens: 5, unit_price: "0.00002", price_unit: "0.001", total_price: "1E-7", currency: "USD" });
  });

  it("systemModel prefers system_model", () => {
    const m = withFile(mapped());
    expect(m.systemModel({ provider: "x", name: "app-model" })).toEqual({ provider: "openai", name: "gpt-4o-mini" });
    expect(models.systemModel({ provider: "x", name: "app-model" })).toEqual({ provider: "x", name: "app-model" });
  });

  it("rejects an invalid file with a readable message", () => {
    expect(() => parseModelsFile("models:\n  - match: { name: x }\n    pricing: { input: abc, unit: '0.001' }\n")).toThrow(
      /models\.0\.pricing\.input/,
    );
    expect(() => parseModelsFile("models: [")).toThrow(/MODELS_FILE/);
  });

  it("accepts JSON", () => {
    const f = parseModelsFile(JSON.stringify({ models: [{ match: { name: "a" }, pricing: { input: 0.5, unit: "0.001" } }] }));
    expect(f.models[0]!.pricing).toEqual({ input: "0.5", unit: "0.001", currency: "USD" });
  });
});

describe("moderation", () => {
  it("flags through the moderation endpoint with omni-moderation-latest", async () => {
    const flagged = await models.moderate(["hello", "this is forbidden"]);
    expect(flagged).toEqual({ flagged: true, categories: ["violence"] });
    const req = fake.lastRequest("moderation")!;
    expect(req.body).toEqual({ model: "omni-moderation-latest", input: ["hello", "this is forbidden"] });
    expect(await models.moderate(["all good"])).toEqual({ flagged: false });
  });

  it("chunks long texts at 2 000 characters", async () => {
    await models.moderate(["a".repeat(4500)]);
    expect(fake.lastRequest("moderation")!.body.input.map((s: string) => s.length)).toEqual([2000, 2000, 500]);
  });
});

describe("embeddings", () => {
  it("batches inputs and returns vectors in order", async () => {
    const texts = ["alpha", "beta gamma", "delta", "epsilon zeta", "eta"];
    const res = await models.embed({ provider: "openai", name: "text-embedding-3-small" }, texts, { batchSize: 2 });
    const reqs = fake.requestsOf("embeddings");
    expect(reqs.map((r) => r.body.input)).toEqual([["alpha", "beta gamma"], ["delta", "epsilon zeta"], ["eta"]]);
    expect(reqs[0]!.body.encoding_format).toBe("float");
    expect(res.dimension).toBe(1536);
    expect(res.vectors).toHaveLength(5);
    res.vectors.forEach((v, i) => expect(v).toEqual(fakeEmbedding(texts[i]!)));
    expect(res.usage.tokens).toBe(texts.reduce((n, t) => n + roughTokenCount(t), 0));
    expect(res.usage.total_price).toBe("0.0");
  });

  it("defaults to 32 inputs per request", async () => {
    await models.embed({ name: "text-embedding-3-small" }, Array.from({ length: 40 }, (_, i) => `t${i}`));
    expect(fake.requestsOf("embeddings").map((r) => r.body.input.length)).toEqual([32, 8]);
  });
});

describe("rerank", () => {
  it("POSTs {model, query, documents, top_n} and returns indices best first", async () => {
    const docs = ["cats are cute", "the weather in paris", "paris weather forecast today", "nothing here"];
    const query = "paris weather today";
    const res = await models.rerank({ provider: "jina", name: "jina-reranker-v2" }, query, docs, 3);
    const expected = docs
      .map((d, index) => ({ index, score: termOverlapScore(query, d) }))
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .slice(0, 3);
    expect(res).toEqual(expected);
    expect(res[0]!.index).toBe(2);
    const req = fake.lastRequest("rerank")!;
    expect(req.path).toBe("/v1/rerank");
    expect(req.body).toEqual({ model: "jina-reranker-v2", query, documents: docs, top_n: 3 });
    expect(req.headers.authorization).toBe("Bearer sk-test");
  });

  it("maps provider errors like the openai client's", async () => {
    fake.enqueue("rerank", { error: "invalid_api_key" });
    const err = await caught(models.rerank({ name: "r" }, "q", ["d"]));
    expect(err.toBody()).toEqual({ code: "completion_request_error", message: "Incorrect API key provided", status: 400 });
  });
});

describe("audio", () => {
  it("transcribes an upload", async () => {
    const text = await models.transcribe(null, { data: Buffer.from("RIFF fake wav"), filename: "a.wav", mimeType: "audio/wav" });
    expect(text).toBe("This is a fake transcription.");
    const form = fake.lastRequest("transcription")!.body;
    expect(form.fields.model).toBe("whisper-1");
    expect(form.files[0]).toMatchObject({ field: "file", filename: "a.wav", size: 13 });
  });

  it("synthesises speech as a buffer or a stream", async () => {
    const res = await models.speech(null, "Hello", "nova");
    expect(res.contentType).toBe("audio/mpeg");
    expect(Buffer.isBuffer(res.data)).toBe(true);
    expect((res.data as Buffer).subarray(-5).toString()).toBe("Hello");
    expect(fake.lastRequest("speech")!.body).toMatchObject({ model: "tts-1", input: "Hello", voice: "nova", response_format: "mp3" });

    const streamed = await models.speech({ name: "tts-1-hd" }, "Streamed", null, { stream: true });
    const chunks: Uint8Array[] = [];
    for await (const c of streamed.data as AsyncIterable<Uint8Array>) chunks.push(c);
    expect(Buffer.concat(chunks).subarray(-8).toString()).toBe("Streamed");
    expect(fake.lastRequest("speech")!.body.voice).toBe("alloy");
  });
});

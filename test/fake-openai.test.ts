/**
 * Tests for the fake model provider, driven through the real `openai` client so
 * that later tests can trust it to behave like the real API on the wire.
 */
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import {
  fakeEmbedding,
  roughTokenCount,
  startFakeOpenAI,
  type FakeOpenAI,
} from "./support/fake-openai.js";

let fake: FakeOpenAI;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI({
    apiKey: "sk-test",
    embeddingModels: { "text-embedding-3-large": 3072 },
    flaggedWords: ["dynamite"],
  });
  // No retries: a scripted error must surface, not be retried into a success.
  client = new OpenAI({ baseURL: fake.baseURL, apiKey: "sk-test", maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => fake.reset());

const userMessage = (content: string) => [{ role: "user" as const, content }];

/** Content deltas of a chat stream, collected into `into` (kept even if the stream fails). */
async function collectContent(stream: AsyncIterable<OpenAI.ChatCompletionChunk>, into: string[] = []) {
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta.content;
    if (content) into.push(content);
  }
  return into;
}

describe("chat completions", () => {
  it("streams the echo answer word by word, with usage in the last chunk", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello there world" },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });

    const contents: string[] = [];
    let finishReason: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) contents.push(choice.delta.content);
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }

    expect(contents).toEqual(["Echo: ", "hello ", "there ", "world"]);
    expect(finishReason).toBe("stop");
    expect(usage).toEqual({
      prompt_tokens: roughTokenCount("Be brief.\nhello there world"),
      completion_tokens: roughTokenCount("Echo: hello there world"),
      total_tokens: roughTokenCount("Be brief.\nhello there world") + roughTokenCount("Echo: hello there world"),
    });

    const recorded = fake.lastRequest("chat")!;
    expect(recorded.path).toBe("/v1/chat/completions");
    expect(recorded.headers.authorization).toBe("Bearer sk-test");
    expect(recorded.body.stream).toBe(true);
    expect(recorded.completed).toBe(true);
  });

  it("answers a blocking request with scripted text, chunks, finish reason and usage", async () => {
    fake.enqueue("chat", {
      text: "Scripted.",
      finishReason: "length",
      usage: { prompt_tokens: 11, completion_tokens: 7 },
    });

    const res = await client.chat.completions.create({ model: "gpt-4o", messages: userMessage("hi") });

    expect(res.choices[0]!.message.content).toBe("Scripted.");
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(res.usage).toEqual({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
    expect(res.model).toBe("gpt-4o");

    // The queue is consumed: the next request gets the default echo again.
    const next = await client.chat.completions.create({ model: "gpt-4o", messages: userMessage("again") });
    expect(next.choices[0]!.message.content).toBe("Echo: again");
  });

  it("splits streamed text into N chunks with a delay between them", async () => {
    fake.enqueue("/chat/completions", { text: "abcdefghij", chunks: 3, chunkDelayMs: 30 });
    const started = Date.now();
    const stream = await client.chat.completions.create({ model: "m", messages: userMessage("x"), stream: true });
    const contents = await collectContent(stream);

    expect(contents).toEqual(["abc", "def", "ghij"]);
    // role chunk + 3 content chunks + finish chunk = 4 delays of 30ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  it("streams tool calls as argument fragments that reassemble to the scripted JSON", async () => {
    const args = { city: "Paris", units: "celsius", days: [1, 2, 3] };
    fake.enqueue("chat", {
      toolCalls: [
        { name: "get_weather", arguments: args },
        { id: "call_custom", name: "get_time", arguments: { tz: "Europe/Paris" } },
      ],
    });

    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: userMessage("weather?"),
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
      stream: true,
    });

    const calls: Array<{ id?: string; name?: string; arguments: string; fragments: number }> = [];
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      for (const delta of choice?.delta.tool_calls ?? []) {
        const call = (calls[delta.index] ??= { arguments: "", fragments: 0 });
        if (delta.id) call.id = delta.id;
        if (delta.function?.name) call.name = delta.function.name;
        if (delta.function?.arguments) {
          call.arguments += delta.function.arguments;
          call.fragments++;
        }
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
    }

    expect(finishReason).toBe("tool_calls");
    expect(calls).toHaveLength(2);
    expect(calls[0]!.name).toBe("get_weather");
    expect(calls[0]!.id).toMatch(/^call_fake_/);
    expect(JSON.parse(calls[0]!.arguments)).toEqual(args);
    expect(calls[0]!.fragments).toBeGreaterThan(1);
    expect(calls[1]).toMatchObject({ id: "call_custom", name: "get_time" });
    expect(JSON.parse(calls[1]!.arguments)).toEqual({ tz: "Europe/Paris" });
  });

  it("returns tool calls in blocking mode too", async () => {
    fake.enqueue("chat", { toolCalls: [{ name: "lookup", arguments: { q: "x" } }] });
    const res = await client.chat.completions.create({ model: "m", messages: userMessage("?") });
    const message = res.choices[0]!.message;
    expect(message.content).toBeNull();
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    expect(message.tool_calls?.[0]).toMatchObject({
      type: "function",
      function: { name: "lookup", arguments: '{"q":"x"}' },
    });
  });

  it("uses a default handler that sees the request", async () => {
    fake.setDefault("chat", (req) => ({ text: `model=${req.body.model}` }));
    const res = await client.chat.completions.create({ model: "my-model", messages: userMessage("?") });
    expect(res.choices[0]!.message.content).toBe("model=my-model");
  });
});

describe("errors and aborts", () => {
  it("surfaces a scripted 429 as OpenAI.RateLimitError", async () => {
    fake.enqueue("chat", { error: "rate_limit" });
    const error = await client.chat.completions
      .create({ model: "m", messages: userMessage("hi") })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ status: 429, code: "rate_limit_exceeded" });
  });

  it("maps other scripted statuses to the matching client errors", async () => {
    fake.enqueue("chat", { error: "invalid_request" });
    fake.enqueue("chat", { error: { status: 500, message: "boom" } });
    const create = () => client.chat.completions.create({ model: "m", messages: userMessage("hi") });
    await expect(create()).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(create()).rejects.toMatchObject({ status: 500, message: expect.stringContaining("boom") });
  });

  it("rejects a wrong API key with 401 invalid_api_key", async () => {
    const wrong = new OpenAI({ baseURL: fake.baseURL, apiKey: "sk-wrong", maxRetries: 0 });
    const error = await wrong.models.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({ code: "invalid_api_key" });
  });

  it("lets the client's own retries consume queued errors", async () => {
    const retrying = new OpenAI({ baseURL: fake.baseURL, apiKey: "sk-test", maxRetries: 2 });
    fake.enqueue("chat", { error: "server_error" }, { times: 2 });
    const res = await retrying.chat.completions.create({ model: "m", messages: userMessage("third time") });
    expect(res.choices[0]!.message.content).toBe("Echo: third time");
    expect(fake.requestsOf("chat").map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it("cuts the stream mid-way when scripted with abortAfterChunks", async () => {
    fake.enqueue("chat", { text: "one two three four", abortAfterChunks: 2 });
    const stream = await client.chat.completions.create({ model: "m", messages: userMessage("x"), stream: true });
    const contents: string[] = [];
    await expect(collectContent(stream, contents)).rejects.toThrow();
    expect(contents).toEqual(["one ", "two "]);
    expect(fake.lastRequest()!.disconnectedByServer).toBe(true);
    expect(fake.lastRequest()!.aborted).toBe(false);
  });

  it("records that the client aborted a hanging stream", async () => {
    fake.enqueue("chat", { text: "one two three", hangAfterChunks: 1 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "m", messages: userMessage("x"), stream: true },
      { signal: controller.signal },
    );
    const contents: string[] = [];
    const consume = (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) contents.push(chunk.choices[0].delta.content);
        if (contents.length === 1) controller.abort(); // the "stop" button
      }
    })();
    await consume.catch(() => undefined); // the client may end quietly or throw on abort

    const recorded = await fake.waitForAbort();
    expect(contents).toEqual(["one "]);
    expect(recorded.aborted).toBe(true);
    expect(recorded.completed).toBe(false);
  });

  it("records that the client aborted a request that never got headers", async () => {
    fake.enqueue("embeddings", { hang: true });
    const controller = new AbortController();
    const pending = client.embeddings.create({ model: "e", input: "x" }, { signal: controller.signal });
    const recorded = await fake.waitForRequest("embeddings");
    expect(recorded.aborted).toBe(false);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await fake.waitForAbort(recorded);
    expect(recorded.aborted).toBe(true);
  });
});

describe("embeddings", () => {
  it("returns the same deterministic vector as float and as (default) base64", async () => {
    const asFloat = await client.embeddings.create({
      model: "text-embedding-3-small",
      input: "the quick brown fox",
      encoding_format: "float",
    });
    // Without encoding_format the client asks for base64 and decodes it itself.
    const asDefault = await client.embeddings.create({ model: "text-embedding-3-small", input: "the quick brown fox" });

    expect(fake.requestsOf("embeddings").map((r) => r.body.encoding_format)).toEqual(["float", "base64"]);
    const expected = fakeEmbedding("the quick brown fox", 1536);
    expect(asFloat.data[0]!.embedding).toHaveLength(1536);
    expect(asFloat.data[0]!.embedding).toEqual(expected);
    expect(asDefault.data[0]!.embedding).toEqual(expected);
    expect(Math.hypot(...expected)).toBeCloseTo(1, 5);
    expect(asFloat.usage.prompt_tokens).toBe(roughTokenCount("the quick brown fox"));
  });

  it("handles array input, per-model and per-request dimensions", async () => {
    const large = await client.embeddings.create({ model: "text-embedding-3-large", input: ["a cat", "a dog"] });
    expect(large.data.map((d) => d.index)).toEqual([0, 1]);
    expect(large.data[0]!.embedding).toHaveLength(3072);
    expect(large.data[1]!.embedding).toEqual(fakeEmbedding("a dog", 3072));

    const small = await client.embeddings.create({ model: "text-embedding-3-large", input: "a cat", dimensions: 8 });
    expect(small.data[0]!.embedding).toEqual(fakeEmbedding("a cat", 8));
  });

  it("makes texts that share words more similar", () => {
    const cosine = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
    const query = fakeEmbedding("how do cats sleep");
    expect(cosine(query, fakeEmbedding("cats sleep a lot"))).toBeGreaterThan(
      cosine(query, fakeEmbedding("stock market news")),
    );
  });
});

/** POST to a non-OpenAI endpoint (rerank) the way a plain HTTP provider client would. */
async function postJson(path: string, body: unknown) {
  const res = await fetch(`${fake.baseURL}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as any };
}

describe("rerank, moderation, audio, models", () => {
  it("reranks by term overlap with the query", async () => {
    const { status, json } = await postJson("/rerank", {
      model: "jina-reranker-v2",
      query: "red apple pie",
      documents: ["green pear", "apple pie recipe", { text: "red apple pie with cream" }, "an apple"],
      top_n: 3,
    });
    expect(status).toBe(200);
    expect(json.results.map((r: { index: number }) => r.index)).toEqual([2, 1, 3]);
    expect(json.results[0]).toEqual({ index: 2, relevance_score: 1, document: { text: "red apple pie with cream" } });
    expect(json.results[1].relevance_score).toBeCloseTo(2 / 3);
  });

  it("flags moderation inputs containing configured words", async () => {
    const res = await client.moderations.create({ input: ["hello friend", "where to buy Dynamite?"] });
    expect(res.results.map((r) => r.flagged)).toEqual([false, true]);
    expect(res.results[1]!.categories.violence).toBe(true);
  });

  it("transcribes a multipart upload and synthesises speech", async () => {
    const audioBytes = Buffer.from("not really audio");
    fake.enqueue("transcription", { text: "hello from audio" });
    const transcription = await client.audio.transcriptions.create({
      model: "whisper-1",
      file: await toFile(audioBytes, "clip.mp3", { type: "audio/mpeg" }),
    });
    expect(transcription.text).toBe("hello from audio");
    expect(fake.lastRequest("transcription")!.body).toMatchObject({
      fields: { model: "whisper-1" },
      files: [{ field: "file", filename: "clip.mp3", contentType: "audio/mpeg", size: audioBytes.length }],
    });

    const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "Say this" });
    expect(speech.headers.get("content-type")).toBe("audio/mpeg");
    const bytes = Buffer.from(await speech.arrayBuffer());
    expect(bytes.subarray(0, 3).toString()).toBe("ID3");
    expect(bytes.toString("latin1")).toContain("Say this");
  });

  it("lists and retrieves models", async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toContain("gpt-4o-mini");
    expect((await client.models.retrieve("whisper-1")).id).toBe("whisper-1");
    await expect(client.models.retrieve("nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("supports legacy completions", async () => {
    const res = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "ping" });
    expect(res.choices[0]!.text).toBe("Echo: ping");
    const stream = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "a b", stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe("Echo: a b");
  });
});

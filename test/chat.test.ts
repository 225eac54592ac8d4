// POST /v1/chat-messages and /v1/completion-messages end to end: route → Postgres rows → BullMQ job
// → worker → fake model → Redis Stream → SSE/blocking body (apps spec §5, §6; client-compat D, E).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, completionAppYaml } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { postSse } from "./support/sse.js";

let fake: FakeOpenAI;
let t: TestApp;
let base: string;
let a: Awaited<ReturnType<typeof appWithKey>>;
let datasetKey: string;

const completionYaml = completionAppYaml();

beforeAll(async () => {
  fake = await startFakeOpenAI();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  base = await t.app.listen({ port: 0, host: "127.0.0.1" });
  a = await appWithKey(t);
  datasetKey = await createDatasetKey(t, a.tenantId);
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const chat = (body: Record<string, unknown>, headers = a.auth) =>
  t.app.inject({ method: "POST", url: "/v1/chat-messages", headers, payload: { inputs: { company: "Acme" }, user: "u1", auto_generate_name: false, ...body } });

describe("auth and user", () => {
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "POST", url: "/v1/chat-messages", payload: { query: "hi", inputs: {}, user: "u" } },
    { method: "POST", url: "/v1/completion-messages", payload: { inputs: {}, user: "u" } },
    { method: "POST", url: "/v1/chat-messages/abc/stop", payload: { user: "u" } },
  ]);

  it("user is required in the body", async () => {
    for (const user of [undefined, "", null]) {
      const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: a.auth, payload: { query: "hi", inputs: {}, user } });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: "invalid_param", message: "Arg user must be provided.", status: 400 });
    }
  });

  it("a non-JSON body is 415", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: { ...a.auth, "content-type": "text/plain" }, payload: "hello" });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe("unsupported_media_type");
  });
});

describe("POST /v1/chat-messages (blocking)", () => {
  it("returns Dify's blocking body and saves the message", async () => {
    fake.enqueue("chat", { text: "Hello there", usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const res = await chat({ query: "Hi!" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["event", "task_id", "id", "message_id", "conversation_id", "mode", "answer", "metadata", "created_at"]);
    expect(body).toMatchObject({ event: "message", mode: "chat", answer: "Hello there" });
    expect(body.id).toBe(body.message_id);
    expect(body.metadata.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, currency: "USD" });
    expect(typeof body.metadata.usage.total_price).toBe("string");
    expect(typeof body.metadata.usage.latency).toBe("number");
    expect(body.metadata.retriever_resources).toEqual([]);
    expect(body.metadata.annotation_reply).toBeNull();
    expect(res.body.endsWith("\n")).toBe(false);

    const row = await t.prisma.message.findUnique({ where: { id: body.message_id } });
    expect(row).toMatchObject({ answer: "Hello there", message_tokens: 12, answer_tokens: 3, conversation_id: body.conversation_id });
    const conv = await t.prisma.conversation.findUnique({ where: { id: body.conversation_id } });
    expect(conv).toMatchObject({ inputs: { company: "Acme", tone: "casual" }, introduction: "Hello! How can I help?" });
  });

  it("sends the model the system prompt, the history oldest first, then the query", async () => {
    const first = await chat({ query: "First question" });
    const conversation_id = first.json().conversation_id;
    await chat({ query: "Second question", conversation_id });
    fake.reset();
    await chat({ query: "Third question", conversation_id, inputs: { company: "Ignored Inc" } });
    const req = fake.lastRequest("chat")!;
    const msgs = req.body.messages as Array<{ role: string; content: string }>;
    expect(msgs[0]!.role).toBe("system");
    expect(msgs[0]!.content).toContain("You are a helpful assistant for Acme.");
    const turns = msgs.slice(1).map((m) => [m.role, m.content]);
    expect(turns).toEqual([
      ["user", "First question"],
      ["assistant", "Echo: First question"],
      ["user", "Second question"],
      ["assistant", "Echo: Second question"],
      ["user", "Third question"],
    ]);
    expect(req.body.stream).toBe(true);
    expect(req.body.stream_options).toEqual({ include_usage: true });
  });

  it("input validation messages (apps spec §5.5)", async () => {
    let res = await chat({ query: "x", inputs: {} });
    expect(res.json()).toEqual({ code: "invalid_param", message: "company is required in input form", status: 400 });
    res = await chat({ query: "x", inputs: { company: "x".repeat(49) } });
    expect(res.json()).toEqual({ code: "invalid_param", message: "company in input form must be less than 48 characters", status: 400 });
    res = await chat({ query: "x", inputs: { company: "A", tone: "angry" } });
    expect(res.json().message).toBe("tone in input form must be one of the following: ['formal', 'casual']");
  });

  it("query rules, conversation rules, response_mode", async () => {
    expect((await chat({ query: "" })).json()).toEqual({ code: "invalid_param", message: "query is required", status: 400 });
    expect((await chat({ query: 5 })).json().message).toBe("query must be a string");
    expect((await chat({ query: undefined })).json().code).toBe("invalid_param");
    expect((await chat({ query: "x", response_mode: "sometimes" })).json().code).toBe("invalid_param");
    expect((await chat({ query: "x", conversation_id: "not-a-uuid" })).json().code).toBe("invalid_param");
    const missing = await chat({ query: "x", conversation_id: "00000000-0000-4000-8000-000000000000" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
  });

  it("tolerates conversation_id \"\" and null, files null, unknown keys", async () => {
    for (const extra of [{ conversation_id: "" }, { conversation_id: null, files: null }, { retriever_from: "api", whatever: 1 }]) {
      const res = await chat({ query: "tolerant", ...extra });
      expect(res.statusCode, JSON.stringify(extra)).toBe(200);
    }
  });

  it("another user's conversation is reported as missing", async () => {
    const mine = await chat({ query: "mine", user: "owner" });
    const res = await chat({ query: "theirs", user: "intruder", conversation_id: mine.json().conversation_id });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toBe("Conversation Not Exists.");
  });

  it("model errors map to Dify's codes", async () => {
    fake.enqueue("chat", { error: "invalid_api_key" }, { times: 3 });
    const res = await chat({ query: "fail please" });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("completion_request_error");
  });

  it("wrong mode → not_chat_app, after the end user is created", async () => {
    const w = await appWithKey(t, completionYaml);
    const res = await chat({ query: "hi", user: "fresh-user" }, w.auth);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "not_chat_app", message: "Please check if your app mode matches the right API route.", status: 400 });
    expect(await t.prisma.endUser.findFirst({ where: { app_id: w.appId, session_id: "fresh-user" } })).not.toBeNull();
  });
});

describe("POST /v1/chat-messages (streaming)", () => {
  it("writes Dify's SSE bytes: one frame per write, prefix order, message_end last", async () => {
    fake.enqueue("chat", { text: "Bonjour le monde", chunks: 3, chunkDelayMs: 5, usage: { prompt_tokens: 7, completion_tokens: 4 } });
    const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "Salut", inputs: { company: "Acme" }, user: "sse", response_mode: "streaming", auto_generate_name: false });
    expect(cap.status).toBe(200);
    expect(cap.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(cap.headers["content-length"]).toBeUndefined();
    expect(cap.headers["content-encoding"]).toBeUndefined();
    // Every data frame is complete within one chunk (no frame split across writes).
    for (const chunk of cap.chunks) expect(chunk).toMatch(/^(data: \{.*\}\n\n|event: ping\n\n)+$/s);
    const names = cap.events.map((e) => e.event);
    expect(names.at(-1)).toBe("message_end");
    expect(names.slice(0, -1).every((n) => n === "message")).toBe(true);
    const msg = cap.events[0]!;
    expect(Object.keys(msg)).toEqual(["event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer", "from_variable_selector"]);
    expect(cap.events.slice(0, -1).map((e) => e.answer).join("")).toBe("Bonjour le monde");
    const end = cap.events.at(-1)!;
    expect(Object.keys(end)).toEqual(["event", "conversation_id", "message_id", "created_at", "task_id", "id", "metadata", "files"]);
    expect(end.metadata).toMatchObject({ usage: { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 }, retriever_resources: [] });
    for (const e of cap.events) {
      expect(e.conversation_id).toBe(msg.conversation_id);
      expect(e.message_id).toBe(msg.message_id);
      expect(e.task_id).toBe(msg.task_id);
    }
    // The terminal frame is published after commit: the message is readable right away.
    const row = await t.prisma.message.findUnique({ where: { id: String(msg.message_id) } });
    expect(row?.answer).toBe("Bonjour le monde");
  });

  it("sends `event: ping` keep-alives on long runs", async () => {
    const pinging = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
    try {
      const b = await appWithKey(pinging);
      const url = await pinging.app.listen({ port: 0, host: "127.0.0.1" });
      fake.enqueue("chat", { text: "slow answer", chunks: 2, firstByteDelayMs: 10_500 });
      const cap = await postSse(url, "/v1/chat-messages", b.auth, { query: "slow", inputs: { company: "A" }, user: "p", response_mode: "streaming", auto_generate_name: false });
      expect(cap.raw).toContain("event: ping\n\n");
      expect(cap.raw).not.toMatch(/event: ping\n(?!\n)/);
      expect(cap.events.at(-1)!.event).toBe("message_end");
    } finally {
      await pinging.close();
    }
  }, 30_000);

  it("an error after the stream started is an in-stream error frame", async () => {
    fake.enqueue("chat", { text: "partial answer here", abortAfterChunks: 1 });
    const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "break", inputs: { company: "A" }, user: "err", response_mode: "streaming", auto_generate_name: false });
    expect(cap.status).toBe(200);
    const last = cap.events.at(-1)!;
    expect(last.event).toBe("error");
    expect(Object.keys(last)).toEqual(["event", "conversation_id", "message_id", "created_at", "code", "status", "message"]);
    const row = await t.prisma.message.findUnique({ where: { id: String(last.message_id) } });
    expect(row?.status).toBe("error");
  });
});

describe("stop and disconnect", () => {
  it("stop mid-stream: the model call is aborted, the partial answer saved, message_end sent", async () => {
    fake.enqueue("chat", { text: "one two three four five six", hangAfterChunks: 2 });
    let stopped = false;
    const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "long", inputs: { company: "A" }, user: "stopper", response_mode: "streaming", auto_generate_name: false }, {
      onEvent: (e) => {
        if (!stopped && e.event === "message") {
          stopped = true;
          void t.app.inject({ method: "POST", url: `/v1/chat-messages/${String(e.task_id)}/stop`, headers: a.auth, payload: { user: "stopper" } }).then((r) => {
            expect(r.json()).toEqual({ result: "success" });
          });
        }
      },
    });
    const end = cap.events.at(-1)!;
    expect(end.event).toBe("message_end");
    await fake.waitForAbort(fake.requestsOf("chat")[0]!);
    const row = await t.prisma.message.findUnique({ where: { id: String(end.message_id) } });
    expect(row?.answer).toBe("one two ");
    expect(row?.status).toBe("normal");
  });

  it("a stop from another end user does nothing (but answers success)", async () => {
    fake.enqueue("chat", { text: "alpha beta gamma", chunks: 3, chunkDelayMs: 150 });
    const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "q", inputs: { company: "A" }, user: "victim", response_mode: "streaming", auto_generate_name: false }, {
      onEvent: (e) => {
        if (e.event === "message" && e.answer === "alpha ") {
          void t.app.inject({ method: "POST", url: `/v1/chat-messages/${String(e.task_id)}/stop`, headers: a.auth, payload: { user: "attacker" } });
        }
      },
    });
    expect(cap.events.filter((e) => e.event === "message").map((e) => e.answer).join("")).toBe("alpha beta gamma");
  });

  it("stop for an unknown task answers success", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages/whatever/stop", headers: a.auth, payload: { user: "x" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: "success" });
  });

  it("a client that disconnects does not stop the run; the message is saved", async () => {
    fake.enqueue("chat", { text: "keep going after the client left", chunks: 6, chunkDelayMs: 40 });
    const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "bye", inputs: { company: "A" }, user: "leaver", response_mode: "streaming", auto_generate_name: false }, { abortAfterEvents: 1 });
    const id = String(cap.events[0]!.message_id);
    let row = await t.prisma.message.findUnique({ where: { id } });
    for (let i = 0; i < 100 && row?.message_metadata === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
      row = await t.prisma.message.findUnique({ where: { id } });
    }
    expect(row?.answer).toBe("keep going after the client left");
  });

  it("a stop sent to a second server process stops the run on the first", async () => {
    const second = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test", QUEUE_PREFIX: t.config.QUEUE_PREFIX });
    try {
      fake.enqueue("chat", { text: "never ending story", hangAfterChunks: 1 });
      const cap = await postSse(base, "/v1/chat-messages", a.auth, { query: "two", inputs: { company: "A" }, user: "multi", response_mode: "streaming", auto_generate_name: false }, {
        onEvent: (e) => {
          if (e.event === "message") void second.app.inject({ method: "POST", url: `/v1/chat-messages/${String(e.task_id)}/stop`, headers: a.auth, payload: { user: "multi" } });
        },
      });
      expect(cap.events.at(-1)!.event).toBe("message_end");
      await fake.waitForAbort(fake.requestsOf("chat")[0]!);
    } finally {
      await second.close();
    }
  });
});

describe("POST /v1/completion-messages", () => {
  let c: Awaited<ReturnType<typeof appWithKey>>;
  beforeAll(async () => {
    c = await appWithKey(t, completionYaml);
  });

  it("blocking body has no conversation_id", async () => {
    fake.enqueue("completion", { text: "unused" });
    fake.enqueue("chat", { text: "An essay." });
    const res = await t.app.inject({ method: "POST", url: "/v1/completion-messages", headers: c.auth, payload: { inputs: { topic: "cats" }, user: "w", response_mode: "blocking" } });
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json())).toEqual(["event", "task_id", "id", "message_id", "mode", "answer", "metadata", "created_at"]);
    expect(res.json()).toMatchObject({ mode: "completion", answer: "An essay." });
    const sent = fake.lastRequest("chat")!.body.messages as Array<{ role: string; content: string }>;
    expect(JSON.stringify(sent)).toContain("Write about cats.");
  });

  it("streams with the completion prefix (event, message_id, created_at)", async () => {
    const cap = await postSse(base, "/v1/completion-messages", c.auth, { inputs: { topic: "dogs" }, user: "w", response_mode: "streaming", auto_generate_name: false });
    expect(Object.keys(cap.events[0]!).slice(0, 4)).toEqual(["event", "message_id", "created_at", "task_id"]);
    expect(cap.events.at(-1)!.event).toBe("message_end");
  });

  it("wrong mode → app_unavailable; chat-app stop route on a completion app → not_chat_app", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/completion-messages", headers: a.auth, payload: { inputs: {}, user: "w" } });
    expect(res.json()).toEqual({ code: "app_unavailable", message: "App unavailable, please check your app configurations.", status: 400 });
    const stop = await t.app.inject({ method: "POST", url: "/v1/chat-messages/t/stop", headers: c.auth, payload: { user: "w" } });
    expect(stop.json().code).toBe("not_chat_app");
    const ok = await t.app.inject({ method: "POST", url: "/v1/completion-messages/t/stop", headers: c.auth, payload: { user: "w" } });
    expect(ok.json()).toEqual({ result: "success" });
  });

  it("inputs are required", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/completion-messages", headers: c.auth, payload: { user: "w" } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("invalid_param");
  });
});

describe("titles and suggested questions (LLM-made)", () => {
  it("auto_generate_name titles a new conversation after the answer", async () => {
    fake.enqueue("chat", { text: "Hi." });
    fake.enqueue("chat", { text: '{"Language Type": "English", "Your Reasoning": "greeting", "Your Output": "Friendly greeting"}' });
    const res = await chat({ query: "Hello, who are you?", user: "namer", auto_generate_name: true });
    const id = res.json().conversation_id;
    let name = "";
    for (let i = 0; i < 100 && name !== "Friendly greeting"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      name = (await t.prisma.conversation.findUnique({ where: { id } }))!.name;
    }
    expect(name).toBe("Friendly greeting");
  });

  it("POST /conversations/{id}/name with auto_generate uses the model", async () => {
    const res = await chat({ query: "Tell me about rivers", user: "renamer" });
    const id = res.json().conversation_id;
    fake.enqueue("chat", { text: '{"Your Output": "Rivers"}' });
    const renamed = await t.app.inject({ method: "POST", url: `/v1/conversations/${id}/name`, headers: a.auth, payload: { auto_generate: true, user: "renamer" } });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().name).toBe("Rivers");
  });

  it("GET /messages/{id}/suggested returns the model's questions", async () => {
    const res = await chat({ query: "What is pgvector?", user: "curious" });
    fake.enqueue("chat", { text: '["How do I install it?", "Which index types exist?", "Is it fast?"]' });
    const s = await t.app.inject({ method: "GET", url: `/v1/messages/${res.json().message_id}/suggested?user=curious`, headers: a.auth });
    expect(s.statusCode).toBe(200);
    expect(s.json()).toEqual({ result: "success", data: ["How do I install it?", "Which index types exist?", "Is it fast?"] });
    const prompt = JSON.stringify(fake.lastRequest("chat")!.body.messages);
    expect(prompt).toContain("What is pgvector?");
  });
});

describe("concurrency limit (apps spec §3.5)", () => {
  it("429 too_many_requests with Retry-After while the app is at its limit; the slot frees when the run ends", async () => {
    const b = await appWithKey(t);
    await t.prisma.app.update({ where: { id: b.appId }, data: { max_active_requests: 1 } });
    fake.enqueue("chat", { text: "slow one two three", chunks: 4, chunkDelayMs: 150 });
    const first = postSse(base, "/v1/chat-messages", b.auth, { query: "first", inputs: { company: "A" }, user: "lim", response_mode: "streaming", auto_generate_name: false });
    await fake.waitForRequest("chat");
    const second = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: b.auth, payload: { query: "second", inputs: { company: "A" }, user: "lim" } });
    expect(second.statusCode).toBe(429);
    expect(second.json()).toEqual({
      code: "too_many_requests",
      message: `Too many requests. Please try again later. The current maximum concurrent requests allowed for ${b.appId} is 1.`,
      status: 429,
    });
    expect(second.headers["retry-after"]).toBe("1");
    expect((await first).events.at(-1)!.event).toBe("message_end");
    const third = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: b.auth, payload: { query: "third", inputs: { company: "A" }, user: "lim" } });
    expect(third.statusCode).toBe(200);
  });
});

// GET /v1/messages (apps spec §8.2, §7.3) and GET /v1/messages/{id}/suggested (§8.8).
// Rows are written directly with Prisma; the generation runtime is not involved.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prisma } from "../src/generated/prisma/client.js";
import { pyDecimal } from "../src/modules/messages/serialize.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, chatAppYaml, createDatasetKey, completionAppYaml, minimalWorkflowYaml } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

type AppKey = Awaited<ReturnType<typeof appWithKey>>;

const completionYaml = completionAppYaml({ suggestions: true });

const workflowYaml = minimalWorkflowYaml;

const advancedChatYaml = (enabled: boolean) => `app:
  name: Chatflow
  mode: advanced-chat
kind: app
version: 0.3.1
workflow:
  features:
    suggested_questions_after_answer:
      enabled: ${enabled}
  environment_variables: []
  conversation_variables: []
  graph:
    nodes:
      - id: start
        data: { type: start, title: Start, variables: [] }
      - id: answer
        data: { type: answer, title: Answer, answer: "hi" }
    edges:
      - { id: e1, source: start, target: answer, sourceHandle: source, targetHandle: target }
`;

const disabledChatYaml = chatAppYaml("No suggestions").replace(
  "suggested_questions_after_answer:\n    enabled: true",
  "suggested_questions_after_answer:\n    enabled: false",
);

const NOT_FOUND_TEXT =
  "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";
const MESSAGE_KEYS = [
  "id", "conversation_id", "parent_message_id", "inputs", "query", "answer", "feedback", "retriever_resources", "created_at",
  "agent_thoughts", "message_files", "message_tokens", "answer_tokens", "provider_response_latency", "total_price", "currency",
  "status", "error", "extra_contents", "total_tokens",
];
const CITATION_KEYS = [
  "id", "message_id", "position", "dataset_id", "dataset_name", "document_id", "document_name", "data_source_type", "segment_id",
  "score", "hit_count", "word_count", "segment_position", "index_node_hash", "content", "summary", "created_at",
];
const NOT_CHAT = { code: "not_chat_app", message: "Please check if your app mode matches the right API route.", status: 400 };

let t: TestApp;
let a: AppKey;
let completion: AppKey;
let workflow: AppKey;
let datasetKey: string;

beforeAll(async () => {
  t = await buildTestApp();
  a = await appWithKey(t);
  completion = await appWithKey(t, completionYaml);
  workflow = await appWithKey(t, workflowYaml);
  datasetKey = await createDatasetKey(t, a.tenantId);
});
afterAll(async () => t?.close());

// ---- fixtures written straight to the database

const uid = () => `u-${randomUUID().slice(0, 8)}`;
const at = (sec: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + sec * 1000);
const unix = (d: Date) => Math.floor(d.getTime() / 1000);

async function endUser(app: AppKey, user: string): Promise<string> {
  return (await t.app.services.endUsers.getOrCreate(app.tenantId, app.appId, user)).id;
}

async function conversation(app: AppKey, endUserId: string, over: Record<string, unknown> = {}) {
  return t.prisma.conversation.create({
    data: { tenant_id: app.tenantId, app_id: app.appId, mode: "chat", name: "New conversation", inputs: {}, from_source: "api", from_end_user_id: endUserId, ...over },
  });
}

async function message(app: AppKey, conversationId: string | null, endUserId: string, over: Record<string, unknown> = {}) {
  return t.prisma.message.create({
    data: { tenant_id: app.tenantId, app_id: app.appId, conversation_id: conversationId, from_end_user_id: endUserId, query: "hi", answer: "hello", ...over },
  });
}

/** A user with a conversation of `n` messages, created one second apart (oldest first). */
async function thread(app: AppKey, n: number) {
  const user = uid();
  const eu = await endUser(app, user);
  const c = await conversation(app, eu);
  const msgs = [];
  for (let k = 0; k < n; k++) msgs.push(await message(app, c.id, eu, { query: `q${k}`, created_at: at(k) }));
  return { user, eu, c, msgs };
}

const get = (url: string, app: AppKey = a) => t.app.inject({ method: "GET", url, headers: app.auth });

// ---------------------------------------------------------------------------------------------

describe("pyDecimal (Python str(Decimal) of NUMERIC(10,7))", () => {
  it("keeps the scale and reproduces the 0E-7 quirk", () => {
    expect(pyDecimal(new Prisma.Decimal("0"))).toBe("0E-7");
    expect(pyDecimal(new Prisma.Decimal("0.001033"))).toBe("0.0010330");
    expect(pyDecimal(new Prisma.Decimal("0.0000012"))).toBe("0.0000012");
    expect(pyDecimal(new Prisma.Decimal("0.0000001"))).toBe("1E-7");
    expect(pyDecimal(new Prisma.Decimal("12.5"))).toBe("12.5000000");
    expect(pyDecimal("0.1", 1)).toBe("0.1");
    expect(pyDecimal(0, 1)).toBe("0.0");
  });
});

describe("auth", () => {
  const id = "00000000-0000-4000-8000-000000000000";
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "GET", url: `/v1/messages?conversation_id=${id}` },
    { method: "GET", url: `/v1/messages/${id}/suggested?user=u` },
  ]);

  it("non-UUID message id → generic 404 before auth", async () => {
    for (const url of ["/v1/messages/abc/suggested?user=u", `/v1/messages/${randomUUID()}x/suggested?user=u`]) {
      const res = await t.app.inject({ method: "GET", url });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: NOT_FOUND_TEXT, status: 404 });
    }
  });
});

describe("GET /v1/messages", () => {
  it("message object in the newest key order, with files, citations, thoughts and the caller's feedback", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const c = await conversation(a, eu);
    const upload = await t.prisma.uploadFile.create({
      data: { tenant_id: a.tenantId, app_id: a.appId, key: "upload_files/x/photo.png", name: "photo.png", size: 123, extension: "png", mime_type: "image/png", created_by: eu },
    });
    const citedId = randomUUID();
    const m = await message(a, c.id, eu, {
      inputs: { company: "Acme" },
      query: "Show me",
      answer: `Here: ![img](http://127.0.0.1:5001/files/${upload.id}/file-preview?timestamp=1&nonce=abc&sign=old) done`,
      message_tokens: 10,
      answer_tokens: 5,
      provider_response_latency: 1.25,
      total_price: new Prisma.Decimal("0.001033"),
      currency: "USD",
      created_at: at(5),
      message_metadata: {
        usage: { prompt_tokens: 10 },
        retriever_resources: [
          { position: 1, dataset_id: "d1", dataset_name: "Docs", document_id: "doc1", document_name: "a.md", data_source_type: "upload_file", segment_id: "s1", retriever_from: "dev", score: 0.9, hit_count: 1, word_count: 10, segment_position: 2, index_node_hash: "h", content: "c", page: null },
          { id: citedId, message_id: "m-1", position: 2, created_at: 1700000000, summary: "sum", content: "d" },
        ],
      },
    });
    const local = await t.prisma.messageFile.create({ data: { message_id: m.id, type: "image", transfer_method: "local_file", upload_file_id: upload.id, belongs_to: "user", created_by: eu, created_at: at(1) } });
    const remote = await t.prisma.messageFile.create({ data: { message_id: m.id, type: "image", transfer_method: "remote_url", url: "https://example.com/img/cat.jpg?x=1", belongs_to: "assistant", created_by: eu, created_at: at(2) } });
    const th2 = await t.prisma.messageAgentThought.create({ data: { message_id: m.id, position: 2, thought: "done", tool: "", tool_input: "", observation: "", message_file_ids: [], created_at: at(4) } });
    const th1 = await t.prisma.messageAgentThought.create({ data: { message_id: m.id, position: 1, thought: "search", tool: "web", tool_labels: { web: { en_US: "Web" } }, tool_input: '{"web": {"q": "x"}}', observation: "ok", message_file_ids: [local.id], created_at: at(3) } });
    // The caller's own feedback shows; an admin's does not.
    await t.prisma.messageFeedback.create({ data: { tenant_id: a.tenantId, app_id: a.appId, conversation_id: c.id, message_id: m.id, rating: "dislike", from_source: "admin" } });
    await t.prisma.messageFeedback.create({ data: { tenant_id: a.tenantId, app_id: a.appId, conversation_id: c.id, message_id: m.id, rating: "like", from_source: "user", from_end_user_id: eu } });

    const res = await get(`/v1/messages?conversation_id=${c.id}&user=${user}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["limit", "has_more", "data"]);
    expect(body).toMatchObject({ limit: 20, has_more: false });
    const item = body.data[0];
    expect(Object.keys(item)).toEqual(MESSAGE_KEYS);
    expect(item).toMatchObject({
      id: m.id, conversation_id: c.id, parent_message_id: null, inputs: { company: "Acme" }, query: "Show me",
      feedback: { rating: "like" }, created_at: unix(at(5)),
      message_tokens: 10, answer_tokens: 5, provider_response_latency: 1.25, total_price: "0.0010330", currency: "USD",
      status: "normal", error: null, extra_contents: [], total_tokens: 15,
    });
    // The answer's file link is re-signed on every read.
    expect(item.answer).not.toContain("sign=old");
    const link = /\((http:\/\/127\.0\.0\.1:5001\/files\/([0-9a-f-]+)\/file-preview\?[^)]*)\)/.exec(item.answer)!;
    expect(link[2]).toBe(upload.id);
    const q = Object.fromEntries(new URL(link[1]!).searchParams);
    expect(t.app.services.files.verifySignature(upload.id, q)).toBe(true);
    expect(item.answer.startsWith("Here: ![img](")).toBe(true);
    expect(item.answer.endsWith(") done")).toBe(true);

    // Citations re-shaped; missing id/message_id get fresh UUIDs.
    expect(item.retriever_resources).toHaveLength(2);
    for (const r of item.retriever_resources) expect(Object.keys(r)).toEqual(CITATION_KEYS);
    expect(item.retriever_resources[0]).toMatchObject({
      position: 1, dataset_id: "d1", dataset_name: "Docs", document_id: "doc1", document_name: "a.md", data_source_type: "upload_file",
      segment_id: "s1", score: 0.9, hit_count: 1, word_count: 10, segment_position: 2, index_node_hash: "h", content: "c", summary: null, created_at: null,
    });
    expect(item.retriever_resources[0].id).toMatch(/^[0-9a-f-]{36}$/);
    expect(item.retriever_resources[0].message_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(item.retriever_resources[1]).toMatchObject({ id: citedId, message_id: "m-1", position: 2, summary: "sum", created_at: 1700000000, dataset_id: null });

    // Agent thoughts by position.
    expect(item.agent_thoughts).toEqual([
      { id: th1.id, chain_id: null, message_id: m.id, position: 1, thought: "search", tool: "web", tool_labels: { web: { en_US: "Web" } }, tool_input: '{"web": {"q": "x"}}', created_at: unix(at(3)), observation: "ok", files: [local.id] },
      { id: th2.id, chain_id: null, message_id: m.id, position: 2, thought: "done", tool: "", tool_labels: {}, tool_input: "", created_at: unix(at(4)), observation: "", files: [] },
    ]);

    // Files with signed URLs for local files.
    expect(item.message_files).toHaveLength(2);
    const [f1, f2] = item.message_files;
    expect(Object.keys(f1)).toEqual(["id", "filename", "type", "url", "mime_type", "size", "transfer_method", "belongs_to", "upload_file_id"]);
    expect(f1).toMatchObject({ id: local.id, filename: "photo.png", type: "image", mime_type: "image/png", size: 123, transfer_method: "local_file", belongs_to: "user", upload_file_id: upload.id });
    expect(f1.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:5001/files/${upload.id}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]+&sign=`));
    expect(f2).toEqual({ id: remote.id, filename: "cat.jpg", type: "image", url: "https://example.com/img/cat.jpg?x=1", mime_type: "image/jpeg", size: -1, transfer_method: "remote_url", belongs_to: "assistant", upload_file_id: remote.id });
  });

  it("unpriced messages read '0E-7'; error status and text pass through", async () => {
    const { user, c } = await thread(a, 0);
    const eu = await endUser(a, user);
    await message(a, c.id, eu, { status: "error", error: "Model failed", answer: "", created_at: at(1) });
    await message(a, c.id, eu, { status: "running", created_at: at(2) });
    const data = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}`)).json().data;
    expect(data[0]).toMatchObject({ total_price: "0E-7", status: "error", error: "Model failed", feedback: null, retriever_resources: [], agent_thoughts: [], message_files: [], total_tokens: 0 });
    expect(data[1].status).toBe("normal");
  });

  it("newest page in ascending order; first_id is exclusive; has_more = older messages exist", async () => {
    const { user, c, msgs } = await thread(a, 5);
    const ids = (d: Array<{ id: string }>) => d.map((m) => m.id);
    let body = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}&limit=2`)).json();
    expect(body).toMatchObject({ limit: 2, has_more: true });
    expect(ids(body.data)).toEqual([msgs[3]!.id, msgs[4]!.id]);
    body = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}&limit=2&first_id=${body.data[0].id}`)).json();
    expect(ids(body.data)).toEqual([msgs[1]!.id, msgs[2]!.id]);
    expect(body.has_more).toBe(true);
    body = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}&limit=2&first_id=${msgs[1]!.id}`)).json();
    expect(ids(body.data)).toEqual([msgs[0]!.id]);
    expect(body.has_more).toBe(false);
    body = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}&limit=5`)).json();
    expect(body.has_more).toBe(false);
    expect(ids(body.data)).toEqual(msgs.map((m) => m.id));
    body = (await get(`/v1/messages?conversation_id=${c.id}&user=${user}&first_id=${msgs[0]!.id}`)).json();
    expect(body).toEqual({ limit: 20, has_more: false, data: [] });
    // Empty first_id = no cursor.
    expect((await get(`/v1/messages?conversation_id=${c.id}&user=${user}&first_id=`)).json().data).toHaveLength(5);
  });

  it("first_id not in the conversation → 404 First Message Not Exists.", async () => {
    const { user, c } = await thread(a, 2);
    const other = await thread(a, 1);
    const sameUserOtherConv = await message(a, (await conversation(a, await endUser(a, user))).id, await endUser(a, user));
    for (const id of [randomUUID(), other.msgs[0]!.id, sameUserOtherConv.id]) {
      const res = await get(`/v1/messages?conversation_id=${c.id}&user=${user}&first_id=${id}`);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "First Message Not Exists.", status: 404 });
    }
  });

  it("conversation not visible → 404 Conversation Not Exists.", async () => {
    const { user, c } = await thread(a, 1);
    const deleted = await conversation(a, await endUser(a, user), { is_deleted: true });
    const otherApp = await appWithKey(t);
    for (const [url, app] of [
      [`/v1/messages?conversation_id=${c.id}&user=${uid()}`, a],
      [`/v1/messages?conversation_id=${c.id}`, a],
      [`/v1/messages?conversation_id=${deleted.id}&user=${user}`, a],
      [`/v1/messages?conversation_id=${randomUUID()}&user=${user}`, a],
      [`/v1/messages?conversation_id=${c.id}&user=${user}`, otherApp],
    ] as const) {
      const res = await get(url, app);
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
    }
  });

  it("empty conversation_id → empty page; missing or invalid → 400 invalid_param", async () => {
    expect((await get("/v1/messages?conversation_id=&user=x")).json()).toEqual({ limit: 20, has_more: false, data: [] });
    expect((await get("/v1/messages?conversation_id=&limit=3")).json()).toEqual({ limit: 3, has_more: false, data: [] });
    const id = randomUUID();
    for (const q of ["user=x", "conversation_id=nope", `conversation_id=${id}&limit=0`, `conversation_id=${id}&limit=101`, `conversation_id=${id}&first_id=bad`]) {
      const res = await get(`/v1/messages?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().code, q).toBe("invalid_param");
    }
  });

  it("wrong mode → 400 not_chat_app, after the end user was created", async () => {
    for (const app of [completion, workflow]) {
      const user = uid();
      const res = await get(`/v1/messages?conversation_id=${randomUUID()}&user=${user}`, app);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual(NOT_CHAT);
      expect(await t.prisma.endUser.findFirst({ where: { app_id: app.appId, session_id: user } })).not.toBeNull();
    }
  });
});

describe("GET /v1/messages/{id}/suggested", () => {
  it("user is required (query)", async () => {
    const { msgs } = await thread(a, 1);
    for (const q of ["", "?user="]) {
      const res = await get(`/v1/messages/${msgs[0]!.id}/suggested${q}`);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: "invalid_param", message: "Arg user must be provided.", status: 400 });
    }
  });

  it("feature disabled → 403 app_suggested_questions_after_answer_disabled", async () => {
    for (const yaml of [disabledChatYaml, advancedChatYaml(false)]) {
      const app = await appWithKey(t, yaml);
      const { user, msgs } = await thread(app, 1);
      const res = await get(`/v1/messages/${msgs[0]!.id}/suggested?user=${user}`, app);
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ code: "app_suggested_questions_after_answer_disabled", message: "Function Suggested questions after answer disabled.", status: 403 });
    }
  });

  it("message not visible → 404 Message Not Exists. (checked before the feature flag)", async () => {
    const disabled = await appWithKey(t, disabledChatYaml);
    for (const app of [a, disabled]) {
      const { user, eu, msgs } = await thread(app, 1);
      const deletedConv = await conversation(app, eu, { is_deleted: true });
      const inDeleted = await message(app, deletedConv.id, eu);
      const consoleMsg = await message(app, null, eu, { from_source: "console" });
      const otherApp = await thread(await appWithKey(t), 1);
      for (const [id, u] of [
        [msgs[0]!.id, uid()],
        [randomUUID(), user],
        [inDeleted.id, user],
        [consoleMsg.id, user],
        [otherApp.msgs[0]!.id, user],
      ] as const) {
        const res = await get(`/v1/messages/${id}/suggested?user=${u}`, app);
        expect(res.statusCode).toBe(404);
        expect(res.json()).toEqual({ code: "not_found", message: "Message Not Exists.", status: 404 });
      }
    }
  });

  it("wrong mode → 400 not_chat_app, after the end user was created", async () => {
    for (const app of [completion, workflow]) {
      const user = uid();
      const res = await get(`/v1/messages/${randomUUID()}/suggested?user=${user}`, app);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual(NOT_CHAT);
      expect(await t.prisma.endUser.findFirst({ where: { app_id: app.appId, session_id: user } })).not.toBeNull();
    }
  });
});

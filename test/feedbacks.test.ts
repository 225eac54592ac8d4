// POST /v1/messages/{id}/feedbacks (apps spec §9.1) and GET /v1/app/feedbacks (§9.2).
// Rows are written directly with Prisma; the generation runtime is not involved.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, completionAppYaml } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

type AppKey = Awaited<ReturnType<typeof appWithKey>>;

const completionYaml = completionAppYaml();

const NOT_FOUND_TEXT =
  "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";
const FEEDBACK_KEYS = ["id", "app_id", "conversation_id", "message_id", "rating", "content", "from_source", "from_end_user_id", "from_account_id", "created_at", "updated_at"];
const MESSAGE_GONE = { code: "not_found", message: "Message Not Exists.", status: 404 };

let t: TestApp;
let a: AppKey;
let completion: AppKey;
let datasetKey: string;

beforeAll(async () => {
  t = await buildTestApp();
  a = await appWithKey(t);
  completion = await appWithKey(t, completionYaml);
  datasetKey = await createDatasetKey(t, a.tenantId);
});
afterAll(async () => t?.close());

const uid = () => `u-${randomUUID().slice(0, 8)}`;

async function endUser(app: AppKey, user: string): Promise<string> {
  return (await t.app.services.endUsers.getOrCreate(app.tenantId, app.appId, user)).id;
}

/** A message of `user` in a fresh conversation (or none, as completion messages may have). */
async function userMessage(app: AppKey, opts: { withConversation?: boolean; deleted?: boolean } = {}) {
  const user = uid();
  const eu = await endUser(app, user);
  const conv = opts.withConversation === false
    ? null
    : await t.prisma.conversation.create({ data: { tenant_id: app.tenantId, app_id: app.appId, mode: "chat", from_end_user_id: eu, is_deleted: opts.deleted ?? false } });
  const m = await t.prisma.message.create({
    data: { tenant_id: app.tenantId, app_id: app.appId, conversation_id: conv?.id ?? null, from_end_user_id: eu, query: "q", answer: "a" },
  });
  return { user, eu, conv, m };
}

const feedback = (messageId: string, payload: unknown, app: AppKey = a) =>
  t.app.inject({ method: "POST", url: `/v1/messages/${messageId}/feedbacks`, headers: { ...app.auth, "content-type": "application/json" }, payload: JSON.stringify(payload) });
const listFeedbacks = (q = "", app: AppKey = a) => t.app.inject({ method: "GET", url: `/v1/app/feedbacks${q}`, headers: app.auth });

describe("auth", () => {
  const id = "00000000-0000-4000-8000-000000000000";
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "POST", url: `/v1/messages/${id}/feedbacks`, payload: { rating: "like", user: "u" } },
    { method: "GET", url: "/v1/app/feedbacks" },
  ]);

  it("non-UUID message id → generic 404 before auth", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/messages/abc/feedbacks", payload: { rating: "like", user: "u" } });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: "not_found", message: NOT_FOUND_TEXT, status: 404 });
  });
});

describe("POST /v1/messages/{id}/feedbacks", () => {
  it("creates, overwrites and deletes the end user's feedback", async () => {
    const { user, eu, conv, m } = await userMessage(a);
    let res = await feedback(m.id, { rating: "like", user });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: "success" });
    expect(res.body).toBe('{"result": "success"}\n');
    let rows = await t.prisma.messageFeedback.findMany({ where: { message_id: m.id } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ app_id: a.appId, tenant_id: a.tenantId, conversation_id: conv!.id, rating: "like", content: null, from_source: "user", from_end_user_id: eu });

    res = await feedback(m.id, { rating: "dislike", content: "Too long", user });
    expect(res.json()).toEqual({ result: "success" });
    rows = await t.prisma.messageFeedback.findMany({ where: { message_id: m.id } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ rating: "dislike", content: "Too long" });

    // The caller sees it in GET /messages.
    const list = await t.app.inject({ method: "GET", url: `/v1/messages?conversation_id=${conv!.id}&user=${user}`, headers: a.auth });
    expect(list.json().data[0].feedback).toEqual({ rating: "dislike" });

    res = await feedback(m.id, { rating: null, user });
    expect(res.json()).toEqual({ result: "success" });
    expect(await t.prisma.messageFeedback.count({ where: { message_id: m.id } })).toBe(0);
  });

  it("rating null (or absent) without feedback → 400 invalid_param", async () => {
    const { user, m } = await userMessage(a);
    for (const payload of [{ rating: null, user }, { user }, { rating: "", user }]) {
      const res = await feedback(m.id, payload);
      expect(res.statusCode).toBe(400);
      if (payload.rating === "") expect(res.json().code).toBe("invalid_param");
      else expect(res.json()).toEqual({ code: "invalid_param", message: "rating cannot be None when feedback not exists", status: 400 });
    }
  });

  it("invalid rating or content → 400 invalid_param", async () => {
    const { user, m } = await userMessage(a);
    for (const payload of [{ rating: "meh", user }, { rating: 1, user }, { rating: "like", content: 5, user }, { rating: "LIKE", user }]) {
      const res = await feedback(m.id, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe("invalid_param");
    }
    expect(await t.prisma.messageFeedback.count({ where: { message_id: m.id } })).toBe(0);
  });

  it("user is required (body)", async () => {
    const { m } = await userMessage(a);
    for (const payload of [{ rating: "like" }, { rating: "like", user: "" }]) {
      const res = await feedback(m.id, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: "invalid_param", message: "Arg user must be provided.", status: 400 });
    }
  });

  it("another user's, another app's, a deleted conversation's or an unknown message → 404", async () => {
    const { m } = await userMessage(a);
    const other = await userMessage(await appWithKey(t));
    const deleted = await userMessage(a, { deleted: true });
    for (const [id, user] of [[m.id, uid()], [other.m.id, other.user], [deleted.m.id, deleted.user], [randomUUID(), uid()]] as const) {
      const res = await feedback(id, { rating: "like", user });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual(MESSAGE_GONE);
    }
    expect(await t.prisma.messageFeedback.count({ where: { message_id: { in: [m.id, other.m.id, deleted.m.id] } } })).toBe(0);
  });

  it("an admin's feedback on the same message is left alone", async () => {
    const { user, conv, m } = await userMessage(a);
    await t.prisma.messageFeedback.create({ data: { tenant_id: a.tenantId, app_id: a.appId, conversation_id: conv!.id, message_id: m.id, rating: "dislike", from_source: "admin" } });
    let res = await feedback(m.id, { rating: null, user });
    expect(res.json().message).toBe("rating cannot be None when feedback not exists");
    res = await feedback(m.id, { rating: "like", user });
    expect(res.statusCode).toBe(200);
    const rows = await t.prisma.messageFeedback.findMany({ where: { message_id: m.id }, orderBy: { from_source: "asc" } });
    expect(rows.map((r) => [r.from_source, r.rating])).toEqual([["admin", "dislike"], ["user", "like"]]);
  });

  it("works for completion apps (no mode check), also without a conversation", async () => {
    const { user, m } = await userMessage(completion, { withConversation: false });
    const res = await feedback(m.id, { rating: "like", content: "great", user }, completion);
    expect(res.statusCode).toBe(200);
    expect(await t.prisma.messageFeedback.findFirst({ where: { message_id: m.id } })).toMatchObject({ rating: "like", content: "great", conversation_id: null });
  });
});

describe("GET /v1/app/feedbacks", () => {
  async function seed() {
    const app = await appWithKey(t);
    const { eu, conv, m } = await userMessage(app);
    const mk = (rating: string, created: string, over: Record<string, unknown> = {}) =>
      t.prisma.messageFeedback.create({
        data: {
          tenant_id: app.tenantId, app_id: app.appId, conversation_id: conv!.id, message_id: m.id, rating, from_source: "user", from_end_user_id: eu,
          created_at: new Date(created), updated_at: new Date(created), ...over,
        },
      });
    const f1 = await mk("like", "2025-01-16T14:30:29.123Z", { content: "nice" });
    const f2 = await mk("dislike", "2025-01-17T08:00:00.000Z", { from_source: "admin", from_end_user_id: null });
    const f3 = await mk("like", "2025-01-18T09:15:00.500Z");
    return { app, eu, conv: conv!, m, f1, f2, f3 };
  }

  it("every feedback of the app, newest first, with naive ISO timestamps", async () => {
    const { app, eu, conv, m, f1, f2, f3 } = await seed();
    // Another app's feedback is not listed.
    const other = await userMessage(a);
    await feedback(other.m.id, { rating: "like", user: other.user });

    const res = await listFeedbacks("", app);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["data"]);
    expect(body.data.map((f: { id: string }) => f.id)).toEqual([f3.id, f2.id, f1.id]);
    expect(Object.keys(body.data[0])).toEqual(FEEDBACK_KEYS);
    expect(body.data[2]).toEqual({
      id: f1.id, app_id: app.appId, conversation_id: conv.id, message_id: m.id, rating: "like", content: "nice", from_source: "user",
      from_end_user_id: eu, from_account_id: null, created_at: "2025-01-16T14:30:29.123000", updated_at: "2025-01-16T14:30:29.123000",
    });
    expect(body.data[1]).toMatchObject({ from_source: "admin", from_end_user_id: null, created_at: "2025-01-17T08:00:00" });
    expect(body.data[0].created_at).toBe("2025-01-18T09:15:00.500000");
  });

  it("offset pages: page and limit", async () => {
    const { app, f1, f2, f3 } = await seed();
    const ids = async (q: string) => (await listFeedbacks(q, app)).json().data.map((f: { id: string }) => f.id);
    expect(await ids("?limit=2")).toEqual([f3.id, f2.id]);
    expect(await ids("?limit=2&page=2")).toEqual([f1.id]);
    expect(await ids("?limit=2&page=3")).toEqual([]);
    expect(await ids("?limit=101")).toHaveLength(3);
    expect(await ids("?page=99999999999")).toEqual([]);
  });

  it("invalid page/limit → 400 invalid_param", async () => {
    for (const q of ["?limit=0", "?limit=102", "?page=0", "?page=x", "?limit="]) {
      const res = await listFeedbacks(q);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().code).toBe("invalid_param");
    }
  });

  it("any mode, no user needed", async () => {
    const res = await listFeedbacks("", completion);
    expect(res.statusCode).toBe(200);
    expect(Array.isArray(res.json().data)).toBe(true);
  });
});

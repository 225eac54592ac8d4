// Conversations (apps spec §8.1, §8.3–8.6): list/cursor quirks, delete, rename, variables.
// Rows are written directly with Prisma; the generation runtime is not involved.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pyFloatRepr, pyStr } from "../src/lib/pyrepr.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, completionAppYaml, minimalWorkflowYaml } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

type AppKey = Awaited<ReturnType<typeof appWithKey>>;

const completionYaml = completionAppYaml();

const workflowYaml = minimalWorkflowYaml;

const NOT_FOUND_TEXT =
  "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";
const CONV_KEYS = ["id", "name", "inputs", "status", "introduction", "created_at", "updated_at"];
const VAR_KEYS = ["id", "name", "value_type", "value", "description", "created_at", "updated_at"];

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

async function endUser(app: AppKey, user: string): Promise<string> {
  return (await t.app.services.endUsers.getOrCreate(app.tenantId, app.appId, user)).id;
}

const at = (sec: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + sec * 1000);

async function conversation(app: AppKey, endUserId: string, over: Record<string, unknown> = {}) {
  return t.prisma.conversation.create({
    data: {
      tenant_id: app.tenantId,
      app_id: app.appId,
      mode: "chat",
      name: "New conversation",
      inputs: { company: "Acme" },
      introduction: "Hello! How can I help?",
      from_source: "api",
      from_end_user_id: endUserId,
      ...over,
    },
  });
}

async function variable(app: AppKey, conversationId: string, over: { name: string; value_type: string; value: unknown; created_at?: Date; description?: string }) {
  return t.prisma.conversationVariable.create({
    data: {
      id: randomUUID(),
      conversation_id: conversationId,
      app_id: app.appId,
      name: over.name,
      value_type: over.value_type,
      value: over.value as object,
      description: over.description ?? "",
      ...(over.created_at ? { created_at: over.created_at, updated_at: over.created_at } : {}),
    },
  });
}

const get = (url: string, app: AppKey = a) => t.app.inject({ method: "GET", url, headers: app.auth });
const send = (method: "POST" | "PUT" | "DELETE", url: string, payload: unknown, app: AppKey = a) =>
  t.app.inject({ method, url, headers: { ...app.auth, "content-type": "application/json" }, payload: JSON.stringify(payload) });

const uid = () => `u-${randomUUID().slice(0, 8)}`;

// ---------------------------------------------------------------------------------------------

describe("pyStr (Python str() of JSON values)", () => {
  it("renders scalars, containers and strings like CPython", () => {
    expect(pyStr("plain")).toBe("plain");
    expect(pyStr(42)).toBe("42");
    expect(pyStr(1.5)).toBe("1.5");
    expect(pyStr(1, { floats: true })).toBe("1.0");
    expect(pyStr(true)).toBe("True");
    expect(pyStr(null)).toBe("None");
    expect(pyStr({ a: 1, b: [true, null], c: "x" })).toBe("{'a': 1, 'b': [True, None], 'c': 'x'}");
    expect(pyStr(["x", "y"])).toBe("['x', 'y']");
    expect(pyStr([])).toBe("[]");
    expect(pyStr({})).toBe("{}");
    expect(pyStr(["it's"])).toBe(`["it's"]`);
    expect(pyStr([`a'b"c`])).toBe(`['a\\'b"c']`);
    expect(pyStr(["tab\there\n", "back\\slash"])).toBe("['tab\\there\\n', 'back\\\\slash']");
    expect(pyStr(["\u0001", "é", "\u00a0", "日本"])).toBe("['\\x01', 'é', '\\xa0', '日本']");
    expect(pyStr(12345678901234567890)).toBe("12345678901234567168");
  });

  it("formats floats like repr()", () => {
    expect(pyFloatRepr(0.1)).toBe("0.1");
    expect(pyFloatRepr(1e16)).toBe("1e+16");
    expect(pyFloatRepr(1e15)).toBe("1000000000000000.0");
    expect(pyFloatRepr(0.0001)).toBe("0.0001");
    expect(pyFloatRepr(0.00001)).toBe("1e-05");
    expect(pyFloatRepr(-2.5e-7)).toBe("-2.5e-07");
    expect(pyFloatRepr(123.456)).toBe("123.456");
    expect(pyFloatRepr(1.7976931348623157e308)).toBe("1.7976931348623157e+308");
  });
});

describe("auth", () => {
  const id = "00000000-0000-4000-8000-000000000000";
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "GET", url: "/v1/conversations" },
    { method: "DELETE", url: `/v1/conversations/${id}`, payload: { user: "u" } },
    { method: "POST", url: `/v1/conversations/${id}/name`, payload: { name: "x", user: "u" } },
    { method: "GET", url: `/v1/conversations/${id}/variables` },
    { method: "PUT", url: `/v1/conversations/${id}/variables/${id}`, payload: { value: 1, user: "u" } },
  ]);

  it("non-UUID path segments are the generic 404, before auth", async () => {
    const id = randomUUID();
    for (const [method, url] of [
      ["DELETE", "/v1/conversations/abc"],
      ["POST", "/v1/conversations/abc/name"],
      ["GET", "/v1/conversations/abc/variables"],
      ["PUT", `/v1/conversations/${id}/variables/xyz`],
      ["GET", `/v1/conversations/${id.slice(0, 35)}/variables`],
    ] as const) {
      const res = await t.app.inject({ method, url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: NOT_FOUND_TEXT, status: 404 });
    }
  });
});

describe("GET /v1/conversations", () => {
  it("lists the caller's conversations, newest update first, in Dify's key order", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const c1 = await conversation(a, eu, { created_at: at(1), updated_at: at(10), name: "first" });
    const c2 = await conversation(a, eu, { created_at: at(2), updated_at: at(5), inputs: { company: "Zed", n: 1 }, introduction: null });
    const res = await get(`/v1/conversations?user=${user}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["limit", "has_more", "data"]);
    expect(body.limit).toBe(20);
    expect(body.has_more).toBe(false);
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([c1.id, c2.id]);
    expect(Object.keys(body.data[0])).toEqual(CONV_KEYS);
    expect(body.data[0]).toEqual({
      id: c1.id, name: "first", inputs: { company: "Acme" }, status: "normal", introduction: "Hello! How can I help?",
      created_at: Math.floor(at(1).getTime() / 1000), updated_at: Math.floor(at(10).getTime() / 1000),
    });
    expect(body.data[1]).toMatchObject({ inputs: { company: "Zed", n: 1 }, introduction: "" });
    // Python json.dumps style.
    expect(res.body).toContain('"limit": 20, "has_more": false');
  });

  it("sees only visible rows: other users, other apps, other sources and deleted rows are hidden", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const mine = await conversation(a, eu);
    await conversation(a, eu, { is_deleted: true });
    await conversation(a, eu, { from_source: "console" });
    await conversation(a, await endUser(a, uid()));
    const otherApp = await appWithKey(t);
    await conversation(otherApp, await endUser(otherApp, user));
    const body = (await get(`/v1/conversations?user=${user}`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([mine.id]);
  });

  it("without user lists DEFAULT-USER's conversations", async () => {
    const app = await appWithKey(t);
    const eu = await endUser(app, "DEFAULT-USER");
    const c = await conversation(app, eu);
    const body = (await get("/v1/conversations", app)).json();
    expect(body.data.map((x: { id: string }) => x.id)).toEqual([c.id]);
    expect((await get("/v1/conversations?user=", app)).json().data).toHaveLength(1);
  });

  it("cursor: strictly after last_id on the sort field; has_more only when the page is full", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const rows = [];
    for (let i = 0; i < 5; i++) rows.push(await conversation(a, eu, { created_at: at(100 + i), updated_at: at(200 - i) }));
    // -updated_at (default): rows[0] has the newest update.
    let body = (await get(`/v1/conversations?user=${user}&limit=2`)).json();
    expect(body).toMatchObject({ limit: 2, has_more: true });
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[0]!.id, rows[1]!.id]);
    body = (await get(`/v1/conversations?user=${user}&limit=2&last_id=${rows[1]!.id}`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[2]!.id, rows[3]!.id]);
    expect(body.has_more).toBe(true);
    body = (await get(`/v1/conversations?user=${user}&limit=2&last_id=${rows[3]!.id}`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[4]!.id]);
    expect(body.has_more).toBe(false);
    // Exactly a full last page: has_more false (nothing beyond).
    body = (await get(`/v1/conversations?user=${user}&limit=5`)).json();
    expect(body).toMatchObject({ limit: 5, has_more: false });
    expect(body.data).toHaveLength(5);

    // Ascending created_at.
    body = (await get(`/v1/conversations?user=${user}&sort_by=created_at&limit=3`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[0]!.id, rows[1]!.id, rows[2]!.id]);
    expect(body.has_more).toBe(true);
    body = (await get(`/v1/conversations?user=${user}&sort_by=created_at&last_id=${rows[2]!.id}`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[3]!.id, rows[4]!.id]);
    body = (await get(`/v1/conversations?user=${user}&sort_by=-created_at&limit=1`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[4]!.id]);
    body = (await get(`/v1/conversations?user=${user}&sort_by=updated_at&limit=1`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([rows[4]!.id]);
    // An empty last_id means no cursor.
    expect((await get(`/v1/conversations?user=${user}&last_id=`)).json().data).toHaveLength(5);
  });

  it("quirk: rows sharing the cursor row's sort value are skipped", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const x = await conversation(a, eu, { updated_at: at(50) });
    const y = await conversation(a, eu, { updated_at: at(50) });
    const z = await conversation(a, eu, { updated_at: at(40) });
    const body = (await get(`/v1/conversations?user=${user}&last_id=${x.id}`)).json();
    expect(body.data.map((c: { id: string }) => c.id)).toEqual([z.id]);
    expect(body.data.map((c: { id: string }) => c.id)).not.toContain(y.id);
  });

  it("last_id unknown or not visible → 404 Last Conversation Not Exists.", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const others = await conversation(a, await endUser(a, uid()));
    const deleted = await conversation(a, eu, { is_deleted: true });
    for (const id of [randomUUID(), others.id, deleted.id]) {
      const res = await get(`/v1/conversations?user=${user}&last_id=${id}`);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Last Conversation Not Exists.", status: 404 });
    }
  });

  it("validation errors are 400 invalid_param", async () => {
    for (const q of ["limit=0", "limit=101", "limit=abc", "limit=", "sort_by=name", "last_id=not-a-uuid"]) {
      const res = await get(`/v1/conversations?user=v&${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().code, q).toBe("invalid_param");
      expect(res.json().status).toBe(400);
    }
    expect((await get("/v1/conversations?user=v&limit=100")).statusCode).toBe(200);
    expect((await get("/v1/conversations?user=v&limit=1")).statusCode).toBe(200);
    // Python uuid.UUID accepts the 32-hex form.
    const res = await get(`/v1/conversations?user=v&last_id=${randomUUID().replace(/-/g, "")}`);
    expect(res.json().message).toBe("Last Conversation Not Exists.");
  });

  it("wrong mode → 400 not_chat_app, after the end user was created", async () => {
    for (const app of [completion, workflow]) {
      const user = uid();
      const res = await get(`/v1/conversations?user=${user}&limit=0`, app);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: "not_chat_app", message: "Please check if your app mode matches the right API route.", status: 400 });
      expect(await t.prisma.endUser.findFirst({ where: { app_id: app.appId, session_id: user } })).not.toBeNull();
    }
  });
});

describe("DELETE /v1/conversations/{id}", () => {
  it("204 with an empty body; soft delete; afterwards 404", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const c = await conversation(a, eu, { updated_at: at(1) });
    const res = await send("DELETE", `/v1/conversations/${c.id}`, { user });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    const row = await t.prisma.conversation.findUnique({ where: { id: c.id } });
    expect(row!.is_deleted).toBe(true);
    expect(row!.updated_at.getTime()).toBeGreaterThan(at(1).getTime());
    expect((await get(`/v1/conversations?user=${user}`)).json().data).toEqual([]);
    const again = await send("DELETE", `/v1/conversations/${c.id}`, { user });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
  });

  it("another user's or an unknown conversation → 404 exactly like a missing row", async () => {
    const c = await conversation(a, await endUser(a, uid()));
    for (const [id, user] of [[c.id, uid()], [randomUUID(), uid()], [c.id, undefined]] as const) {
      const res = await send("DELETE", `/v1/conversations/${id}`, user ? { user } : {});
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
    }
    expect((await t.prisma.conversation.findUnique({ where: { id: c.id } }))!.is_deleted).toBe(false);
  });

  it("upper-case UUIDs are accepted", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const res = await send("DELETE", `/v1/conversations/${c.id.toUpperCase()}`, { user });
    expect(res.statusCode).toBe(204);
  });

  it("wrong mode → 400 not_chat_app", async () => {
    const res = await send("DELETE", `/v1/conversations/${randomUUID()}`, { user: "x" }, completion);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("not_chat_app");
  });
});

describe("POST /v1/conversations/{id}/name", () => {
  it("renames, sets updated_at, answers the conversation object", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user), { created_at: at(1), updated_at: at(2) });
    const res = await send("POST", `/v1/conversations/${c.id}/name`, { name: "Trip to Paris", user });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(CONV_KEYS);
    expect(body).toMatchObject({ id: c.id, name: "Trip to Paris", inputs: { company: "Acme" }, status: "normal", created_at: Math.floor(at(1).getTime() / 1000) });
    expect(body.updated_at).toBeGreaterThan(Math.floor(at(2).getTime() / 1000));
    // auto_generate given as false explicitly works the same.
    const res2 = await send("POST", `/v1/conversations/${c.id}/name`, { name: "B", auto_generate: false, user });
    expect(res2.json().name).toBe("B");
  });

  it("name missing or blank without auto_generate → 400 invalid_param", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    for (const payload of [{ user }, { user, name: "   " }, { user, name: null }, { user, name: "", auto_generate: false }]) {
      const res = await send("POST", `/v1/conversations/${c.id}/name`, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe("invalid_param");
      expect(res.json().message).toContain("name is required when auto_generate is false");
    }
    const bad = await send("POST", `/v1/conversations/${c.id}/name`, { user, name: 5 });
    expect(bad.json().code).toBe("invalid_param");
    const badBool = await send("POST", `/v1/conversations/${c.id}/name`, { user, auto_generate: "maybe" });
    expect(badBool.json().code).toBe("invalid_param");
  });

  it("auto_generate on a conversation without messages → 400 invalid_param with an empty message", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const res = await send("POST", `/v1/conversations/${c.id}/name`, { auto_generate: true, user });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: "", status: 400 });
  });

  it("another user's conversation → 404", async () => {
    const c = await conversation(a, await endUser(a, uid()));
    for (const payload of [{ name: "x", user: uid() }, { auto_generate: true, user: uid() }]) {
      const res = await send("POST", `/v1/conversations/${c.id}/name`, payload);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
    }
    expect((await t.prisma.conversation.findUnique({ where: { id: c.id } }))!.name).toBe("New conversation");
  });

  it("wrong mode → 400 not_chat_app (before payload validation)", async () => {
    const res = await send("POST", `/v1/conversations/${randomUUID()}/name`, { user: "x" }, workflow);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("not_chat_app");
  });
});

describe("GET /v1/conversations/{id}/variables", () => {
  it("lists variables oldest first with Python str() values", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const specs = [
      { name: "s", value_type: "string", value: "hello" },
      { name: "n", value_type: "number", value: 42 },
      { name: "i", value_type: "integer", value: 7 },
      { name: "f", value_type: "float", value: 1 },
      { name: "b", value_type: "boolean", value: true },
      { name: "o", value_type: "object", value: { a: 1, b: [true, null], c: "x" } },
      { name: "arr", value_type: "array[string]", value: ["x", "y"] },
      { name: "fl", value_type: "number", value: 2.5 },
    ];
    const rows = [];
    for (let k = 0; k < specs.length; k++) rows.push(await variable(a, c.id, { ...specs[k]!, created_at: at(k), description: k === 0 ? "greeting" : "" }));
    const res = await get(`/v1/conversations/${c.id}/variables?user=${user}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["limit", "has_more", "data"]);
    expect(body).toMatchObject({ limit: 20, has_more: false });
    expect(Object.keys(body.data[0])).toEqual(VAR_KEYS);
    expect(body.data[0]).toEqual({
      id: rows[0]!.id, name: "s", value_type: "string", value: "hello", description: "greeting",
      created_at: Math.floor(at(0).getTime() / 1000), updated_at: Math.floor(at(0).getTime() / 1000),
    });
    expect(body.data.map((v: { value: string }) => v.value)).toEqual(["hello", "42", "7", "1.0", "True", "{'a': 1, 'b': [True, None], 'c': 'x'}", "['x', 'y']", "2.5"]);
    expect(body.data.map((v: { value_type: string }) => v.value_type)).toEqual(["string", "number", "number", "number", "boolean", "object", "array[string]", "number"]);
  });

  it("pages by created_at with last_id and has_more (limit + 1)", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const rows = [];
    for (let k = 0; k < 5; k++) rows.push(await variable(a, c.id, { name: `v${k}`, value_type: "string", value: `${k}`, created_at: at(k) }));
    let body = (await get(`/v1/conversations/${c.id}/variables?user=${user}&limit=2`)).json();
    expect(body).toMatchObject({ limit: 2, has_more: true });
    expect(body.data.map((v: { name: string }) => v.name)).toEqual(["v0", "v1"]);
    body = (await get(`/v1/conversations/${c.id}/variables?user=${user}&limit=2&last_id=${rows[1]!.id}`)).json();
    expect(body.data.map((v: { name: string }) => v.name)).toEqual(["v2", "v3"]);
    expect(body.has_more).toBe(true);
    body = (await get(`/v1/conversations/${c.id}/variables?user=${user}&limit=2&last_id=${rows[3]!.id}`)).json();
    expect(body.data.map((v: { name: string }) => v.name)).toEqual(["v4"]);
    expect(body.has_more).toBe(false);
    body = (await get(`/v1/conversations/${c.id}/variables?user=${user}&limit=5`)).json();
    expect(body.has_more).toBe(false);
  });

  it("variable_name: case-insensitive substring, wildcards taken literally; unsafe names rejected", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    await variable(a, c.id, { name: "user_name", value_type: "string", value: "a", created_at: at(1) });
    await variable(a, c.id, { name: "userXname", value_type: "string", value: "b", created_at: at(2) });
    await variable(a, c.id, { name: "Topic", value_type: "string", value: "c", created_at: at(3) });
    const names = async (q: string) => (await get(`/v1/conversations/${c.id}/variables?user=${user}&variable_name=${q}`)).json().data.map((v: { name: string }) => v.name);
    expect(await names("r_n")).toEqual(["user_name"]);
    expect(await names("USER")).toEqual(["user_name", "userXname"]);
    expect(await names("topic")).toEqual(["Topic"]);
    for (const [q, msg] of [
      ["a%25b", "Variable name can only contain letters, numbers, hyphens (-), underscores (_), and periods (.)"],
      ["", "Variable name can only contain letters"],
      ["a--b", "Variable name contains invalid characters: --"],
      ["sp_x", "Variable name contains invalid characters: sp_"],
    ] as const) {
      const res = await get(`/v1/conversations/${c.id}/variables?user=${user}&variable_name=${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().code).toBe("invalid_param");
      expect(res.json().message).toContain(msg);
    }
  });

  it("unknown last_id → 400 invalid_param with an empty message; invalid query → 400", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const res = await get(`/v1/conversations/${c.id}/variables?user=${user}&last_id=${randomUUID()}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "invalid_param", message: "", status: 400 });
    for (const q of ["limit=0", "limit=101", "last_id=zzz"]) {
      const r = await get(`/v1/conversations/${c.id}/variables?user=${user}&${q}`);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().code).toBe("invalid_param");
    }
  });

  it("a chat app without variables answers an empty list", async () => {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    expect((await get(`/v1/conversations/${c.id}/variables?user=${user}`)).json()).toEqual({ limit: 20, has_more: false, data: [] });
  });

  it("another user's, deleted or unknown conversation → 404", async () => {
    const user = uid();
    const eu = await endUser(a, user);
    const others = await conversation(a, await endUser(a, uid()));
    const deleted = await conversation(a, eu, { is_deleted: true });
    for (const id of [others.id, deleted.id, randomUUID()]) {
      const res = await get(`/v1/conversations/${id}/variables?user=${user}`);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
    }
  });

  it("wrong mode → 400 not_chat_app", async () => {
    for (const app of [completion, workflow]) {
      const res = await get(`/v1/conversations/${randomUUID()}/variables?user=x`, app);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe("not_chat_app");
    }
  });
});

describe("PUT /v1/conversations/{id}/variables/{variable_id}", () => {
  async function setup() {
    const user = uid();
    const c = await conversation(a, await endUser(a, user));
    const vars = {
      s: await variable(a, c.id, { name: "topic", value_type: "string", value: "old", created_at: at(1) }),
      n: await variable(a, c.id, { name: "count", value_type: "number", value: 1, created_at: at(2) }),
      i: await variable(a, c.id, { name: "whole", value_type: "integer", value: 1, created_at: at(3) }),
      o: await variable(a, c.id, { name: "obj", value_type: "object", value: {}, created_at: at(4) }),
      arr: await variable(a, c.id, { name: "tags", value_type: "array[string]", value: [], created_at: at(5) }),
      f: await variable(a, c.id, { name: "doc", value_type: "file", value: {}, created_at: at(6) }),
    };
    return { user, c, vars };
  }
  const put = (convId: string, varId: string, payload: unknown, app: AppKey = a) => send("PUT", `/v1/conversations/${convId}/variables/${varId}`, payload, app);

  it("updates the value and answers the variable object", async () => {
    const { user, c, vars } = await setup();
    const res = await put(c.id, vars.o.id, { value: { k: [1, "x", false] }, user });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(VAR_KEYS);
    expect(body).toMatchObject({ id: vars.o.id, name: "obj", value_type: "object", value: "{'k': [1, 'x', False]}", created_at: Math.floor(at(4).getTime() / 1000) });
    expect(body.updated_at).toBeGreaterThan(Math.floor(at(4).getTime() / 1000));
    const stored = await t.prisma.conversationVariable.findFirst({ where: { id: vars.o.id } });
    expect(stored!.value).toEqual({ k: [1, "x", false] });
    const listed = (await get(`/v1/conversations/${c.id}/variables?user=${user}`)).json().data.find((v: { id: string }) => v.id === vars.o.id);
    expect(listed.value).toBe("{'k': [1, 'x', False]}");

    expect((await put(c.id, vars.s.id, { value: "new", user })).json().value).toBe("new");
    // number accepts ints, floats (and, like Python, booleans); integer is checked as number.
    expect((await put(c.id, vars.n.id, { value: 2.5, user })).json().value).toBe("2.5");
    expect((await put(c.id, vars.i.id, { value: 3.5, user })).json()).toMatchObject({ value_type: "number", value: "3.5" });
    expect((await put(c.id, vars.arr.id, { value: ["a", "b"], user })).json().value).toBe("['a', 'b']");
  });

  it("type mismatch → 400 bad_request with Dify's text", async () => {
    const { user, c, vars } = await setup();
    const cases: Array<[string, unknown, string]> = [
      [vars.s.id, 5, "Type mismatch: variable 'topic' expects string, but got integer type"],
      [vars.s.id, null, "Type mismatch: variable 'topic' expects string, but got none type"],
      [vars.n.id, "5", "Type mismatch: variable 'count' expects number, but got string type"],
      [vars.i.id, [1, 2.5], "Type mismatch: variable 'whole' expects number, but got array[number] type"],
      [vars.o.id, [{}], "Type mismatch: variable 'obj' expects object, but got array[object] type"],
      [vars.arr.id, ["a", 1], "Type mismatch: variable 'tags' expects array[string], but got array[any] type"],
      [vars.arr.id, "a", "Type mismatch: variable 'tags' expects array[string], but got string type"],
      [vars.f.id, { id: "x" }, "Type mismatch: variable 'doc' expects file, but got object type"],
      [vars.s.id, 1.5, "Type mismatch: variable 'topic' expects string, but got float type"],
    ];
    for (const [id, value, message] of cases) {
      const res = await put(c.id, id, { value, user });
      expect(res.statusCode, message).toBe(400);
      expect(res.json()).toEqual({ code: "bad_request", message, status: 400 });
    }
    expect((await t.prisma.conversationVariable.findFirst({ where: { id: vars.s.id } }))!.value).toBe("old");
  });

  it("missing value → 400 invalid_param", async () => {
    const { user, c, vars } = await setup();
    const res = await put(c.id, vars.s.id, { user });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("invalid_param");
    expect(res.json().message).toContain("value");
  });

  it("unknown variable → 404 Conversation Variable Not Exists.; hidden conversation → 404 Conversation Not Exists.", async () => {
    const { user, c, vars } = await setup();
    let res = await put(c.id, randomUUID(), { value: "x", user });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: "not_found", message: "Conversation Variable Not Exists.", status: 404 });
    // A variable of another conversation of the same user.
    const c2 = await conversation(a, await endUser(a, user));
    res = await put(c2.id, vars.s.id, { value: "x", user });
    expect(res.json().message).toBe("Conversation Variable Not Exists.");
    res = await put(c.id, vars.s.id, { value: "x", user: uid() });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: "not_found", message: "Conversation Not Exists.", status: 404 });
  });

  it("wrong mode → 400 not_chat_app", async () => {
    const res = await put(randomUUID(), randomUUID(), { value: 1, user: "x" }, completion);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("not_chat_app");
  });
});

// GET /v1/info, /parameters, /meta, /site (apps spec §12) and app admission (§3.2).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

let t: TestApp;
let a: Awaited<ReturnType<typeof appWithKey>>;
let datasetKey: string;
beforeAll(async () => {
  t = await buildTestApp();
  a = await appWithKey(t);
  datasetKey = await createDatasetKey(t, a.tenantId);
});
afterAll(async () => t?.close());

describe("auth", () => {
  authCases(() => ({ t, wrongKindKey: datasetKey }), [
    { method: "GET", url: "/v1/info" },
    { method: "GET", url: "/v1/parameters" },
    { method: "GET", url: "/v1/meta" },
    { method: "GET", url: "/v1/site" },
  ]);
});

describe("GET /v1/parameters", () => {
  it("returns the DSL's user_input_form and opening_statement, keys in Dify's order", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/parameters", headers: a.auth });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual([
      "opening_statement", "suggested_questions", "suggested_questions_after_answer", "speech_to_text", "text_to_speech",
      "retriever_resource", "annotation_reply", "more_like_this", "user_input_form", "sensitive_word_avoidance", "file_upload", "system_parameters",
    ]);
    expect(body.opening_statement).toBe("Hello! How can I help?");
    expect(body.suggested_questions).toEqual(["What can you do?"]);
    expect(body.suggested_questions_after_answer).toEqual({ enabled: true });
    expect(body.speech_to_text).toEqual({ enabled: false });
    expect(body.user_input_form[0]).toEqual({ "text-input": expect.objectContaining({ label: "Company", variable: "company", required: true, max_length: 48 }) });
    expect(body.user_input_form[1]).toEqual({ select: expect.objectContaining({ variable: "tone", options: ["formal", "casual"] }) });
    expect(body.file_upload.image).toMatchObject({ enabled: true, number_limits: 2 });
    expect(body.system_parameters).toEqual({ image_file_size_limit: 10, video_file_size_limit: 100, audio_file_size_limit: 50, file_size_limit: 15, workflow_file_upload_limit: 10 });
  });

  it("ignores a `user` query parameter (not read)", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/parameters?user=abc", headers: a.auth });
    expect(res.statusCode).toBe(200);
  });
});

describe("GET /v1/info, /v1/meta, /v1/site", () => {
  it("info", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/info", headers: a.auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: "Test chat", description: "A chat app for tests", tags: [], mode: "chat", author_name: null });
    expect(Object.keys(res.json())).toEqual(["name", "description", "tags", "mode", "author_name"]);
  });

  it("info lists app tags", async () => {
    const tag = await t.prisma.tag.create({ data: { tenant_id: a.tenantId, type: "app", name: "support" } });
    await t.prisma.tagBinding.create({ data: { tenant_id: a.tenantId, tag_id: tag.id, target_id: a.appId } });
    const res = await t.app.inject({ method: "GET", url: "/v1/info", headers: a.auth });
    expect(res.json().tags).toEqual(["support"]);
  });

  it("meta", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/meta", headers: a.auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ tool_icons: {} });
  });

  it("site", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/site", headers: a.auth });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.title).toBe("Test chat");
    expect(body.icon).toBe("🤖");
    expect(body.icon_background).toBe("#FFEAD5");
    expect(Object.keys(body)[0]).toBe("title");
    expect(Object.keys(body).at(-1)).toBe("icon_url");
    expect(body.icon_url).toBeNull();
  });
});

describe("app admission (apps spec §3.2)", () => {
  it("403 when the app's API is disabled or its status is abnormal", async () => {
    const b = await appWithKey(t);
    await t.prisma.app.update({ where: { id: b.appId }, data: { enable_api: false } });
    let res = await t.app.inject({ method: "GET", url: "/v1/info", headers: b.auth });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ code: "forbidden", message: "The app's API service has been disabled.", status: 403 });
    await t.prisma.app.update({ where: { id: b.appId }, data: { enable_api: true, status: "disabled" } });
    res = await t.app.inject({ method: "GET", url: "/v1/info", headers: b.auth });
    expect(res.json()).toEqual({ code: "forbidden", message: "The app's status is abnormal.", status: 403 });
  });

  it("a deleted app's key no longer works", async () => {
    const b = await appWithKey(t);
    await t.prisma.app.delete({ where: { id: b.appId } });
    const res = await t.app.inject({ method: "GET", url: "/v1/info", headers: b.auth });
    // Keys cascade with their app, so the key itself is gone.
    expect(res.statusCode).toBe(401);
  });
});

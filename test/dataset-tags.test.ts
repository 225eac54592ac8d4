// Knowledge tags (datasets spec §8, §3.8): CRUD, binding/unbinding, per-dataset tags, the 422
// envelope of model_validate endpoints, key scope and tenant isolation.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey, createDatasetKey, createTenant } from "./support/factories.js";
import { authCases } from "./support/auth-cases.js";

let t: TestApp;
let appKey: string;
beforeAll(async () => {
  t = await buildTestApp();
  appKey = (await appWithKey(t)).key;
});
afterAll(async () => {
  await t?.close();
});

type H = Record<string, string>;
async function workspace() {
  const tenantId = await createTenant(t);
  const key = await createDatasetKey(t, tenantId);
  return { tenantId, h: { authorization: `Bearer ${key}` } as H };
}
const req = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, h: H, payload?: object) =>
  t.app.inject({ method, url, headers: h, ...(payload !== undefined ? { payload } : {}) });
async function dataset(h: H, name = `ds-${randomUUID().slice(0, 8)}`) {
  const res = await req("POST", "/v1/datasets", h, { name });
  expect(res.statusCode).toBe(200);
  return res.json().id as string;
}
async function tag(h: H, name: string) {
  const res = await req("POST", "/v1/datasets/tags", h, { name });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { id: string; name: string; type: string; binding_count: string };
}
const errs = (res: { json: () => { message: string } }) => JSON.parse(res.json().message);

describe("auth", () => {
  authCases(() => ({ t, wrongKindKey: appKey }), [
    { method: "GET", url: "/v1/datasets/tags" },
    { method: "POST", url: "/v1/datasets/tags", payload: { name: "x" } },
    { method: "PATCH", url: "/v1/datasets/tags", payload: { name: "x", tag_id: "y" } },
    { method: "DELETE", url: "/v1/datasets/tags", payload: { tag_id: "y" } },
    { method: "POST", url: "/v1/datasets/tags/binding", payload: { tag_ids: ["a"], target_id: "b" } },
    { method: "POST", url: "/v1/datasets/tags/unbinding", payload: { tag_ids: ["a"], target_id: "b" } },
    { method: "GET", url: `/v1/datasets/${randomUUID()}/tags` },
  ]);
});

describe("tag CRUD", () => {
  it("create → 200 with binding_count \"0\"; list is a bare array, newest first", async () => {
    const { h } = await workspace();
    const a = await tag(h, "alpha");
    expect(Object.keys(a)).toEqual(["id", "name", "type", "binding_count"]);
    expect(a).toMatchObject({ name: "alpha", type: "knowledge", binding_count: "0" });
    await new Promise((r) => setTimeout(r, 5));
    await tag(h, "beta");
    const res = await req("GET", "/v1/datasets/tags", h);
    expect(res.statusCode).toBe(200);
    expect(res.body.startsWith("[")).toBe(true);
    expect(res.json().map((x: { name: string }) => x.name)).toEqual(["beta", "alpha"]);
  });

  it("400 Tag name already exists on create and on rename (also to its own name)", async () => {
    const { h } = await workspace();
    const a = await tag(h, "one");
    await tag(h, "two");
    const dup = await req("POST", "/v1/datasets/tags", h, { name: "one" });
    expect(dup.statusCode).toBe(400);
    expect(dup.json()).toEqual({ code: "invalid_param", message: "Tag name already exists", status: 400 });
    for (const name of ["two", "one"]) {
      const r = await req("PATCH", "/v1/datasets/tags", h, { name, tag_id: a.id });
      expect(r.json()).toEqual({ code: "invalid_param", message: "Tag name already exists", status: 400 });
    }
  });

  it("rename returns the current binding count as a string; 404 Tag not found", async () => {
    const { h } = await workspace();
    const a = await tag(h, "x");
    const d1 = await dataset(h);
    const d2 = await dataset(h);
    for (const d of [d1, d2]) expect((await req("POST", "/v1/datasets/tags/binding", h, { tag_ids: [a.id], target_id: d })).statusCode).toBe(204);
    const r = await req("PATCH", "/v1/datasets/tags", h, { name: "y", tag_id: a.id });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ id: a.id, name: "y", type: "knowledge", binding_count: "2" });
    expect((await req("GET", "/v1/datasets/tags", h)).json()[0].binding_count).toBe("2");
    for (const id of [randomUUID(), "not-a-uuid"]) {
      const nf = await req("PATCH", "/v1/datasets/tags", h, { name: "z", tag_id: id });
      expect(nf.statusCode).toBe(404);
      expect(nf.json()).toEqual({ code: "not_found", message: "Tag not found", status: 404 });
    }
  });

  it("delete: body or query (query wins), 204, bindings removed; 404 afterwards; 422 without tag_id", async () => {
    const { h } = await workspace();
    const a = await tag(h, "del");
    const b = await tag(h, "del2");
    const d = await dataset(h);
    await req("POST", "/v1/datasets/tags/binding", h, { tag_ids: [a.id], target_id: d });
    const res = await req("DELETE", "/v1/datasets/tags", h, { tag_id: a.id });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    expect(await t.prisma.tagBinding.count({ where: { target_id: d } })).toBe(0);
    const again = await req("DELETE", "/v1/datasets/tags", h, { tag_id: a.id });
    expect(again.json()).toEqual({ code: "not_found", message: "Tag not found", status: 404 });
    const q = await t.app.inject({ method: "DELETE", url: `/v1/datasets/tags?tag_id=${b.id}`, headers: h, payload: { tag_id: a.id } });
    expect(q.statusCode).toBe(204);
    const none = await req("DELETE", "/v1/datasets/tags", h, {});
    expect(none.statusCode).toBe(422);
    expect(errs(none)).toEqual([{ type: "missing", loc: ["tag_id"], msg: "Field required" }]);
  });

  it.each([
    [{}, [{ type: "missing", loc: ["name"], msg: "Field required" }]],
    [{ name: "" }, [{ type: "string_too_short", loc: ["name"], msg: "String should have at least 1 character" }]],
    [{ name: "n".repeat(51) }, [{ type: "string_too_long", loc: ["name"], msg: "String should have at most 50 characters" }]],
  ])("create 422 %j", async (payload, expected) => {
    const { h } = await workspace();
    const res = await req("POST", "/v1/datasets/tags", h, payload);
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe("unprocessable_entity");
    expect(errs(res)).toEqual(expected);
  });

  it("update 422 lists every missing field", async () => {
    const { h } = await workspace();
    const res = await req("PATCH", "/v1/datasets/tags", h, {});
    expect(errs(res)).toEqual([
      { type: "missing", loc: ["name"], msg: "Field required" },
      { type: "missing", loc: ["tag_id"], msg: "Field required" },
    ]);
  });
});

describe("binding", () => {
  it("binds (existing pairs skipped, unknown tags ignored), lists per dataset, unbinds with tag_ids or legacy tag_id", async () => {
    const { h } = await workspace();
    const a = await tag(h, "a");
    const b = await tag(h, "b");
    const d = await dataset(h);
    expect((await req("POST", "/v1/datasets/tags/binding", h, { tag_ids: [a.id, b.id, randomUUID()], target_id: d })).statusCode).toBe(204);
    expect((await req("POST", "/v1/datasets/tags/binding", h, { tag_ids: [a.id], target_id: d })).statusCode).toBe(204);
    const list = await req("GET", `/v1/datasets/${d}/tags`, h);
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ data: [{ id: a.id, name: "a" }, { id: b.id, name: "b" }], total: 2 });
    const detail = (await req("GET", `/v1/datasets/${d}`, h)).json();
    expect(detail.tags).toEqual([{ id: a.id, name: "a", type: "knowledge" }, { id: b.id, name: "b", type: "knowledge" }]);
    expect((await req("POST", "/v1/datasets/tags/unbinding", h, { tag_id: a.id, target_id: d })).statusCode).toBe(204);
    expect((await req("GET", `/v1/datasets/${d}/tags`, h)).json()).toEqual({ data: [{ id: b.id, name: "b" }], total: 1 });
    expect((await req("POST", "/v1/datasets/tags/unbinding", h, { tag_ids: [b.id], target_id: d })).statusCode).toBe(204);
    expect((await req("GET", `/v1/datasets/${d}/tags`, h)).json()).toEqual({ data: [], total: 0 });
  });

  it("404 'Dataset not found' (no period) for a target outside the tenant or the key's scope", async () => {
    const a = await workspace();
    const b = await workspace();
    const t1 = await tag(a.h, "t");
    const theirs = await dataset(b.h);
    const mine = await dataset(a.h);
    const other = await dataset(a.h);
    const scoped = { authorization: `Bearer ${await createDatasetKey(t, a.tenantId, [mine])}` };
    const cases: Array<[H, string]> = [[a.h, theirs], [a.h, randomUUID()], [a.h, "nope"], [scoped, other]];
    for (const [h, target] of cases) {
      for (const url of ["/v1/datasets/tags/binding", "/v1/datasets/tags/unbinding"]) {
        const res = await req("POST", url, h, { tag_ids: [t1.id], target_id: target });
        expect(res.statusCode).toBe(404);
        expect(res.json()).toEqual({ code: "not_found", message: "Dataset not found", status: 404 });
      }
    }
    expect((await req("POST", "/v1/datasets/tags/binding", scoped, { tag_ids: [t1.id], target_id: mine })).statusCode).toBe(204);
    // A scoped key counts only bindings inside its scope.
    await req("POST", "/v1/datasets/tags/binding", a.h, { tag_ids: [t1.id], target_id: other });
    expect((await req("GET", "/v1/datasets/tags", scoped)).json()[0].binding_count).toBe("1");
    expect((await req("GET", "/v1/datasets/tags", a.h)).json()[0].binding_count).toBe("2");
    // Per-dataset tags: 404 with the period (dataset route check).
    const nf = await req("GET", `/v1/datasets/${other}/tags`, scoped);
    expect(nf.json()).toEqual({ code: "not_found", message: "Dataset not found.", status: 404 });
  });

  it("tags of another tenant are invisible and cannot be changed", async () => {
    const a = await workspace();
    const b = await workspace();
    const theirs = await tag(b.h, "secret");
    expect((await req("GET", "/v1/datasets/tags", a.h)).json()).toEqual([]);
    expect((await req("PATCH", "/v1/datasets/tags", a.h, { name: "hijack", tag_id: theirs.id })).statusCode).toBe(404);
    expect((await req("DELETE", "/v1/datasets/tags", a.h, { tag_id: theirs.id })).statusCode).toBe(404);
    const mine = await dataset(a.h);
    await req("POST", "/v1/datasets/tags/binding", a.h, { tag_ids: [theirs.id], target_id: mine });
    expect((await req("GET", `/v1/datasets/${mine}/tags`, a.h)).json()).toEqual({ data: [], total: 0 });
    // Same name in two tenants is fine.
    await tag(a.h, "secret");
  });

  it.each([
    ["binding", {}, [{ type: "missing", loc: ["tag_ids"], msg: "Field required" }, { type: "missing", loc: ["target_id"], msg: "Field required" }]],
    ["binding", { tag_ids: [], target_id: "x" }, [{ type: "value_error", loc: ["tag_ids"], msg: "Value error, Tag IDs is required." }]],
    ["binding", { tag_ids: "a", target_id: "x" }, [{ type: "list_type", loc: ["tag_ids"], msg: "Input should be a valid list" }]],
    ["unbinding", { target_id: "x" }, [{ type: "value_error", loc: [], msg: "Value error, Tag IDs is required." }]],
    ["unbinding", { tag_ids: [] , tag_id: "" , target_id: "x" }, [{ type: "value_error", loc: [], msg: "Value error, Tag IDs is required." }]],
    ["unbinding", { tag_id: "a" }, [{ type: "missing", loc: ["target_id"], msg: "Field required" }]],
  ])("%s 422 for %j", async (kind, payload, expected) => {
    const { h } = await workspace();
    const res = await req("POST", `/v1/datasets/tags/${kind}`, h, payload);
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe("unprocessable_entity");
    expect(errs(res)).toEqual(expected);
  });
});

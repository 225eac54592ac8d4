// The admin API contract (README "Admin API"): import, list, get, export, delete, keys.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildTestApp, type TestApp } from "./support/app.js";
import { adminHeaders, chatAppYaml, createTenant, minimalWorkflowYaml } from "./support/factories.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t?.close());

const workflowYaml = minimalWorkflowYaml;

async function imp(payload: string, contentType = "application/yaml", tenantId?: string) {
  const tid = tenantId ?? (await createTenant(t));
  return t.app.inject({ method: "POST", url: `/admin/v1/apps/import?tenant_id=${tid}`, headers: { ...adminHeaders, "content-type": contentType }, payload });
}

describe("admin auth", () => {
  it("401 in Dify's envelope without the admin key", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Token x" }]) {
      const res = await t.app.inject({ method: "GET", url: "/admin/v1/apps", headers });
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe("unauthorized");
      expect(res.json().status).toBe(401);
      expect(typeof res.json().message).toBe("string");
    }
  });

  it("an app key is not an admin key", async () => {
    const created = await imp(chatAppYaml());
    const key = await t.app.inject({ method: "POST", url: `/admin/v1/apps/${created.json().id}/api-keys`, headers: adminHeaders });
    const res = await t.app.inject({ method: "GET", url: "/admin/v1/apps", headers: { authorization: `Bearer ${key.json().token}` } });
    expect(res.statusCode).toBe(401);
  });

  it("every admin route is 404 when ADMIN_API_KEY is unset", async () => {
    const off = await buildTestApp({ ADMIN_API_KEY: undefined });
    try {
      for (const [method, url] of [["GET", "/admin/v1/apps"], ["POST", "/admin/v1/apps/import"], ["POST", "/admin/v1/dataset-api-keys"]] as const) {
        const res = await off.app.inject({ method, url, headers: adminHeaders });
        expect(res.statusCode).toBe(404);
        expect(res.json().code).toBe("not_found");
      }
    } finally {
      await off.close();
    }
  });
});

describe("POST /admin/v1/apps/import", () => {
  it("accepts YAML bodies (application/yaml, text/yaml, text/plain) and JSON yaml_content → 201", async () => {
    for (const ct of ["application/yaml", "text/yaml", "text/plain"]) {
      const res = await imp(chatAppYaml(`App ${ct}`), ct);
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(Object.keys(body)).toEqual(["id", "name", "mode", "warnings"]);
      expect(body).toMatchObject({ name: `App ${ct}`, mode: "chat" });
      expect(Array.isArray(body.warnings)).toBe(true);
    }
    const tid = await createTenant(t);
    const res = await t.app.inject({ method: "POST", url: "/admin/v1/apps/import", headers: adminHeaders, payload: { yaml_content: workflowYaml, tenant_id: tid } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: "Flow", mode: "workflow" });
    // An older DSL version imports with Dify's "completed with warnings" note, nothing else.
    expect(res.json().warnings).toEqual([expect.stringMatching(/older than/)]);
  });

  it("400 with a message for invalid YAML, unsupported version or mode", async () => {
    const bad = [
      ["app: [unclosed", /yaml/i],
      ["app:\n  name: x\n  mode: nonsense\nversion: 0.1.5\nmodel_config: {}\n", /mode/i],
      ["app:\n  name: x\n  mode: chat\nversion: 9.0.0\nmodel_config: {}\n", /version/i],
      ["- just\n- a list\n", /./],
    ] as const;
    for (const [yaml, re] of bad) {
      const res = await imp(yaml);
      expect(res.statusCode, yaml).toBe(400);
      expect(res.json().code).toBe("invalid_param");
      expect(res.json().message).toMatch(re);
    }
    const empty = await t.app.inject({ method: "POST", url: "/admin/v1/apps/import", headers: adminHeaders, payload: {} });
    expect(empty.statusCode).toBe(400);
  });
});

describe("apps: list, get, export, delete", () => {
  it("round-trips through export and re-import", async () => {
    const tid = await createTenant(t);
    const id = (await imp(chatAppYaml("Roundtrip"), "application/yaml", tid)).json().id;
    const list = await t.app.inject({ method: "GET", url: `/admin/v1/apps?tenant_id=${tid}`, headers: adminHeaders });
    expect(list.json().data).toEqual([{ id, name: "Roundtrip", mode: "chat", created_at: expect.any(Number) }]);

    const one = await t.app.inject({ method: "GET", url: `/admin/v1/apps/${id}`, headers: adminHeaders });
    expect(one.json()).toMatchObject({ id, name: "Roundtrip", mode: "chat" });

    const exp = await t.app.inject({ method: "GET", url: `/admin/v1/apps/${id}/export`, headers: adminHeaders });
    expect(exp.statusCode).toBe(200);
    expect(exp.headers["content-type"]).toMatch(/yaml/);
    const doc = parse(exp.body);
    expect(doc.app.name).toBe("Roundtrip");
    expect(doc.model_config.pre_prompt).toBe("You are a helpful assistant for {{company}}.");

    const again = await imp(exp.body, "application/yaml", tid);
    expect(again.statusCode).toBe(201);
    const exp2 = await t.app.inject({ method: "GET", url: `/admin/v1/apps/${again.json().id}/export`, headers: adminHeaders });
    expect(parse(exp2.body).model_config).toEqual(doc.model_config);

    const del = await t.app.inject({ method: "DELETE", url: `/admin/v1/apps/${id}`, headers: adminHeaders });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe("");
    const gone = await t.app.inject({ method: "GET", url: `/admin/v1/apps/${id}`, headers: adminHeaders });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ code: "not_found", message: "App not found.", status: 404 });
  });
});

describe("API keys", () => {
  it("creates an app key shown once, lists prefixes, deletes it", async () => {
    const id = (await imp(chatAppYaml())).json().id;
    const created = await t.app.inject({ method: "POST", url: `/admin/v1/apps/${id}/api-keys`, headers: adminHeaders });
    expect(created.statusCode).toBe(201);
    const { id: keyId, token } = created.json();
    expect(token).toMatch(/^app-[A-Za-z0-9]{24}$/);

    const list = await t.app.inject({ method: "GET", url: `/admin/v1/apps/${id}/api-keys`, headers: adminHeaders });
    const rows = list.json().data;
    expect(rows).toHaveLength(1);
    expect(rows[0].id).toBe(keyId);
    expect(rows[0].token).not.toBe(token);
    expect(token.startsWith(rows[0].token.replace(/\.\.\.$/, ""))).toBe(true);

    // The key works, then stops working once deleted.
    expect((await t.app.inject({ method: "GET", url: "/v1/info", headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    const del = await t.app.inject({ method: "DELETE", url: `/admin/v1/apps/${id}/api-keys/${keyId}`, headers: adminHeaders });
    expect(del.statusCode).toBe(204);
    expect((await t.app.inject({ method: "GET", url: "/v1/info", headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });

  it("the database stores only a hash of the token", async () => {
    const id = (await imp(chatAppYaml())).json().id;
    const { token } = (await t.app.inject({ method: "POST", url: `/admin/v1/apps/${id}/api-keys`, headers: adminHeaders })).json();
    const rows = await t.prisma.$queryRawUnsafe<unknown[]>(`SELECT * FROM api_tokens WHERE app_id = $1::uuid`, id);
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it("keys for an unknown app → 404", async () => {
    const res = await t.app.inject({ method: "POST", url: "/admin/v1/apps/00000000-0000-4000-8000-000000000000/api-keys", headers: adminHeaders });
    expect(res.statusCode).toBe(404);
  });

  it("creates dataset keys, optionally scoped to listed datasets", async () => {
    const tid = await createTenant(t);
    const res = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: adminHeaders, payload: { tenant_id: tid } });
    expect(res.statusCode).toBe(201);
    expect(Object.keys(res.json())).toEqual(["id", "token"]);
    expect(res.json().token).toMatch(/^dataset-[A-Za-z0-9]{24}$/);

    const ds = await t.prisma.dataset.create({ data: { tenant_id: tid, name: "scoped" } });
    const scoped = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: adminHeaders, payload: { tenant_id: tid, dataset_ids: [ds.id] } });
    expect(scoped.statusCode).toBe(201);
    const row = await t.prisma.apiToken.findUnique({ where: { id: scoped.json().id } });
    expect(row?.dataset_ids).toEqual([ds.id]);

    const unknown = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: adminHeaders, payload: { tenant_id: tid, dataset_ids: ["00000000-0000-4000-8000-000000000000"] } });
    expect(unknown.statusCode).toBe(404);
    const invalid = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: adminHeaders, payload: { tenant_id: tid, dataset_ids: ["nope"] } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().code).toBe("invalid_param");
  });
});

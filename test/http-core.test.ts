// The HTTP core: Dify's index, health/ready, the error envelope for framework errors, and the
// request tolerance real clients need (client-compatibility A, C).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey } from "./support/factories.js";

let t: TestApp;
let auth: Record<string, string>;
beforeAll(async () => {
  t = await buildTestApp();
  auth = (await appWithKey(t)).auth;
});
afterAll(async () => t?.close());

const NOT_FOUND = {
  code: "not_found",
  message: "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
  status: 404,
};

describe("index and probes", () => {
  it("GET /v1/ answers like Dify's index, without auth", async () => {
    for (const url of ["/v1", "/v1/", "//v1//"]) {
      const res = await t.app.inject({ method: "GET", url });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ welcome: "Dify OpenAPI", api_version: "v1", server_version: t.config.SERVER_VERSION });
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
    }
  });

  it("writes JSON in Python's json.dumps style", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/" });
    expect(res.body).toBe(`{"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": "${t.config.SERVER_VERSION}"}\n`);
  });

  it("GET /health and /ready", async () => {
    expect((await t.app.inject({ method: "GET", url: "/health" })).json()).toEqual({ status: "ok" });
    const ready = await t.app.inject({ method: "GET", url: "/ready" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ok", postgres: true, redis: true });
  });
});

describe("framework errors in Dify's envelope", () => {
  it("unknown route → 404 not_found, before auth", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/no-such-route" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual(NOT_FOUND);
  });

  it("a non-UUID where Dify's route has <uuid:> → 404 even without a key", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/files/abc/preview" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual(NOT_FOUND);
  });

  it("wrong method → 405 method_not_allowed", async () => {
    const res = await t.app.inject({ method: "DELETE", url: "/v1/parameters" });
    expect(res.statusCode).toBe(405);
    expect(res.json()).toEqual({ code: "method_not_allowed", message: "The method is not allowed for the requested URL.", status: 405 });
  });

  it("malformed JSON → 400 bad_request with Dify's rewritten message", async () => {
    const res = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/json" }, payload: "{nope" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: "bad_request", message: "Invalid JSON payload received or JSON payload is empty.", status: 400 });
  });

  it("an unsupported content type → 415 unsupported_media_type", async () => {
    const res = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/x-www-form-urlencoded" }, payload: "a=b" });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({
      code: "unsupported_media_type",
      message: "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
      status: 415,
    });
  });

  it("a body over the limit → 413 in the envelope", async () => {
    const small = await buildTestApp({ BODY_LIMIT_MB: 0.001 });
    try {
      const res = await small.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/json" }, payload: JSON.stringify({ pad: "x".repeat(5000) }) });
      expect(res.statusCode).toBe(413);
      expect(res.json().code).toBe("request_entity_too_large");
      expect(res.json().status).toBe(413);
    } finally {
      await small.close();
    }
  });
});

describe("tolerance for real clients", () => {
  it("`//` in the path and a trailing slash reach the route", async () => {
    for (const url of ["/v1//parameters", "//v1/parameters", "/v1/parameters/"]) {
      const res = await t.app.inject({ method: "GET", url, headers: auth });
      expect(res.statusCode, url).toBe(200);
    }
  });

  it("Content-Type: application/json with an empty body on GET is fine", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/parameters", headers: { ...auth, "content-type": "application/json" }, payload: "" });
    expect(res.statusCode).toBe(200);
  });

  it("application/json; charset=utf-8 with an empty body on POST and DELETE is {}", async () => {
    const post = await t.app.inject({ method: "POST", url: "/admin/v1/dataset-api-keys", headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/json; charset=utf-8" }, payload: "" });
    expect(post.statusCode).toBe(201);
    const id = post.json().id;
    const del = await t.app.inject({ method: "DELETE", url: `/admin/v1/dataset-api-keys/${id}`, headers: { authorization: "Bearer test-admin-key-0123456789", "content-type": "application/json" }, payload: "" });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe("");
  });

  it("unknown query parameters are ignored", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/parameters?first_id=&pinned=false&foo=bar", headers: auth });
    expect(res.statusCode).toBe(200);
  });
});

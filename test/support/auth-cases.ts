// Auth cases shared by every route group (apps spec §3.1, datasets spec §2.1): call
// `authCases(...)` inside a describe block with the group's routes.
import { expect, it } from "vitest";
import type { TestApp } from "./app.js";

export interface RouteCall {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  payload?: unknown;
}

const MISSING = "Authorization header must be provided and start with 'Bearer'";
const SCHEME = "Authorization scheme must be 'Bearer'";
const INVALID = "Access token is invalid";

export function authCases(
  ctx: () => { t: TestApp; wrongKindKey: string },
  routes: RouteCall[],
): void {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["no Authorization header", {}, MISSING],
    ["a header without a space", { authorization: "Bearerxyz" }, MISSING],
    ["a non-Bearer scheme", { authorization: "Basic abc" }, SCHEME],
    ["an unknown key", { authorization: "Bearer app-unknownunknownunknown00" }, INVALID],
  ];
  for (const route of routes) {
    for (const [name, headers, message] of cases) {
      it(`${route.method} ${route.url}: 401 for ${name}`, async () => {
        const { t } = ctx();
        const res = await t.app.inject({ method: route.method, url: route.url, headers, ...(route.payload !== undefined ? { payload: route.payload as object } : {}) });
        expect(res.statusCode).toBe(401);
        expect(res.json()).toEqual({ code: "unauthorized", message, status: 401 });
        expect(res.headers["www-authenticate"]).toBe('Bearer realm="api"');
      });
    }
    it(`${route.method} ${route.url}: 401 for a key of the other kind`, async () => {
      const { t, wrongKindKey } = ctx();
      const res = await t.app.inject({ method: route.method, url: route.url, headers: { authorization: `Bearer ${wrongKindKey}` }, ...(route.payload !== undefined ? { payload: route.payload as object } : {}) });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ code: "unauthorized", message: INVALID, status: 401 });
    });
  }
}

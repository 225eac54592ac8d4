// Authentication for every route group, driven by each route's `config`:
//   config.auth = "app" | "dataset" | "admin" | "none"
//   config.user = { from: "body" | "query", required }   (apps spec §3.3)
// Order is Dify's (§3.3): key → app admission → body parse → `user` → end user → handler.
// The key check runs in onRequest, so a bad key wins over a bad body.
import { timingSafeEqual, createHash } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Errors } from "../../lib/errors.js";
import type { ApiKeyService } from "../../modules/auth/api-keys.js";
import { DEFAULT_USER, type EndUserRow, type EndUserService } from "../../modules/end-users/service.js";
import type { PrismaClient } from "../../lib/prisma.js";
import { jsonBody } from "./body.js";

export type AuthKind = "app" | "dataset" | "admin" | "none";

export interface AppContext {
  id: string;
  tenant_id: string;
  name: string;
  mode: string;
  description: string;
  author_name: string | null;
  app_model_config_id: string | null;
  workflow_id: string | null;
  max_active_requests: number | null;
}

export interface DatasetKeyContext {
  tenant_id: string;
  key_id: string;
  /** Empty = every dataset of the tenant (Dify); else only these (#37257). */
  dataset_ids: string[];
}

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: AuthKind;
    user?: { from: "body" | "query"; required: boolean };
  }
  interface FastifyRequest {
    app?: AppContext;
    datasetKey?: DatasetKeyContext;
    endUser?: EndUserRow;
  }
}

const MSG_MISSING = "Authorization header must be provided and start with 'Bearer'";
const MSG_SCHEME = "Authorization scheme must be 'Bearer'";
const MSG_INVALID = "Access token is invalid";

/** apps spec §3.1 steps 1–2: the bearer token, or Dify's 401. */
export function bearerToken(req: FastifyRequest): string {
  const header = req.headers.authorization;
  if (!header || !/\s/.test(header)) throw Errors.unauthorized(MSG_MISSING);
  const m = /^(\S+)\s+(.*)$/s.exec(header.trim());
  if (!m || m[1]!.toLowerCase() !== "bearer") throw Errors.unauthorized(MSG_SCHEME);
  return m[2]!.trim();
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export interface AuthDeps {
  prisma: PrismaClient;
  apiKeys: ApiKeyService;
  endUsers: EndUserService;
  adminApiKey: string | undefined;
}

export function registerAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest("app", undefined);
  app.decorateRequest("datasetKey", undefined);
  app.decorateRequest("endUser", undefined);

  app.addHook("onRequest", async (req) => {
    const kind = req.routeOptions.config?.auth ?? "none";
    if (kind === "app") await authApp(req, deps);
    else if (kind === "dataset") await authDataset(req, deps);
    else if (kind === "admin") authAdmin(req, deps.adminApiKey);
  });

  app.addHook("preValidation", async (req) => {
    const userCfg = req.routeOptions.config?.user;
    if (!userCfg || !req.app) return;
    let raw: unknown;
    if (userCfg.from === "body") raw = jsonBody(req).user;
    else raw = (req.query as Record<string, unknown> | undefined)?.user;
    const user = raw === undefined || raw === null ? "" : String(raw);
    if (user.trim() === "") {
      if (userCfg.required) throw Errors.invalidParam("Arg user must be provided.");
      req.endUser = await deps.endUsers.getOrCreate(req.app.tenant_id, req.app.id, DEFAULT_USER);
      return;
    }
    if (user.length > 255) throw Errors.invalidParam("Arg user must be at most 255 characters.");
    req.endUser = await deps.endUsers.getOrCreate(req.app.tenant_id, req.app.id, user);
  });
}

async function authApp(req: FastifyRequest, deps: AuthDeps): Promise<void> {
  const token = bearerToken(req);
  const key = await deps.apiKeys.lookup(token, "app");
  if (!key || !key.app_id) throw Errors.unauthorized(MSG_INVALID);
  // App admission, apps spec §3.2 (newest bodies).
  const app = await deps.prisma.app.findUnique({
    where: { id: key.app_id },
    select: {
      id: true, tenant_id: true, name: true, mode: true, description: true, author_name: true, status: true, enable_api: true,
      app_model_config_id: true, workflow_id: true, max_active_requests: true,
      tenant: { select: { status: true } },
    },
  });
  if (!app) throw Errors.forbidden("The app no longer exists.");
  if (app.status !== "normal") throw Errors.forbidden("The app's status is abnormal.");
  if (!app.enable_api) throw Errors.forbidden("The app's API service has been disabled.");
  if (app.tenant.status === "archive" || app.tenant.status === "archived") throw Errors.forbidden("The workspace's status is archived.");
  deps.apiKeys.touch(key.id);
  const { status: _s, enable_api: _e, tenant: _t, ...ctx } = app;
  req.app = ctx;
}

async function authDataset(req: FastifyRequest, deps: AuthDeps): Promise<void> {
  const token = bearerToken(req);
  const key = await deps.apiKeys.lookup(token, "dataset");
  if (!key) throw Errors.unauthorized(MSG_INVALID);
  const tenant = await deps.prisma.tenant.findUnique({ where: { id: key.tenant_id }, select: { status: true } });
  if (!tenant || tenant.status !== "normal") throw Errors.unauthorized("Tenant does not exist.");
  deps.apiKeys.touch(key.id);
  req.datasetKey = { tenant_id: key.tenant_id, key_id: key.id, dataset_ids: key.dataset_ids };
}

function authAdmin(req: FastifyRequest, adminKey: string | undefined): void {
  // Admin routes are not registered at all when ADMIN_API_KEY is unset (they answer 404).
  if (!adminKey) throw Errors.notFound();
  const header = req.headers.authorization;
  if (!header || !/\s/.test(header)) throw Errors.unauthorized(MSG_MISSING);
  const m = /^(\S+)\s+(.*)$/s.exec(header.trim());
  if (!m || m[1]!.toLowerCase() !== "bearer") throw Errors.unauthorized(MSG_SCHEME);
  if (!timingSafeEqual(digest(m[2]!.trim()), digest(adminKey))) throw Errors.unauthorized("Invalid admin API key.");
}

// GET /v1/info, /v1/parameters, /v1/meta, /v1/site (apps spec §12). All modes; `user` is not read.
import type { FastifyInstance } from "fastify";
import { Errors } from "../../lib/errors.js";
import { buildInfo, buildMeta, buildParameters, buildSite } from "../../modules/apps/app-info.js";
import type { Services } from "../services.js";

export function appInfoRoutes(app: FastifyInstance, s: Services): void {
  const limits = () => ({
    image: s.config.UPLOAD_IMAGE_FILE_SIZE_LIMIT,
    video: s.config.UPLOAD_VIDEO_FILE_SIZE_LIMIT,
    audio: s.config.UPLOAD_AUDIO_FILE_SIZE_LIMIT,
    file: s.config.UPLOAD_FILE_SIZE_LIMIT,
    workflowFileUploadLimit: s.config.WORKFLOW_FILE_UPLOAD_LIMIT,
  });

  app.get("/v1/info", { config: { auth: "app" } }, async (req) => {
    const ctx = req.app!;
    const tags = await s.prisma.tag.findMany({
      where: { tenant_id: ctx.tenant_id, type: "app", bindings: { some: { target_id: ctx.id } } },
      select: { name: true },
      orderBy: { created_at: "asc" },
    });
    return buildInfo(ctx, tags.map((t) => t.name));
  });

  app.get("/v1/parameters", { config: { auth: "app" } }, async (req) => {
    const cfg = await s.apps.config(req.app!.id);
    // No published workflow / model config → app_unavailable (§12.2).
    if (!cfg || (!cfg.modelConfig && !cfg.workflow)) throw Errors.appUnavailable();
    return buildParameters(cfg, limits());
  });

  app.get("/v1/meta", { config: { auth: "app" } }, async (req) => {
    const cfg = await s.apps.config(req.app!.id);
    if (!cfg) throw Errors.appUnavailable();
    return buildMeta(cfg);
  });

  app.get("/v1/site", { config: { auth: "app" } }, async (req) => {
    const row = await s.prisma.app.findUnique({ where: { id: req.app!.id } });
    if (!row || !row.enable_site) throw Errors.forbidden();
    return buildSite(row);
  });
}

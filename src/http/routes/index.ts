// GET /v1/ (Dify's index, apps spec §1.1), GET /health (liveness), GET /ready (Postgres + Redis).
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Services } from "../services.js";

export function indexRoutes(app: FastifyInstance, s: Services): void {
  app.get("/v1", {
    schema: { response: { 200: z.object({ welcome: z.string(), api_version: z.string(), server_version: z.string() }) } },
  }, async () => ({ welcome: "Dify OpenAPI", api_version: "v1", server_version: s.config.SERVER_VERSION }));

  app.get("/health", async () => ({ status: "ok" }));

  app.get("/ready", async (_req, reply) => {
    const checks = await Promise.all([
      s.prisma.$queryRaw`SELECT 1`.then(() => true, () => false),
      s.redis.ping().then((r) => r === "PONG", () => false),
    ]);
    const [postgres, redis] = checks;
    return reply.status(postgres && redis ? 200 : 503).send({ status: postgres && redis ? "ok" : "unavailable", postgres, redis });
  });
}

// buildApp(deps): the whole HTTP surface as a Fastify instance that never listens (tests drive
// it with inject or listen on port 0; the CLI listens). Plugin order matters: validation and
// errors first, then body parsing, then auth hooks, then routes.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { AppDeps } from "./deps.js";
import { registerErrorHandling } from "./plugins/errors.js";
import { registerBodyParsing } from "./plugins/body.js";
import { registerAuth } from "./plugins/auth.js";
import { registerValidation } from "./validation.js";
import { createServices, type Services } from "./services.js";
import { indexRoutes } from "./routes/index.js";
import { appInfoRoutes } from "./routes/app-info.js";
import { fileRoutes } from "./routes/files.js";
import { adminRoutes } from "./routes/admin.js";
import { conversationRoutes } from "./routes/conversations.js";
import { messageRoutes } from "./routes/messages.js";
import { generationRoutes } from "./routes/generation.js";
import { workflowRoutes } from "./routes/workflows.js";
import { datasetRoutes } from "./routes/datasets.js";
import { datasetTagRoutes } from "./routes/dataset-tags.js";
import { datasetMetadataRoutes } from "./routes/dataset-metadata.js";
import { workspaceModelRoutes } from "./routes/workspace-models.js";
import { datasetRetrievalRoutes } from "./routes/dataset-retrieval.js";
import { documentRoutes } from "./routes/documents.js";
import { documentDownloadRoutes } from "./routes/document-download.js";
import { segmentRoutes } from "./routes/segments.js";

export type ServifyApp = FastifyInstance & { services: Services };

export async function buildApp(deps: AppDeps): Promise<ServifyApp> {
  const { config } = deps;
  const maxUploadMb = Math.max(config.UPLOAD_FILE_SIZE_LIMIT, config.UPLOAD_IMAGE_FILE_SIZE_LIMIT, config.UPLOAD_VIDEO_FILE_SIZE_LIMIT, config.UPLOAD_AUDIO_FILE_SIZE_LIMIT);
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines only at debug/trace: at thousands of streams they cost more than they tell.
    logController: new LogController({ disableRequestLogging: config.LOG_LEVEL !== "debug" && config.LOG_LEVEL !== "trace" }),
    // `//` in paths and trailing slashes (client-compatibility A.1): matched, never redirected.
    routerOptions: { ignoreDuplicateSlashes: true, ignoreTrailingSlash: true, maxParamLength: 500 },
    bodyLimit: Math.round(config.BODY_LIMIT_MB * 1024 * 1024),
    trustProxy: true,
    return503OnClosing: true,
  });

  const services = createServices(deps);
  registerValidation(app);
  registerErrorHandling(app, { ignoreDuplicateSlashes: true });
  await registerBodyParsing(app, { bodyLimit: Math.round(config.BODY_LIMIT_MB * 1024 * 1024), fileSizeLimit: (maxUploadMb + 1) * 1024 * 1024 });
  registerAuth(app, { prisma: deps.prisma, apiKeys: services.apiKeys, endUsers: services.endUsers, adminApiKey: config.ADMIN_API_KEY });

  indexRoutes(app, services);
  appInfoRoutes(app, services);
  fileRoutes(app, services);
  conversationRoutes(app, services, { names: services.llm });
  messageRoutes(app, services, { suggestions: services.llm });
  generationRoutes(app, services);
  workflowRoutes(app, services);
  datasetRoutes(app, services);
  datasetTagRoutes(app, services);
  datasetMetadataRoutes(app, services);
  workspaceModelRoutes(app, services);
  datasetRetrievalRoutes(app, services);
  documentRoutes(app, services);
  documentDownloadRoutes(app, services);
  segmentRoutes(app, services);
  if (config.ADMIN_API_KEY) adminRoutes(app, services);

  return Object.assign(app as unknown as FastifyInstance, { services });
}

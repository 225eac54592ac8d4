// The services every route group receives: built once per app from AppDeps.
import type { AppDeps } from "./deps.js";
import { createApiKeyService } from "../modules/auth/api-keys.js";
import { createEndUserService } from "../modules/end-users/service.js";
import { createTenantService } from "../modules/tenants/service.js";
import { createFileService } from "../modules/files/service.js";
import { createGenerationService } from "../modules/generation/service.js";
import { createLlmServices } from "../modules/generation/llm-services.js";
import { createActiveRequestLimiter } from "../modules/generation/active-requests.js";
import { createWorkflowService } from "../modules/workflow/service.js";
import { createModelCatalog } from "../modules/models/catalog.js";
import { createDatasetService } from "../modules/datasets/service.js";
import { createTagService } from "../modules/datasets/tags.js";
import { createMetadataService } from "../modules/datasets/metadata.js";
import { createDocumentService } from "../modules/documents/service.js";
import { createSegmentService } from "../modules/segments/service.js";

export function createServices(deps: AppDeps) {
  const files = createFileService(deps);
  const modelCatalog = createModelCatalog(deps.models.registry);
  return {
    ...deps,
    apiKeys: createApiKeyService(deps.prisma),
    endUsers: createEndUserService(deps.prisma),
    tenants: createTenantService(deps.prisma, deps.config.DEFAULT_TENANT_NAME),
    files,
    generation: createGenerationService({ ...deps, files }),
    workflows: createWorkflowService({ ...deps, files }),
    llm: createLlmServices(deps),
    activeRequests: createActiveRequestLimiter(deps.redis, deps.config.QUEUE_PREFIX, deps.config.APP_MAX_ACTIVE_REQUESTS),
    modelCatalog,
    datasets: createDatasetService({ prisma: deps.prisma, producer: deps.producer, catalog: modelCatalog, logger: deps.logger }),
    datasetTags: createTagService(deps.prisma),
    datasetMetadata: createMetadataService({ prisma: deps.prisma, redis: deps.redis, lockPrefix: deps.config.QUEUE_PREFIX }),
    documents: createDocumentService({ ...deps, files, catalog: modelCatalog }),
    segments: createSegmentService(deps),
  };
}
export type Services = ReturnType<typeof createServices>;

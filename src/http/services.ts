// The services every route group receives: built once per app from AppDeps.
import type { AppDeps } from "./deps.js";
import { createApiKeyService } from "../modules/auth/api-keys.js";
import { createEndUserService } from "../modules/end-users/service.js";
import { createTenantService } from "../modules/tenants/service.js";
import { createFileService } from "../modules/files/service.js";
import { createGenerationService } from "../modules/generation/service.js";
import { createLlmServices } from "../modules/generation/llm-services.js";
import { createActiveRequestLimiter } from "../modules/generation/active-requests.js";

export function createServices(deps: AppDeps) {
  const files = createFileService(deps);
  return {
    ...deps,
    apiKeys: createApiKeyService(deps.prisma),
    endUsers: createEndUserService(deps.prisma),
    tenants: createTenantService(deps.prisma, deps.config.DEFAULT_TENANT_NAME),
    files,
    generation: createGenerationService({ ...deps, files }),
    llm: createLlmServices(deps),
    activeRequests: createActiveRequestLimiter(deps.redis, deps.config.QUEUE_PREFIX, deps.config.APP_MAX_ACTIVE_REQUESTS),
  };
}
export type Services = ReturnType<typeof createServices>;

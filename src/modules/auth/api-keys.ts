// API keys (apps spec §3.1, datasets spec §2): created by the admin API / CLI, stored hashed,
// looked up by the digest of the presented token.
import type { Db } from "../../lib/prisma.js";
import { generateToken, hashToken, sameDigest, tokenPrefix, type TokenType } from "../../lib/tokens.js";
import { toUnix } from "../../lib/time.js";

export interface ApiKeyRecord {
  id: string;
  tenant_id: string;
  app_id: string | null;
  type: string;
  dataset_ids: string[];
}

export function createApiKeyService(db: Db) {
  return {
    async create(input: { tenantId: string; type: TokenType; appId?: string; datasetIds?: string[] }): Promise<{ id: string; token: string }> {
      const token = generateToken(input.type);
      const row = await db.apiToken.create({
        data: {
          tenant_id: input.tenantId,
          app_id: input.appId ?? null,
          type: input.type,
          token_hash: hashToken(token),
          token_prefix: tokenPrefix(token),
          dataset_ids: input.datasetIds ?? [],
        },
        select: { id: true },
      });
      return { id: row.id, token };
    },

    /** The key of the given type, or null. A key of the other type is "unknown" (§3.1 step 3). */
    async lookup(token: string, type: TokenType): Promise<ApiKeyRecord | null> {
      const digest = hashToken(token);
      const row = await db.apiToken.findUnique({
        where: { token_hash: digest },
        select: { id: true, tenant_id: true, app_id: true, type: true, dataset_ids: true, token_hash: true },
      });
      if (!row || row.type !== type || !sameDigest(row.token_hash, digest)) return null;
      return { id: row.id, tenant_id: row.tenant_id, app_id: row.app_id, type: row.type, dataset_ids: row.dataset_ids };
    },

    async listForApp(appId: string) {
      const rows = await db.apiToken.findMany({ where: { app_id: appId, type: "app" }, orderBy: { created_at: "asc" } });
      return rows.map((r) => ({ id: r.id, type: r.type, token: r.token_prefix, last_used_at: toUnix(r.last_used_at), created_at: toUnix(r.created_at) }));
    },

    async listDatasetKeys(tenantId?: string) {
      const rows = await db.apiToken.findMany({ where: { type: "dataset", ...(tenantId ? { tenant_id: tenantId } : {}) }, orderBy: { created_at: "asc" } });
      return rows.map((r) => ({ id: r.id, type: r.type, token: r.token_prefix, dataset_ids: r.dataset_ids, last_used_at: toUnix(r.last_used_at), created_at: toUnix(r.created_at) }));
    },

    async delete(where: { id: string; appId?: string; type: TokenType }): Promise<boolean> {
      const r = await db.apiToken.deleteMany({ where: { id: where.id, type: where.type, ...(where.appId ? { app_id: where.appId } : {}) } });
      return r.count > 0;
    },

    /** Fire-and-forget, as Dify updates last_used_at asynchronously. */
    touch(id: string): void {
      void db.apiToken.update({ where: { id }, data: { last_used_at: new Date() } }).catch(() => undefined);
    },
  };
}
export type ApiKeyService = ReturnType<typeof createApiKeyService>;

// Tenants (workspaces). Servify has no console: the admin API and CLI work in one default
// tenant unless a tenant id is given, so a single-team install never has to think about them.
import type { Db } from "../../lib/prisma.js";

export function createTenantService(db: Db, defaultName: string) {
  return {
    async getOrCreateDefault(): Promise<{ id: string; name: string }> {
      const first = await db.tenant.findFirst({ orderBy: { created_at: "asc" }, select: { id: true, name: true } });
      if (first) return first;
      return db.tenant.create({ data: { name: defaultName }, select: { id: true, name: true } });
    },
    async resolve(tenantId?: string | null): Promise<{ id: string; name: string } | null> {
      if (!tenantId) return this.getOrCreateDefault();
      return db.tenant.findUnique({ where: { id: tenantId }, select: { id: true, name: true } });
    },
    create(name: string) {
      return db.tenant.create({ data: { name }, select: { id: true, name: true } });
    },
  };
}
export type TenantService = ReturnType<typeof createTenantService>;

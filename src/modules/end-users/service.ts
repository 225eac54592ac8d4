// End users (apps spec §3.4): one row per (app, `user` string); `DEFAULT-USER` is the shared
// anonymous identity used where `user` is optional and absent. All data scoping uses the row id.
import type { Db } from "../../lib/prisma.js";

export const DEFAULT_USER = "DEFAULT-USER";

export interface EndUserRow {
  id: string;
  tenant_id: string;
  app_id: string;
  session_id: string;
  is_anonymous: boolean;
}

export function createEndUserService(db: Db) {
  return {
    async getOrCreate(tenantId: string, appId: string, user: string): Promise<EndUserRow> {
      const select = { id: true, tenant_id: true, app_id: true, session_id: true, is_anonymous: true } as const;
      const found = await db.endUser.findUnique({ where: { app_id_session_id: { app_id: appId, session_id: user } }, select });
      if (found) return found;
      try {
        return await db.endUser.create({
          data: { tenant_id: tenantId, app_id: appId, type: "service-api", external_user_id: user, session_id: user, is_anonymous: user === DEFAULT_USER },
          select,
        });
      } catch (e) {
        // Two first requests of the same user raced on the unique key: the other one won.
        const again = await db.endUser.findUnique({ where: { app_id_session_id: { app_id: appId, session_id: user } }, select });
        if (again) return again;
        throw e;
      }
    },

    get(appId: string, id: string) {
      return db.endUser.findFirst({ where: { id, app_id: appId } });
    },
  };
}
export type EndUserService = ReturnType<typeof createEndUserService>;

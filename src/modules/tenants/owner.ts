// The workspace owner. Dify runs every dataset-key request "as the workspace owner" (datasets spec
// §2.1 step 4): `created_by`/`updated_by` on knowledge records are the owner's account id and
// `author_name` / the `uploader` built-in metadata are the owner's display name. Servify has no
// accounts, so each tenant has one implicit owner: a stable UUID derived from the tenant id (the
// same on every process, no table needed) whose display name is the tenant's name.
import { createHash } from "node:crypto";

// Fixed namespace so the derived ids never collide with ids derived for other purposes.
const OWNER_NAMESPACE = "servify:workspace-owner:";

/** UUIDv5-style (SHA-1, RFC 9562 §5.5) id of the tenant's implicit owner account. */
export function workspaceOwnerId(tenantId: string): string {
  const h = createHash("sha1").update(OWNER_NAMESPACE + tenantId.toLowerCase()).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// Knowledge tags (datasets spec §8, §3.8). Tags are workspace objects of type "knowledge"; a
// binding ties one tag to one dataset. A key scoped to some datasets sees the workspace's tags
// but counts and binds only within its scope.
import { Errors } from "../../lib/errors.js";
import { isUuid } from "../../lib/ids.js";
import type { PrismaClient } from "../../lib/prisma.js";
import { workspaceOwnerId } from "../tenants/owner.js";
import { PyValidator, has } from "./pydantic.js";
import type { DatasetScope } from "./service.js";

const TAG_EXISTS = "Tag name already exists";

const notFound = (msg: string) => Errors.notFound(msg);

// ---- request models (model_validate → 422, §1.2 rule 4)

export function parseTagCreate(body: Record<string, unknown>): { name: string } {
  const v = new PyValidator();
  const name = has(body, "name") ? v.str(body.name, ["name"], { min: 1, max: 50 }) : v.missing(["name"]);
  if (!v.ok) throw v.toError();
  return { name: name! };
}

export function parseTagUpdate(body: Record<string, unknown>): { name: string; tag_id: string } {
  const v = new PyValidator();
  const name = has(body, "name") ? v.str(body.name, ["name"], { min: 1, max: 50 }) : v.missing(["name"]);
  const tag_id = has(body, "tag_id") ? v.str(body.tag_id, ["tag_id"]) : v.missing(["tag_id"]);
  if (!v.ok) throw v.toError();
  return { name: name!, tag_id: tag_id! };
}

export function parseTagDelete(input: Record<string, unknown>): { tag_id: string } {
  const v = new PyValidator();
  const tag_id = has(input, "tag_id") ? v.str(input.tag_id, ["tag_id"]) : v.missing(["tag_id"]);
  if (!v.ok) throw v.toError();
  return { tag_id: tag_id! };
}

function readTagIds(v: PyValidator, raw: unknown): string[] | undefined {
  const list = v.list(raw, ["tag_ids"]);
  if (!list) return undefined;
  const out: string[] = [];
  let bad = false;
  list.forEach((x, i) => {
    const s = v.str(x, ["tag_ids", i]);
    if (s === undefined) bad = true;
    else out.push(s);
  });
  return bad ? undefined : out;
}

/** TagBindingPayload: tag_ids (≥ 1, field validator) + target_id. */
export function parseTagBinding(body: Record<string, unknown>): { tag_ids: string[]; target_id: string } {
  const v = new PyValidator();
  let tag_ids: string[] | undefined;
  if (!has(body, "tag_ids")) v.missing(["tag_ids"]);
  else {
    tag_ids = readTagIds(v, body.tag_ids);
    if (tag_ids && tag_ids.length === 0) v.add("value_error", ["tag_ids"], "Value error, Tag IDs is required.");
  }
  const target_id = has(body, "target_id") ? v.str(body.target_id, ["target_id"]) : v.missing(["target_id"]);
  if (!v.ok) throw v.toError();
  return { tag_ids: tag_ids!, target_id: target_id! };
}

/** TagUnbindingPayload: `tag_ids`, or the legacy single `tag_id` (§8, §14); the model-level
 * validator reports an empty result at loc []. */
export function parseTagUnbinding(body: Record<string, unknown>): { tag_ids: string[]; target_id: string } {
  const v = new PyValidator();
  const data = { ...body };
  // mode="before": a falsy tag_ids with a truthy tag_id becomes [tag_id].
  const emptyIds = !data.tag_ids || (Array.isArray(data.tag_ids) && data.tag_ids.length === 0);
  if (emptyIds && data.tag_id) data.tag_ids = [data.tag_id];
  const tag_ids = has(data, "tag_ids") ? readTagIds(v, data.tag_ids) : [];
  if (has(data, "tag_id") && data.tag_id !== null) v.str(data.tag_id, ["tag_id"]);
  const target_id = has(data, "target_id") ? v.str(data.target_id, ["target_id"]) : v.missing(["target_id"]);
  if (v.ok && tag_ids && tag_ids.length === 0) v.add("value_error", [], "Value error, Tag IDs is required.");
  if (!v.ok) throw v.toError();
  return { tag_ids: tag_ids!, target_id: target_id! };
}

export function createTagService(prisma: PrismaClient) {
  /** Bindings a key may count: within its scope. */
  const bindingScope = (scope: DatasetScope) => (scope.id ? { target_id: { in: scope.id.in } } : {});

  async function bindingCount(scope: DatasetScope, tagId: string): Promise<number> {
    return prisma.tagBinding.count({ where: { tag_id: tagId, ...bindingScope(scope) } });
  }

  /** `check_target_exists`: the dataset must be in the tenant (and scope), else 404 without a period. */
  async function requireTarget(scope: DatasetScope, targetId: string): Promise<string> {
    const id = targetId.toLowerCase();
    if (!isUuid(id) || (scope.id && !scope.id.in.includes(id))) throw notFound("Dataset not found");
    const ds = await prisma.dataset.findFirst({ where: { id, tenant_id: scope.tenant_id }, select: { id: true } });
    if (!ds) throw notFound("Dataset not found");
    return ds.id;
  }

  async function findTag(scope: DatasetScope, tagId: string) {
    if (!isUuid(tagId)) return null;
    return prisma.tag.findFirst({ where: { id: tagId.toLowerCase(), tenant_id: scope.tenant_id, type: "knowledge" } });
  }

  return {
    /** GET /datasets/tags: a bare array, newest first, binding_count as a string (§3.8). */
    async list(scope: DatasetScope) {
      const tags = await prisma.tag.findMany({
        where: { tenant_id: scope.tenant_id, type: "knowledge" },
        orderBy: [{ created_at: "desc" }, { id: "asc" }],
        select: { id: true, name: true, type: true, _count: { select: { bindings: { where: bindingScope(scope) } } } },
      });
      return tags.map((t) => ({ id: t.id, name: t.name, type: t.type, binding_count: String(t._count.bindings) }));
    },

    async create(scope: DatasetScope, name: string) {
      const dup = await prisma.tag.findFirst({ where: { tenant_id: scope.tenant_id, type: "knowledge", name }, select: { id: true } });
      if (dup) throw Errors.invalidParam(TAG_EXISTS);
      const tag = await prisma.tag.create({ data: { tenant_id: scope.tenant_id, type: "knowledge", name, created_by: workspaceOwnerId(scope.tenant_id) } });
      return { id: tag.id, name: tag.name, type: tag.type, binding_count: "0" };
    },

    /** Dify checks the name before the tag, so renaming a tag to its own name is refused too. */
    async update(scope: DatasetScope, tagId: string, name: string) {
      const dup = await prisma.tag.findFirst({ where: { tenant_id: scope.tenant_id, type: "knowledge", name }, select: { id: true } });
      if (dup) throw Errors.invalidParam(TAG_EXISTS);
      const tag = await findTag(scope, tagId);
      if (!tag) throw notFound("Tag not found");
      const updated = await prisma.tag.update({ where: { id: tag.id }, data: { name } });
      return { id: updated.id, name: updated.name, type: updated.type, binding_count: String(await bindingCount(scope, tag.id)) };
    },

    /** The tag and all its bindings (cascade). */
    async remove(scope: DatasetScope, tagId: string): Promise<void> {
      const tag = await findTag(scope, tagId);
      if (!tag) throw notFound("Tag not found");
      await prisma.tag.delete({ where: { id: tag.id } });
    },

    /** Existing pairs are skipped. Dify does not verify tag ids; here a binding needs a real tag
     * of the workspace (foreign key), so unknown ids are skipped as well. */
    async bind(scope: DatasetScope, tagIds: string[], targetId: string): Promise<void> {
      const target = await requireTarget(scope, targetId);
      const ids = [...new Set(tagIds.filter(isUuid).map((t) => t.toLowerCase()))];
      if (!ids.length) return;
      const tags = await prisma.tag.findMany({ where: { id: { in: ids }, tenant_id: scope.tenant_id, type: "knowledge" }, select: { id: true } });
      await prisma.tagBinding.createMany({
        data: tags.map((t) => ({ tenant_id: scope.tenant_id, tag_id: t.id, target_id: target, created_by: workspaceOwnerId(scope.tenant_id) })),
        skipDuplicates: true,
      });
    },

    async unbind(scope: DatasetScope, tagIds: string[], targetId: string): Promise<void> {
      const target = await requireTarget(scope, targetId);
      const ids = [...new Set(tagIds.filter(isUuid).map((t) => t.toLowerCase()))];
      if (!ids.length) return;
      await prisma.tagBinding.deleteMany({ where: { tag_id: { in: ids }, target_id: target, tenant_id: scope.tenant_id } });
    },

    /** GET /datasets/{id}/tags: `{"data": [{id, name}], "total": n}`. */
    async forDataset(tenantId: string, datasetId: string) {
      const rows = await prisma.tagBinding.findMany({
        where: { target_id: datasetId, tenant_id: tenantId, tag: { tenant_id: tenantId, type: "knowledge" } },
        orderBy: [{ tag: { created_at: "asc" } }, { tag_id: "asc" }],
        select: { tag: { select: { id: true, name: true } } },
      });
      return { data: rows.map((r) => ({ id: r.tag.id, name: r.tag.name })), total: rows.length };
    },
  };
}
export type TagService = ReturnType<typeof createTagService>;

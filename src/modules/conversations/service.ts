// Conversations of the Service API (apps spec §8.1, §8.3–8.6): list with Dify's cursor quirks,
// soft delete, rename / auto-name, and conversation variables.
//
// Visibility (§8): app_id = the key's app, from_source = "api", from_end_user_id = the resolved
// end user, is_deleted = false. Anything else is reported exactly like a missing row.
import { Prisma, type Conversation, type ConversationVariable } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import type { Db } from "../../lib/prisma.js";
import { pyStr } from "../../lib/pyrepr.js";
import { toUnix } from "../../lib/time.js";
import { renderInputs, type FileSigner } from "../messages/serialize.js";

/** Title generation for `auto_generate` renames (§8.4, §8.7); null = keep the current name. */
export interface NameGenerator {
  generateConversationName(appId: string, query: string): Promise<string | null>;
}

export const CONVERSATION_SORTS = ["created_at", "-created_at", "updated_at", "-updated_at"] as const;
export type ConversationSort = (typeof CONVERSATION_SORTS)[number];

export function visibleConversationWhere(appId: string, endUserId: string): Prisma.ConversationWhereInput {
  return { app_id: appId, from_source: "api", from_end_user_id: endUserId, is_deleted: false };
}

/** Conversation object, §8.1 key order. */
export function conversationResponse(c: Conversation, sign: FileSigner) {
  return {
    id: c.id,
    name: c.name,
    inputs: renderInputs(c.inputs ?? {}, sign),
    status: c.status,
    introduction: c.introduction ?? "",
    created_at: toUnix(c.created_at),
    updated_at: toUnix(c.updated_at),
  };
}

// ---- conversation variables (§8.5, §8.6)

/** The type shown to clients: integer and float are both `number`. */
const exposedType = (t: string) => (t === "integer" || t === "float" ? "number" : t);

/** Variable object; `value` is Python `str()` of the stored value (quirk), null stays null. */
export function variableResponse(v: ConversationVariable, updatedAt?: Date) {
  return {
    id: v.id,
    name: v.name,
    value_type: exposedType(v.value_type),
    value: v.value === null || v.value === undefined ? null : pyStr(v.value, { floats: v.value_type === "float" }),
    description: v.description,
    created_at: toUnix(v.created_at),
    updated_at: toUnix(updatedAt ?? v.updated_at),
  };
}

const NUMERIC = new Set(["number", "integer", "float"]);
const ARRAY_ELEMENT: Record<string, string> = {
  "array[string]": "string",
  "array[number]": "number",
  "array[object]": "object",
  "array[file]": "file",
  "array[boolean]": "boolean",
};
const isPlainObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

/** Dify's `SegmentType.is_valid` for JSON values (a Python bool is also an int; JSON is never a File). */
export function segmentIsValid(type: string, value: unknown): boolean {
  if (type === "array[any]" || type in ARRAY_ELEMENT) {
    if (!Array.isArray(value)) return false;
    if (value.length === 0 || type === "array[any]") return true;
    const el = ARRAY_ELEMENT[type]!;
    return value.every((v) => segmentIsValid(el, v));
  }
  if (type === "boolean") return typeof value === "boolean";
  if (NUMERIC.has(type)) return typeof value === "number" || typeof value === "boolean";
  if (type === "string" || type === "secret") return typeof value === "string";
  if (type === "object") return isPlainObject(value);
  if (type === "none") return value === null;
  return false; // file (JSON is never a File), unknown types
}

const ARRAY_OF: Record<string, string> = {
  string: "array[string]",
  number: "array[number]",
  integer: "array[number]",
  float: "array[number]",
  object: "array[object]",
  file: "array[file]",
  none: "array[any]",
  boolean: "array[boolean]",
};

/** Dify's `SegmentType.infer_segment_type` for JSON values (null when undeterminable). */
export function inferSegmentType(value: unknown): string | null {
  if (Array.isArray(value)) {
    const types = new Set<string>();
    for (const item of value) {
      const t = inferSegmentType(item);
      if (t === null) return null;
      types.add(t);
    }
    if (types.size !== 1) return [...types].every((t) => NUMERIC.has(t)) ? "array[number]" : "array[any]";
    const only = [...types][0]!;
    if (only.startsWith("array[")) return "array[any]";
    return ARRAY_OF[only] ?? null;
  }
  if (value === null) return "none";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  if (typeof value === "string") return "string";
  if (isPlainObject(value)) return "object";
  return null;
}

/** LIKE pattern escaping as Dify's variable_name filter. */
const likeEscape = (s: string) => s.replace(/\\/g, "\\\\").replace(/%/g, "\\%").replace(/_/g, "\\_");

export function createConversationService(db: Db) {
  async function getVisible(appId: string, endUserId: string, conversationId: string): Promise<Conversation> {
    const row = await db.conversation.findFirst({ where: { id: conversationId, ...visibleConversationWhere(appId, endUserId) } });
    if (!row) throw Errors.conversationNotFound();
    return row;
  }

  return {
    getVisible,

    /**
     * §8.1: rows strictly after the `lastId` row on the sort field (ties with the cursor row are
     * skipped, as in Dify); `hasMore` only computed for a full page. Comparisons run in SQL so
     * microsecond timestamps are compared exactly.
     */
    async list(input: { appId: string; endUserId: string; lastId: string | null; limit: number; sortBy: ConversationSort }) {
      const { appId, endUserId, lastId, limit, sortBy } = input;
      const desc = sortBy.startsWith("-");
      const field = Prisma.raw(desc ? sortBy.slice(1) : sortBy); // whitelisted by the type
      const op = Prisma.raw(desc ? "<" : ">");
      const dir = Prisma.raw(desc ? "DESC" : "ASC");
      const base = Prisma.sql`app_id = ${appId}::uuid AND from_source = 'api' AND from_end_user_id = ${endUserId}::uuid AND is_deleted = false`;
      let cursor = Prisma.empty;
      if (lastId) {
        const last = await db.conversation.findFirst({ where: { id: lastId, ...visibleConversationWhere(appId, endUserId) }, select: { id: true } });
        if (!last) throw Errors.lastConversationNotFound();
        cursor = Prisma.sql` AND ${field} ${op} (SELECT ${field} FROM conversations WHERE id = ${lastId}::uuid)`;
      }
      const ids = await db.$queryRaw<Array<{ id: string }>>`SELECT id FROM conversations WHERE ${base}${cursor} ORDER BY ${field} ${dir}, id ${dir} LIMIT ${limit}`;
      const rows = await db.conversation.findMany({ where: { id: { in: ids.map((r) => r.id) } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      const data = ids.map((r) => byId.get(r.id)).filter((r): r is Conversation => r !== undefined);
      let hasMore = false;
      if (ids.length === limit && limit > 0) {
        const lastRow = ids[ids.length - 1]!.id;
        const more = await db.$queryRaw<Array<{ more: boolean }>>`SELECT EXISTS (SELECT 1 FROM conversations WHERE ${base}${cursor} AND ${field} ${op} (SELECT ${field} FROM conversations WHERE id = ${lastRow}::uuid)) AS more`;
        hasMore = more[0]?.more === true;
      }
      return { data, hasMore };
    },

    /** §8.3: soft delete (hidden from every listing). */
    async softDelete(appId: string, endUserId: string, conversationId: string): Promise<void> {
      const c = await getVisible(appId, endUserId, conversationId);
      await db.conversation.update({ where: { id: c.id }, data: { is_deleted: true, updated_at: new Date() } });
    },

    /** §8.4 manual rename: sets updated_at. */
    async rename(appId: string, endUserId: string, conversationId: string, name: string): Promise<Conversation> {
      const c = await getVisible(appId, endUserId, conversationId);
      return db.conversation.update({ where: { id: c.id }, data: { name, updated_at: new Date() } });
    },

    /**
     * §8.4 auto_generate: the first query of the conversation goes to the generator; no message →
     * 400 invalid_param with an empty message; generator failures keep the old name (when
     * `failOpen`); updated_at is not touched.
     */
    async autoName(appId: string, endUserId: string, conversationId: string, names: NameGenerator, opts: { failOpen: boolean; onError?: (e: unknown) => void }): Promise<Conversation> {
      const c = await getVisible(appId, endUserId, conversationId);
      const first = await db.message.findFirst({
        where: { app_id: appId, conversation_id: c.id },
        orderBy: [{ created_at: "asc" }, { id: "asc" }],
        select: { query: true },
      });
      if (!first) throw Errors.invalidParam("");
      let name: string | null = null;
      try {
        name = await names.generateConversationName(appId, first.query);
      } catch (e) {
        if (!opts.failOpen) throw e;
        opts.onError?.(e);
      }
      if (name === null || name === undefined) return c;
      return db.conversation.update({ where: { id: c.id }, data: { name } });
    },

    /**
     * §8.5: ordered by created_at; cursor = strictly later created_at than the `lastId` variable
     * (looked up under the same name filter; unknown → 400 invalid_param ""); limit+1 for has_more.
     */
    async listVariables(input: { appId: string; endUserId: string; conversationId: string; lastId: string | null; limit: number; variableName: string | null }) {
      const c = await getVisible(input.appId, input.endUserId, input.conversationId);
      const nameFilter = input.variableName
        ? Prisma.sql` AND name ILIKE ${`%${likeEscape(input.variableName)}%`} ESCAPE '\\'`
        : Prisma.empty;
      const base = Prisma.sql`app_id = ${input.appId}::uuid AND conversation_id = ${c.id}::uuid${nameFilter}`;
      let cursor = Prisma.empty;
      if (input.lastId) {
        const found = await db.$queryRaw<Array<{ id: string }>>`SELECT id FROM conversation_variables WHERE ${base} AND id = ${input.lastId}::uuid`;
        if (found.length === 0) throw Errors.invalidParam("");
        cursor = Prisma.sql` AND created_at > (SELECT created_at FROM conversation_variables WHERE id = ${input.lastId}::uuid AND conversation_id = ${c.id}::uuid)`;
      }
      const ids = await db.$queryRaw<Array<{ id: string }>>`SELECT id FROM conversation_variables WHERE ${base}${cursor} ORDER BY created_at ASC, id ASC LIMIT ${input.limit + 1}`;
      const hasMore = ids.length > input.limit;
      const page = ids.slice(0, input.limit).map((r) => r.id);
      const rows = await db.conversationVariable.findMany({ where: { conversation_id: c.id, id: { in: page } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      const data = page.map((id) => byId.get(id)).filter((r): r is ConversationVariable => r !== undefined);
      return { data, hasMore };
    },

    /** §8.6: the new value must fit the declared type (integer variables take any number). */
    async updateVariable(input: { appId: string; endUserId: string; conversationId: string; variableId: string; value: unknown }) {
      const c = await getVisible(input.appId, input.endUserId, input.conversationId);
      const v = await db.conversationVariable.findFirst({ where: { app_id: input.appId, conversation_id: c.id, id: input.variableId } });
      if (!v) throw Errors.conversationVariableNotFound();
      const expected = v.value_type === "integer" ? "number" : v.value_type;
      if (!segmentIsValid(expected, input.value)) {
        const inferred = inferSegmentType(input.value);
        throw Errors.badRequest(`Type mismatch: variable '${v.name}' expects ${expected}, but got ${inferred ?? "unknown"} type`);
      }
      const now = new Date();
      const value = input.value === null ? Prisma.JsonNull : (input.value as Prisma.InputJsonValue);
      const row = await db.conversationVariable.update({
        where: { id_conversation_id: { id: v.id, conversation_id: c.id } },
        data: { value, updated_at: now },
      });
      return row;
    },
  };
}
export type ConversationService = ReturnType<typeof createConversationService>;

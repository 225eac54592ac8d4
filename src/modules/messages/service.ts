// Messages of the Service API (apps spec §8.2, §8.8, §9): history pages, suggested questions,
// end-user feedback and the app-wide feedback list.
//
// A message is visible when app_id = the key's app, from_source = "api", from_end_user_id = the
// resolved end user, and its conversation (if any) is not deleted. Anything else is reported
// exactly like a missing row. (Dify itself does not look at the conversation for feedback, but
// it deletes a deleted conversation's messages asynchronously, so they disappear either way.)
import { Prisma, type Message, type MessageFeedback, type UploadFile } from "../../generated/prisma/client.js";
import { Errors } from "../../lib/errors.js";
import type { Db } from "../../lib/prisma.js";
import { toPyIso } from "../../lib/time.js";
import type { AppConfig } from "../apps/service.js";
import { visibleConversationWhere } from "../conversations/service.js";
import type { MessageParts } from "./serialize.js";

/** Suggested follow-up questions for a message (§8.8); model failures should yield []. */
export interface SuggestionGenerator {
  suggestedQuestions(appId: string, messageId: string): Promise<string[]>;
}

export function visibleMessageWhere(appId: string, endUserId: string): Prisma.MessageWhereInput {
  return {
    app_id: appId,
    from_source: "api",
    from_end_user_id: endUserId,
    OR: [{ conversation_id: null }, { conversation: { is: { is_deleted: false } } }],
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Whether "suggested questions after answer" is on (§8.8). Basic modes read the model config
 * (`enabled` must not be False, as Dify's `.get("enabled", False) is False`); advanced-chat reads
 * the published workflow's features. `null` = advanced-chat app without a published workflow
 * (Dify answers an empty list).
 */
export function suggestionsEnabled(cfg: AppConfig | null): boolean | null {
  if (!cfg) return false;
  if (cfg.mode === "advanced-chat") {
    if (!cfg.workflow) return null;
    const f = cfg.workflow.features?.suggested_questions_after_answer;
    return isObj(f) && Boolean(f.enabled);
  }
  const f = cfg.modelConfig?.suggested_questions_after_answer;
  if (!isObj(f) || !("enabled" in f)) return false;
  return f.enabled !== false;
}

/** GET /app/feedbacks item (`MessageFeedback.to_dict`), naive ISO timestamps (§9.2). */
export function feedbackResponse(f: MessageFeedback) {
  return {
    id: f.id,
    app_id: f.app_id,
    conversation_id: f.conversation_id,
    message_id: f.message_id,
    rating: f.rating,
    content: f.content,
    from_source: f.from_source,
    from_end_user_id: f.from_end_user_id,
    from_account_id: null,
    created_at: toPyIso(f.created_at),
    updated_at: toPyIso(f.updated_at),
  };
}

export function createMessageService(db: Db) {
  async function getVisible(appId: string, endUserId: string, messageId: string): Promise<Message> {
    const row = await db.message.findFirst({ where: { id: messageId, ...visibleMessageWhere(appId, endUserId) } });
    if (!row) throw Errors.messageNotFound();
    return row;
  }

  /** Files, upload rows, the end user's own feedback and agent thoughts of each message. */
  async function loadParts(messages: Message[], endUserId: string): Promise<Map<string, MessageParts>> {
    const ids = messages.map((m) => m.id);
    const [files, feedbacks, thoughts] = await Promise.all([
      db.messageFile.findMany({ where: { message_id: { in: ids } }, orderBy: [{ created_at: "asc" }, { id: "asc" }] }),
      db.messageFeedback.findMany({ where: { message_id: { in: ids }, from_source: "user", from_end_user_id: endUserId }, orderBy: { created_at: "asc" } }),
      db.messageAgentThought.findMany({ where: { message_id: { in: ids } }, orderBy: { position: "asc" } }),
    ]);
    const uploadIds = [...new Set(files.map((f) => f.upload_file_id).filter((x): x is string => !!x))];
    const uploads = uploadIds.length ? await db.uploadFile.findMany({ where: { id: { in: uploadIds } } }) : [];
    const uploadMap = new Map<string, UploadFile>(uploads.map((u) => [u.id, u]));
    const out = new Map<string, MessageParts>();
    for (const m of messages) out.set(m.id, { files: [], uploads: uploadMap, feedback: null, thoughts: [] });
    for (const f of files) out.get(f.message_id)?.files.push(f);
    for (const t of thoughts) out.get(t.message_id)?.thoughts.push(t);
    for (const fb of feedbacks) {
      const p = out.get(fb.message_id);
      if (p && !p.feedback) p.feedback = { rating: fb.rating };
    }
    return out;
  }

  return {
    getVisible,
    loadParts,

    /**
     * §8.2: the `limit` newest messages older than `firstId` (exclusive), or the newest overall,
     * returned oldest → newest; `hasMore` = older messages exist. Empty conversation id → empty page.
     */
    async listPage(input: { appId: string; endUserId: string; conversationId: string; firstId: string | null; limit: number }) {
      const { appId, endUserId, conversationId, firstId, limit } = input;
      if (!conversationId) return { data: [] as Message[], hasMore: false };
      const conv = await db.conversation.findFirst({ where: { id: conversationId, ...visibleConversationWhere(appId, endUserId) }, select: { id: true } });
      if (!conv) throw Errors.conversationNotFound();
      let cursor = Prisma.empty;
      if (firstId) {
        const first = await db.message.findFirst({ where: { conversation_id: conv.id, id: firstId }, select: { id: true } });
        if (!first) throw Errors.firstMessageNotFound();
        cursor = Prisma.sql` AND created_at < (SELECT created_at FROM messages WHERE id = ${firstId}::uuid) AND id <> ${firstId}::uuid`;
      }
      const ids = await db.$queryRaw<Array<{ id: string }>>`SELECT id FROM messages WHERE conversation_id = ${conv.id}::uuid${cursor} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
      const hasMore = ids.length > limit;
      const pageIds = ids.slice(0, limit).map((r) => r.id).reverse();
      const rows = await db.message.findMany({ where: { id: { in: pageIds } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      const data = pageIds.map((id) => byId.get(id)).filter((r): r is Message => r !== undefined);
      return { data, hasMore };
    },

    /**
     * §9.1: create, overwrite or (rating null) delete the end user's feedback on a visible message.
     */
    async setFeedback(input: { appId: string; tenantId: string; endUserId: string; messageId: string; rating: "like" | "dislike" | null; content: string | null }) {
      const msg = await getVisible(input.appId, input.endUserId, input.messageId);
      const existing = await db.messageFeedback.findFirst({
        where: { message_id: msg.id, from_source: "user", from_end_user_id: input.endUserId },
        orderBy: { created_at: "asc" },
      });
      if (!input.rating && existing) {
        await db.messageFeedback.delete({ where: { id: existing.id } });
      } else if (input.rating && existing) {
        await db.messageFeedback.update({ where: { id: existing.id }, data: { rating: input.rating, content: input.content, updated_at: new Date() } });
      } else if (!input.rating) {
        throw Errors.invalidParam("rating cannot be None when feedback not exists");
      } else {
        await db.messageFeedback.create({
          data: {
            tenant_id: input.tenantId,
            app_id: input.appId,
            conversation_id: msg.conversation_id,
            message_id: msg.id,
            rating: input.rating,
            content: input.content,
            from_source: "user",
            from_end_user_id: input.endUserId,
          },
        });
      }
    },

    /** §9.2: every feedback of the app, newest first (created_at desc, id desc), offset pages. */
    async listAppFeedbacks(appId: string, page: number, limit: number): Promise<MessageFeedback[]> {
      const skip = (page - 1) * limit;
      if (skip > 2_147_483_647) return []; // far past the end (Prisma's skip is a 32-bit int)
      return db.messageFeedback.findMany({
        where: { app_id: appId },
        orderBy: [{ created_at: "desc" }, { id: "desc" }],
        skip,
        take: limit,
      });
    },
  };
}
export type MessageService = ReturnType<typeof createMessageService>;

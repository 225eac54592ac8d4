// Messages and feedback (apps spec §8.2, §8.8, §9):
//   GET  /v1/messages
//   GET  /v1/messages/{message_id}/suggested
//   POST /v1/messages/{message_id}/feedbacks
//   GET  /v1/app/feedbacks
// Path ids only match UUIDs (anything else is the generic 404 before auth, §1.2). Mode checks run
// in the handler, after the end user was resolved (§3.3); feedback has none (§4).
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { isDifyError, Errors } from "../../lib/errors.js";
import { normUuid, uuidParam } from "../../lib/ids.js";
import { messageResponse } from "../../modules/messages/serialize.js";
import {
  createMessageService,
  feedbackResponse,
  suggestionsEnabled,
  type SuggestionGenerator,
} from "../../modules/messages/service.js";
import type { Services } from "../services.js";
import { jsonBody } from "../plugins/body.js";
import { parseOr400 } from "../validation.js";
import { CHAT_FAMILY, queryInt, queryUuidOrEmpty } from "./conversations.js";

const messageListQuery = z
  .object({
    conversation_id: queryUuidOrEmpty(true),
    first_id: queryUuidOrEmpty(false),
    limit: queryInt(20, 1, 100),
  })
  .loose();

const feedbackBody = z
  .object({
    rating: z.enum(["like", "dislike"], { error: "Input should be 'like' or 'dislike'" }).nullable().optional(),
    content: z.string({ error: "Input should be a valid string" }).nullable().optional(),
  })
  .loose();

const feedbackListQuery = z
  .object({
    page: queryInt(1, 1, Number.MAX_SAFE_INTEGER),
    limit: queryInt(20, 1, 101),
  })
  .loose();

const noUnwiredSuggestions: SuggestionGenerator = {
  suggestedQuestions() {
    throw Errors.internalServerError();
  },
};

export function messageRoutes(app: FastifyInstance, s: Services, deps: { suggestions?: SuggestionGenerator } = {}): void {
  const messages = createMessageService(s.prisma);
  const sign = (id: string) => s.files.signedUrl(id);
  const suggestions = deps.suggestions ?? noUnwiredSuggestions;

  // GET /v1/messages
  app.get("/v1/messages", {
    config: { auth: "app", user: { from: "query", required: false } },
  }, async (req) => {
    if (!CHAT_FAMILY.has(req.app!.mode)) throw Errors.notChatApp();
    const q = parseOr400(messageListQuery, req.query ?? {}, "MessageListQuery");
    const endUserId = req.endUser!.id;
    const { data, hasMore } = await messages.listPage({
      appId: req.app!.id,
      endUserId,
      conversationId: q.conversation_id ?? "",
      firstId: q.first_id || null,
      limit: q.limit,
    });
    const parts = await messages.loadParts(data, endUserId);
    return {
      limit: q.limit,
      has_more: hasMore,
      data: data.map((m) => messageResponse(m, parts.get(m.id)!, sign)),
    };
  });

  // GET /v1/messages/{message_id}/suggested
  app.get(`/v1/messages/${uuidParam("message_id")}/suggested`, {
    config: { auth: "app", user: { from: "query", required: true } },
  }, async (req) => {
    const ctx = req.app!;
    if (!CHAT_FAMILY.has(ctx.mode)) throw Errors.notChatApp();
    const { message_id } = req.params as { message_id: string };
    const msg = await messages.getVisible(ctx.id, req.endUser!.id, normUuid(message_id));
    const enabled = suggestionsEnabled(await s.apps.config(ctx.id));
    if (enabled === null) return { result: "success", data: [] };
    if (!enabled) throw Errors.suggestedQuestionsDisabled();
    let questions: string[];
    try {
      questions = await suggestions.suggestedQuestions(ctx.id, msg.id);
    } catch (e) {
      // Dify: HTTP errors pass through, anything else is the catch-all 500.
      if (isDifyError(e)) throw e;
      req.log.error({ err: e }, "suggested questions failed");
      throw Errors.internalServerError();
    }
    return { result: "success", data: questions };
  });

  // POST /v1/messages/{message_id}/feedbacks
  app.post(`/v1/messages/${uuidParam("message_id")}/feedbacks`, {
    config: { auth: "app", user: { from: "body", required: true } },
  }, async (req) => {
    const { message_id } = req.params as { message_id: string };
    const body = parseOr400(feedbackBody, jsonBody(req), "MessageFeedbackPayload");
    await messages.setFeedback({
      appId: req.app!.id,
      tenantId: req.app!.tenant_id,
      endUserId: req.endUser!.id,
      messageId: normUuid(message_id),
      rating: body.rating ?? null,
      content: body.content ?? null,
    });
    return { result: "success" };
  });

  // GET /v1/app/feedbacks
  app.get("/v1/app/feedbacks", {
    config: { auth: "app" },
  }, async (req) => {
    const q = parseOr400(feedbackListQuery, req.query ?? {}, "FeedbackListQuery");
    const rows = await messages.listAppFeedbacks(req.app!.id, q.page, q.limit);
    return { data: rows.map(feedbackResponse) };
  });
}

// Conversation titles and suggested questions for the HTTP routes (apps spec §8.4, §8.8): which
// model to ask and what history to show it; the prompts themselves live in llm-tasks.ts.
import type { PrismaClient } from "../../lib/prisma.js";
import type { AppService } from "../apps/service.js";
import type { NameGenerator } from "../conversations/service.js";
import type { SuggestionGenerator } from "../messages/service.js";
import type { Models } from "../models/index.js";
import { generateConversationName, generateSuggestedQuestions } from "./llm-tasks.js";

type ModelRef = { provider: string; name: string; mode?: "chat" | "completion"; completion_params?: Record<string, unknown> };

const TIMEOUT_MS = 30_000;

export function createLlmServices(deps: { prisma: PrismaClient; apps: AppService; models: Models }): NameGenerator & SuggestionGenerator {
  const { prisma, apps, models } = deps;

  /** The app's own model for basic modes; graph apps use the system model of the models file. */
  async function appModel(appId: string): Promise<ModelRef> {
    const cfg = await apps.config(appId);
    const m = (cfg?.modelConfig?.model ?? null) as ModelRef | null;
    if (m?.name) return m;
    return models.systemModel({ provider: "langgenius/openai/openai", name: "gpt-4o-mini" }) as ModelRef;
  }

  return {
    async generateConversationName(appId: string, query: string): Promise<string | null> {
      return generateConversationName(models, await appModel(appId), query, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    },

    async suggestedQuestions(appId: string, messageId: string): Promise<string[]> {
      const message = await prisma.message.findUnique({ where: { id: messageId }, select: { conversation_id: true, created_at: true } });
      if (!message?.conversation_id) return [];
      // The last three turns up to this message, oldest first (Dify: ≤3 turns / ≤3000 tokens).
      const turns = await prisma.message.findMany({
        where: { conversation_id: message.conversation_id, created_at: { lte: message.created_at } },
        orderBy: { created_at: "desc" },
        take: 3,
        select: { query: true, answer: true },
      });
      const history = turns
        .reverse()
        .map((t) => `Human: ${t.query}\nAssistant: ${t.answer}`)
        .join("\n");
      const cfg = await apps.config(appId);
      const feature = ((cfg?.modelConfig?.suggested_questions_after_answer ?? (cfg?.workflow?.features as Record<string, unknown> | undefined)?.suggested_questions_after_answer) ?? {}) as {
        prompt?: string;
        model?: ModelRef & { completion_params?: Record<string, unknown> };
      };
      const model = feature.model?.name ? feature.model : await appModel(appId);
      return generateSuggestedQuestions(models, model, history, {
        instructionPrompt: feature.prompt,
        completionParams: feature.model?.completion_params,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    },
  };
}

// The worker side of completion and chat runs (DESIGN §3 step 3; dsl-and-workflow §2.3):
// moderation → prompt → model stream → output moderation → persist → message_end. Every frame is
// published to the task's event stream; the terminal frame is published only after the rows it
// describes are committed, so a GET /v1/messages right after message_end sees the message.
import type { Config } from "../../config/index.js";
import type { CodeSandbox, KnowledgeRetriever, WorkflowFile } from "../workflow/types.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import { toUnix } from "../../lib/time.js";
import type { AppRunJob } from "../../queue/contract.js";
import type { RunEvents } from "../../queue/run-events.js";
import type { AppService } from "../apps/service.js";
import { loadMessageImages } from "../files/message-files.js";
import type { Models } from "../models/index.js";
import { toErrorFrameParts } from "../models/index.js";
import { generateConversationName } from "./llm-tasks.js";
import { messageFrames, type AppMode } from "./frames.js";
import { buildBasicPrompt, checkKeywordModeration, keywordModerationInputTexts, type HistoryTurn } from "./prompt.js";
import { retrieveDatasetContext, type DatasetContext } from "./dataset-context.js";
import type { Storage } from "../../lib/storage.js";

export interface RunnerDeps {
  config: Config;
  /** Services graph nodes use (knowledge-retrieval, document-extractor, code); see src/runtime.ts. */
  retrieval: KnowledgeRetriever | null;
  extractText: ((file: WorkflowFile) => Promise<string>) | null;
  sandbox: CodeSandbox | null;
  prisma: PrismaClient;
  events: RunEvents;
  models: Models;
  apps: AppService;
  storage: Storage;
  logger: Logger;
}

interface ModelRef {
  provider: string;
  name: string;
  mode?: "chat" | "completion";
  completion_params?: Record<string, unknown>;
}

const NAMING_TIMEOUT_MS = 30_000;

/** Dify streams preset replies (moderation, annotations) one character at a time (apps spec §6.4). */
async function streamPreset(events: RunEvents, taskId: string, text: string, frame: (s: string) => Record<string, unknown>) {
  for (const ch of Array.from(text)) await events.publish(taskId, frame(ch));
}

export async function runBasicApp(deps: RunnerDeps, job: AppRunJob): Promise<void> {
  const { prisma, events, models, logger } = deps;
  const log = logger.child({ taskId: job.taskId, appId: job.appId });
  const message = await prisma.message.findUnique({ where: { id: job.messageId! } });
  if (!message) {
    log.warn("message vanished before its run started");
    await events.end(job.taskId);
    return;
  }
  const mode = job.kind as AppMode;
  const frames = messageFrames({
    mode,
    taskId: job.taskId,
    messageId: message.id,
    conversationId: mode === "completion" ? null : message.conversation_id,
    createdAt: toUnix(message.created_at)!,
  });
  // A re-delivered job whose run already finished: nothing to redo.
  if (message.message_metadata !== null) {
    await events.end(job.taskId);
    return;
  }

  const stop = await events.stopSignal(job.taskId);
  let answer = "";
  let failed = false;
  try {
    const cfg = await deps.apps.config(job.appId);
    const modelConfig = cfg?.modelConfig ?? {};
    const model = (modelConfig.model ?? {}) as ModelRef;
    const inputs = message.inputs as Record<string, unknown>;
    const query = message.query;
    const endUser = await prisma.endUser.findUnique({ where: { id: job.endUserId }, select: { session_id: true } });

    // Conversation history (chat only), oldest first; the prompt builder applies the window.
    const history: HistoryTurn[] = [];
    if (mode !== "completion" && message.conversation_id) {
      const previous = await prisma.message.findMany({
        where: { conversation_id: message.conversation_id, created_at: { lte: message.created_at }, id: { not: message.id }, status: "normal", answer: { not: "" } },
        orderBy: { created_at: "asc" },
        select: { query: true, answer: true },
      });
      for (const p of previous) history.push({ query: p.query, answer: p.answer });
    }

    const moderation = (modelConfig.sensitive_word_avoidance ?? {}) as Record<string, unknown>;

    // Input moderation (dsl-and-workflow §2.3 step 3): a flagged input answers with the preset.
    const inputVerdict = await moderate(deps, moderation, "inputs", keywordModerationInputTexts(inputs, query));
    let usage: Record<string, unknown>;
    let promptRecord: unknown = [];
    let rag: DatasetContext = { context: null, retrieverResources: [] };
    if (inputVerdict.flagged) {
      answer = inputVerdict.presetResponse;
      await streamPreset(events, job.taskId, answer, (c) => frames.message(c));
      usage = models.usage(model, 0, 0, (Date.now() - job.acceptedAt) / 1000);
    } else {
      // Remote images are fetched under the outbound policy and sent inline, so the model
      // provider never needs to reach a URL the end user chose.
      const images = await loadMessageImages({ prisma, storage: deps.storage, config: deps.config }, message.id, modelConfig.file_upload);
      // Knowledge retrieval (dsl-and-workflow §2.3 step 6, §2.7): context + citations.
      const app = await prisma.app.findUnique({ where: { id: job.appId }, select: { tenant_id: true } });
      if (app) {
        rag = await retrieveDatasetContext(
          { prisma, models, logger: log },
          { appId: job.appId, tenantId: app.tenant_id, appMode: mode === "completion" ? "completion" : "chat", modelConfig, inputs, query, model, user: endUser?.session_id, signal: stop.signal },
        );
      }
      const built = buildBasicPrompt({
        appMode: mode === "completion" ? "completion" : "chat",
        modelConfig,
        modelMode: model.mode === "completion" ? "completion" : "chat",
        inputs,
        query,
        history,
        context: rag.context,
        images,
      });
      promptRecord = "messages" in built ? built.messages : [{ role: "user", text: built.prompt }];
      let promptTokens = 0;
      let completionTokens = 0;
      for await (const ev of models.chatStream({
        model,
        ...("messages" in built ? { messages: built.messages } : { messages: [], prompt: built.prompt }),
        stop: built.stop,
        signal: stop.signal,
        user: endUser?.session_id,
      })) {
        if (ev.type === "text" && ev.delta) {
          answer += ev.delta;
          await events.publish(job.taskId, frames.message(ev.delta));
        } else if (ev.type === "done") {
          promptTokens = ev.usage.prompt_tokens;
          completionTokens = ev.usage.completion_tokens;
        }
      }
      // Output moderation (step 11): replace the whole answer.
      const outputVerdict = await moderate(deps, moderation, "outputs", [answer]);
      if (outputVerdict.flagged) {
        answer = outputVerdict.presetResponse;
        await events.publish(job.taskId, frames.messageReplace(answer, "output_moderation"));
      }
      usage = models.usage(model, promptTokens, completionTokens, (Date.now() - job.acceptedAt) / 1000);
    }

    const metadata = { annotation_reply: null, retriever_resources: rag.retrieverResources, usage };
    await prisma.$transaction(async (tx) => {
      await tx.message.update({
        where: { id: message.id },
        data: {
          answer,
          message: promptRecord as object,
          model_provider: model.provider ?? null,
          model_id: model.name ?? null,
          message_tokens: Number(usage.prompt_tokens),
          message_unit_price: String(usage.prompt_unit_price),
          message_price_unit: String(usage.prompt_price_unit),
          answer_tokens: Number(usage.completion_tokens),
          answer_unit_price: String(usage.completion_unit_price),
          answer_price_unit: String(usage.completion_price_unit),
          total_price: String(usage.total_price),
          currency: String(usage.currency),
          provider_response_latency: Number(usage.latency),
          message_metadata: metadata as object,
          status: "normal",
          updated_at: new Date(),
        },
      });
      if (message.conversation_id) {
        await tx.conversation.update({ where: { id: message.conversation_id }, data: { dialogue_count: { increment: 1 } } });
      }
    });
    await events.publish(job.taskId, frames.messageEnd(metadata, null));
  } catch (err) {
    failed = true;
    const parts = toErrorFrameParts(err);
    if (parts.status >= 500) log.error({ err }, "run failed");
    else log.info({ code: parts.code }, "run ended with an error");
    await prisma.message
      .update({ where: { id: message.id }, data: { answer, status: "error", error: parts.message, message_metadata: {}, updated_at: new Date() } })
      .catch((e: unknown) => log.error({ err: e }, "could not mark the message failed"));
    await events.publish(job.taskId, frames.error(parts));
  } finally {
    stop.release();
    await events.end(job.taskId);
  }

  // Conversation title, after the answer (apps spec §8.7: failures are swallowed). Bounded in
  // time so a slow provider cannot hold the job (and a graceful shutdown) forever.
  if (job.autoGenerateName && message.conversation_id && !failed) {
    try {
      const cfg = await deps.apps.config(job.appId);
      const model = ((cfg?.modelConfig ?? {}).model ?? {}) as ModelRef;
      const name = await generateConversationName(models, model, message.query, { logger: log, signal: AbortSignal.timeout(NAMING_TIMEOUT_MS) });
      if (name) await prisma.conversation.update({ where: { id: message.conversation_id }, data: { name } });
    } catch (err) {
      log.debug({ err }, "conversation naming failed");
    }
  }
}

/** sensitive_word_avoidance (dsl-and-workflow §2.8): keywords or OpenAI moderation, per side. */
async function moderate(
  deps: RunnerDeps,
  cfg: Record<string, unknown>,
  side: "inputs" | "outputs",
  texts: unknown[],
): Promise<{ flagged: boolean; presetResponse: string }> {
  if (!cfg.enabled) return { flagged: false, presetResponse: "" };
  if (cfg.type === "keywords") return checkKeywordModeration(cfg, texts, side);
  if (cfg.type === "openai_moderation") {
    const config = (cfg.config ?? {}) as Record<string, unknown>;
    const sideCfg = (config[`${side}_config`] ?? {}) as { enabled?: boolean; preset_response?: string };
    if (!sideCfg.enabled) return { flagged: false, presetResponse: "" };
    const v = await deps.models.moderate(texts.map((t) => (typeof t === "string" ? t : JSON.stringify(t))).filter(Boolean));
    return { flagged: v.flagged, presetResponse: sideCfg.preset_response ?? "" };
  }
  return { flagged: false, presetResponse: "" };
}

// The route side of a generation (DESIGN §3 steps 1–2): validate against the app's config,
// create the conversation/message rows in ONE transaction, then — after commit — register the
// task owner and enqueue the `app-runs` job with ids only. The worker does the rest.
import type { Config } from "../../config/index.js";
import { DifyError, Errors } from "../../lib/errors.js";
import { isUuid, newId } from "../../lib/ids.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import type { Producer } from "../../queue/producer.js";
import type { RunEvents } from "../../queue/run-events.js";
import { InputValidationError, validateInputs } from "../apps/app-info.js";
import type { AppService } from "../apps/service.js";
import type { FileService } from "../files/service.js";
import { recordMessageFiles, resolveRequestFiles } from "../files/message-files.js";
import { renderOpeningStatement } from "./prompt.js";

export interface GenerationApp {
  id: string;
  tenant_id: string;
  mode: string;
  app_model_config_id: string | null;
}

export interface StartedRun {
  taskId: string;
  messageId: string;
  conversationId: string | null;
  createdAt: Date;
}

export interface GenerationRequest {
  query: string;
  inputs: Record<string, unknown>;
  files: unknown;
  conversationId: string | null;
  autoGenerateName: boolean;
}

export function createGenerationService(deps: {
  prisma: PrismaClient;
  config: Config;
  storage: Storage;
  apps: AppService;
  files: FileService;
  producer: Producer;
  events: RunEvents;
}) {
  const { prisma, apps, producer, events } = deps;

  async function loadModelConfig(appId: string): Promise<Record<string, unknown>> {
    const cfg = await apps.config(appId);
    if (!cfg?.modelConfig) throw Errors.appUnavailable();
    return cfg.modelConfig;
  }

  function checkInputs(form: unknown, inputs: Record<string, unknown>): Record<string, unknown> {
    try {
      return validateInputs(form, inputs);
    } catch (e) {
      if (e instanceof InputValidationError) throw Errors.invalidParam(e.message);
      throw e;
    }
  }

  /** A conversation visible to this end user in this app (apps spec §8 scope rule), or 404. */
  async function visibleConversation(appId: string, endUserId: string, conversationId: string) {
    const c = await prisma.conversation.findFirst({
      where: { id: conversationId, app_id: appId, from_end_user_id: endUserId, from_source: "api", is_deleted: false },
    });
    if (!c || c.status !== "normal") throw Errors.conversationNotFound();
    return c;
  }

  return {
    /**
     * Starts a completion or chat run. `kind` is the app mode; the mode check against the route
     * happened before (after end-user resolution, apps spec §3.3).
     */
    async start(app: GenerationApp, endUserId: string, req: GenerationRequest): Promise<StartedRun> {
      const modelConfig = await loadModelConfig(app.id);
      const isChat = app.mode !== "completion";

      let conversation: Awaited<ReturnType<typeof visibleConversation>> | null = null;
      if (isChat && req.conversationId) {
        if (!isUuid(req.conversationId)) throw Errors.invalidParam(`conversation_id must be a valid UUID: '${req.conversationId}'`);
        conversation = await visibleConversation(app.id, endUserId, req.conversationId.toLowerCase());
      }
      // Conversation inputs are frozen at the first message; later inputs are ignored without
      // validation (apps spec §5.5 last paragraph).
      const inputs = conversation ? (conversation.inputs as Record<string, unknown>) : checkInputs(modelConfig.user_input_form, req.inputs);

      const files = await resolveRequestFiles(
        { prisma, config: deps.config, storage: deps.storage, fileService: deps.files },
        { tenantId: app.tenant_id, appId: app.id, endUserId, uploadConfig: modelConfig.file_upload, files: req.files },
      );

      const taskId = newId();
      const messageId = newId();
      const now = new Date();
      const conversationId = conversation?.id ?? newId();
      await prisma.$transaction(async (tx) => {
        if (!conversation) {
          // Completion apps also get a hidden conversation per message (apps spec §5.2).
          await tx.conversation.create({
            data: {
              id: conversationId,
              tenant_id: app.tenant_id,
              app_id: app.id,
              app_model_config_id: app.app_model_config_id,
              mode: app.mode,
              name: "New conversation",
              inputs: inputs as object,
              introduction: renderOpeningStatement(String(modelConfig.opening_statement ?? ""), inputs),
              from_end_user_id: endUserId,
              // Completion conversations are never listed (chat routes already reject completion apps).
              created_at: now,
              updated_at: now,
            },
          });
        } else {
          await tx.conversation.update({ where: { id: conversation.id }, data: { updated_at: now } });
        }
        await tx.message.create({
          data: {
            id: messageId,
            tenant_id: app.tenant_id,
            app_id: app.id,
            conversation_id: conversationId,
            app_model_config_id: app.app_model_config_id,
            inputs: inputs as object,
            query: req.query,
            from_end_user_id: endUserId,
            status: "normal",
            created_at: now,
            updated_at: now,
          },
        });
        await recordMessageFiles(tx, messageId, files, endUserId);
      });

      // After commit: the worker must find every row it is told about.
      await events.registerOwner(taskId, `${app.id}:${endUserId}`);
      await producer.enqueueAppRun({
        taskId,
        kind: app.mode as "completion" | "chat",
        tenantId: app.tenant_id,
        appId: app.id,
        endUserId,
        messageId,
        conversationId,
        autoGenerateName: isChat && !conversation && req.autoGenerateName,
        acceptedAt: Date.now(),
      });
      return { taskId, messageId, conversationId: isChat ? conversationId : null, createdAt: now };
    },

    /** apps spec §5.8: always "success"; effective only for the task's own end user. */
    async stop(appId: string, endUserId: string, taskId: string): Promise<void> {
      const owner = await events.owner(taskId);
      if (owner === `${appId}:${endUserId}`) await events.stop(taskId);
    },

    /**
     * Blocking mode: waits for the run's terminal frame. An in-stream error becomes the HTTP error
     * it describes (apps spec §5.1: "re-raised and mapped with the same table").
     */
    async waitForEnd(taskId: string): Promise<{ end: Record<string, unknown> }> {
      let end: Record<string, unknown> | null = null;
      for await (const frame of events.subscribe(taskId)) {
        if (frame.event === "error") {
          throw new DifyError(Number(frame.status) || 500, String(frame.code), String(frame.message));
        }
        if (frame.event === "message_end") end = frame;
      }
      if (!end) throw Errors.internalServerError();
      return { end };
    },
  };
}
export type GenerationService = ReturnType<typeof createGenerationService>;

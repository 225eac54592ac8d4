// POST /v1/completion-messages, POST /v1/chat-messages and their stops (apps spec §5.2, §5.3, §5.8).
// Streaming relays the task's event stream; blocking waits for its terminal frame.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { Errors } from "../../lib/errors.js";
import { jsonBody } from "../plugins/body.js";
import { sendEventStream } from "../plugins/sse.js";
import { parseOr400 } from "../validation.js";
import type { Services } from "../services.js";
import type { StartedRun } from "../../modules/generation/service.js";
import { pyJson } from "../../lib/pyjson.js";
import { toUnix } from "../../lib/time.js";

const CHAT_MODES = new Set(["chat", "agent-chat", "advanced-chat"]);
/** Modes whose runners are in this build; the others answer app_unavailable until they land. */
const RUNNABLE = new Set(["completion", "chat", "advanced-chat"]);

const responseMode = z.enum(["blocking", "streaming"]).nullish();
// Unknown keys are ignored (pydantic extra="ignore"); `null` means absent (client-compatibility A.7).
const completionBody = z.object({
  inputs: z.record(z.string(), z.unknown()),
  query: z.string().max(1_000_000).nullish(),
  response_mode: responseMode,
  files: z.array(z.unknown()).max(100).nullish(),
  retriever_from: z.string().max(255).nullish(),
});
const chatBody = z.object({
  query: z.unknown(),
  inputs: z.record(z.string(), z.unknown()),
  response_mode: responseMode,
  conversation_id: z.string().max(255).nullish(),
  files: z.array(z.unknown()).max(100).nullish(),
  auto_generate_name: z.boolean().nullish(),
  workflow_id: z.string().max(255).nullish(),
  retriever_from: z.string().max(255).nullish(),
});

const stripNul = (s: string) => s.replace(/\u0000/g, "");

export function generationRoutes(app: FastifyInstance, s: Services): void {
  const userInBody = { auth: "app" as const, user: { from: "body" as const, required: true } };

  app.post("/v1/completion-messages", { config: userInBody }, async (req, reply) => {
    const ctx = req.app!;
    if (ctx.mode !== "completion") throw Errors.appUnavailable();
    const body = parseOr400(completionBody, jsonBody(req), "CompletionRequestPayload");
    return limited(s, ctx, async () => {
      const run = await s.generation.start(ctx, req.endUser!.id, {
        query: stripNul(body.query ?? ""),
        inputs: body.inputs,
        files: body.files ?? null,
        conversationId: null,
        autoGenerateName: false,
      });
      return respond(req, reply, s, run, ctx.mode, body.response_mode ?? "blocking");
    });
  });

  app.post("/v1/chat-messages", { config: userInBody }, async (req, reply) => {
    const ctx = req.app!;
    if (!CHAT_MODES.has(ctx.mode)) throw Errors.notChatApp();
    const body = parseOr400(chatBody, jsonBody(req), "ChatRequestPayload");
    if (body.query === undefined || body.query === null) throw Errors.invalidParam("1 validation error for ChatRequestPayload\nquery\n  Field required");
    if (typeof body.query !== "string") throw Errors.invalidParam("query must be a string");
    const query = stripNul(body.query);
    if (query.trim() === "") throw Errors.invalidParam("query is required");
    const mode = body.response_mode ?? "blocking";
    if (ctx.mode === "agent-chat" && mode === "blocking") throw Errors.invalidParam("Agent Chat App does not support blocking mode");
    if (!RUNNABLE.has(ctx.mode)) throw Errors.appUnavailable(`App mode ${ctx.mode} is not supported by this Servify version yet.`);
    const conversationId = body.conversation_id?.trim() || null;
    return limited(s, ctx, async () => {
      // advanced-chat runs the published graph (apps spec §5.3; src/modules/workflow/service.ts).
      const run = ctx.mode === "advanced-chat"
        ? await s.workflows.startChat(ctx, req.endUser!, {
            query,
            inputs: body.inputs,
            files: body.files ?? null,
            conversationId,
            workflowId: body.workflow_id?.trim() || null,
            autoGenerateName: body.auto_generate_name ?? true,
          })
        : await s.generation.start(ctx, req.endUser!.id, {
            query,
            inputs: body.inputs,
            files: body.files ?? null,
            conversationId,
            autoGenerateName: body.auto_generate_name ?? true,
          });
      return respond(req, reply, s, run, ctx.mode, mode);
    });
  });

  const stopRoute = (url: string, modeOk: (mode: string) => boolean, wrongMode: () => Error) =>
    app.post(url, { config: userInBody }, async (req) => {
      const ctx = req.app!;
      if (!modeOk(ctx.mode)) throw wrongMode();
      const { task_id } = req.params as { task_id: string };
      await s.generation.stop(ctx.id, req.endUser!.id, task_id);
      return { result: "success" };
    });
  stopRoute("/v1/completion-messages/:task_id/stop", (m) => m === "completion", () => Errors.appUnavailable());
  stopRoute("/v1/chat-messages/:task_id/stop", (m) => CHAT_MODES.has(m), () => Errors.notChatApp());
}

/** Holds one of the app's concurrent-request slots (apps spec §3.5) until the response is done. */
async function limited<T>(s: Services, app: { id: string; max_active_requests: number | null }, work: () => Promise<T>): Promise<T> {
  const release = await s.activeRequests.acquire(app);
  try {
    return await work();
  } finally {
    await release();
  }
}

async function respond(req: FastifyRequest, reply: FastifyReply, s: Services, run: StartedRun, mode: string, responseMode: "blocking" | "streaming") {
  if (responseMode === "streaming") {
    await sendEventStream(req, reply, (clientGone) => s.events.subscribe(run.taskId, "0", clientGone));
    return reply;
  }
  const { end } = await s.generation.waitForEnd(run.taskId);
  const message = await s.prisma.message.findUnique({ where: { id: run.messageId }, select: { answer: true, created_at: true } });
  // Blocking body (apps spec §5.2/§5.3): json.dumps style without the trailing newline.
  const body = {
    event: "message",
    task_id: run.taskId,
    id: run.messageId,
    message_id: run.messageId,
    ...(mode === "completion" ? {} : { conversation_id: run.conversationId }),
    mode,
    answer: message?.answer ?? "",
    metadata: end.metadata,
    created_at: toUnix(message?.created_at ?? run.createdAt),
  };
  return reply.status(200).type("application/json").serializer((p: unknown) => pyJson(p)).send(body);
}

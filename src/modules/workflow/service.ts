// The route side of graph-app runs (apps spec §5.3 advanced-chat, §5.4 workflow run): pick the
// published workflow version, validate inputs against its start node, resolve files, create the
// rows (workflow run; for advanced-chat also conversation + message) in one transaction, then
// register the task owner and enqueue the `app-runs` job.
import type { Config } from "../../config/index.js";
import { DifyError, Errors } from "../../lib/errors.js";
import { isUuid, newId } from "../../lib/ids.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import type { Redis } from "../../lib/redis.js";
import type { Producer } from "../../queue/producer.js";
import type { RunEvents } from "../../queue/run-events.js";
import { formVariables, InputValidationError, pyRepr, userInputFormFromGraph, validateInputs } from "../apps/app-info.js";
import type { FileService } from "../files/service.js";
import { buildFilesFromMappings, recordMessageFiles, resolveRequestFiles, type FileUploadSettings, type ResolvedFile } from "../files/message-files.js";
import type { StartedRun } from "../generation/service.js";
import type { WorkflowFile } from "./types.js";

export interface GraphApp {
  id: string;
  tenant_id: string;
  mode: string;
}

export interface StartedGraphRun extends StartedRun {
  workflowRunId: string;
}

export function toWorkflowFile(f: ResolvedFile, tenantId: string): WorkflowFile {
  return {
    dify_model_identity: "__dify__file__",
    id: null,
    tenant_id: tenantId,
    type: f.type as WorkflowFile["type"],
    transfer_method: f.transfer_method as WorkflowFile["transfer_method"],
    remote_url: f.remote_url ?? null,
    related_id: f.related_id ?? f.upload_file_id ?? null,
    filename: f.filename,
    extension: f.extension,
    mime_type: f.mime_type,
    size: f.size,
    url: f.url ?? f.remote_url ?? null,
  };
}

/** The file object keys in Dify's order (apps spec §6.8). */
const FILE_KEYS = ["dify_model_identity", "id", "tenant_id", "type", "transfer_method", "remote_url", "related_id", "filename", "extension", "mime_type", "size", "url"] as const;

/**
 * Stored run inputs with file objects (top-level values and lists, incl. sys.files) put back in
 * §6.8 key order: jsonb reorders object keys, and these objects are re-published from the row.
 */
export function canonicalFileInputs(inputs: Record<string, unknown>): Record<string, unknown> {
  const isFileObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) && (v as Record<string, unknown>).dify_model_identity === "__dify__file__";
  const fix = (v: unknown): unknown => {
    if (!isFileObj(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of FILE_KEYS) if (k in v) out[k] = v[k];
    for (const [k, x] of Object.entries(v)) if (!(k in out)) out[k] = x;
    return out;
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) out[k] = Array.isArray(v) ? v.map(fix) : fix(v);
  return out;
}

export function createWorkflowService(deps: {
  prisma: PrismaClient;
  config: Config;
  storage: Storage;
  files: FileService;
  producer: Producer;
  events: RunEvents;
  redis: Redis;
}) {
  const { prisma, producer, events } = deps;
  // Run id → task id, for the resume stream (§6.7); lives as long as the task's event stream can.
  const runTaskKey = (runId: string) => `${deps.config.QUEUE_PREFIX}:run:${runId}:task`;

  /** The version to run: a named published one (§5.3 workflow_id errors) or the app's published one. */
  async function pickWorkflow(app: GraphApp, workflowId: string | null) {
    if (workflowId) {
      if (!isUuid(workflowId)) throw Errors.badRequest(`Invalid workflow_id format: '${workflowId}'. `);
      const wf = await prisma.workflow.findFirst({ where: { id: workflowId.toLowerCase(), app_id: app.id } });
      if (!wf) throw new DifyError(404, "not_found", `Workflow not found with id: ${workflowId}`);
      if (wf.version === "draft") {
        throw Errors.badRequest(`Cannot use draft workflow version. Workflow ID: ${workflowId}. Please use a published workflow version or leave workflow_id empty.`);
      }
      return wf;
    }
    const row = await prisma.app.findUnique({ where: { id: app.id }, select: { workflow_id: true } });
    const wf = row?.workflow_id ? await prisma.workflow.findUnique({ where: { id: row.workflow_id } }) : null;
    if (!wf) throw Errors.invalidParam("Workflow not published");
    return wf;
  }

  function checkInputs(graph: unknown, inputs: Record<string, unknown>): Record<string, unknown> {
    try {
      return validateInputs(userInputFormFromGraph(graph), inputs);
    } catch (e) {
      if (e instanceof InputValidationError) throw Errors.invalidParam(e.message);
      throw e;
    }
  }

  /**
   * `file` / `file-list` start variables: the validated mappings become file objects (apps spec
   * §6.8) before the run, as Dify's _prepare_user_inputs does with build_from_mapping(s) under the
   * variable's own allowed types / extensions / methods (strict type check: Service API). The
   * objects are what workflow_started.inputs, the run row and the start node carry.
   */
  async function resolveFileInputs(app: GraphApp, endUserId: string, graph: unknown, inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const fileVars = formVariables(userInputFormFromGraph(graph)).filter((v) => v.type === "file" || v.type === "file-list");
    if (fileVars.length === 0) return inputs;
    const out = { ...inputs };
    const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
    for (const v of fileVars) {
      const value = out[v.variable];
      if (value === null || value === undefined) continue;
      const mappings = (Array.isArray(value) ? value : [value]) as Record<string, unknown>[];
      // build_from_mapping (single file) has no "skip unusable mapping" step: a mapping without
      // a transfer method is an error there.
      if (v.type === "file" && !mappings[0]?.transfer_method) throw Errors.invalidParam(`${pyRepr(mappings[0]?.transfer_method ?? null)} is not a valid FileTransferMethod`);
      const settings: FileUploadSettings = {
        allowed_file_types: strs(v.allowed_file_types),
        allowed_file_extensions: strs(v.allowed_file_extensions),
        allowed_file_upload_methods: strs(v.allowed_file_upload_methods),
        number_limits: 0,
        image_config: null,
      };
      const files = await buildFilesFromMappings(
        { prisma, config: deps.config, storage: deps.storage, fileService: deps.files },
        { tenantId: app.tenant_id, endUserId, settings, mappings, strictTypeValidation: true },
      );
      const objects = files.map((f) => toWorkflowFile(f, app.tenant_id));
      out[v.variable] = v.type === "file" ? (objects[0] ?? null) : objects;
    }
    return out;
  }

  async function resolveFiles(app: GraphApp, endUserId: string, features: unknown, files: unknown): Promise<ResolvedFile[]> {
    const uploadConfig = features && typeof features === "object" ? (features as Record<string, unknown>).file_upload : undefined;
    return resolveRequestFiles(
      { prisma, config: deps.config, storage: deps.storage, fileService: deps.files },
      { tenantId: app.tenant_id, appId: app.id, endUserId, uploadConfig, files, appMode: "workflow" },
    );
  }

  async function enqueue(app: GraphApp, kind: "workflow" | "advanced-chat", taskId: string, endUserId: string, ids: { workflowRunId: string; messageId: string | null; conversationId: string | null }, autoGenerateName = false) {
    await events.registerOwner(taskId, `${app.id}:${endUserId}`);
    await deps.redis.set(runTaskKey(ids.workflowRunId), taskId, "EX", 1800);
    await producer.enqueueAppRun({
      taskId,
      kind,
      tenantId: app.tenant_id,
      appId: app.id,
      endUserId,
      messageId: ids.messageId,
      conversationId: ids.conversationId,
      workflowRunId: ids.workflowRunId,
      autoGenerateName,
      acceptedAt: Date.now(),
    });
  }

  return {
    /** POST /workflows/run and /workflows/{id}/run. */
    async startWorkflow(app: GraphApp, endUser: { id: string; session_id: string }, req: { inputs: Record<string, unknown>; files: unknown; workflowId: string | null }): Promise<StartedGraphRun> {
      const wf = await pickWorkflow(app, req.workflowId);
      const inputs = await resolveFileInputs(app, endUser.id, wf.graph, checkInputs(wf.graph, req.inputs));
      const files = (await resolveFiles(app, endUser.id, wf.features, req.files)).map((f) => toWorkflowFile(f, app.tenant_id));
      const taskId = newId();
      const runId = newId();
      const now = new Date();
      // workflow_started.data.inputs = user inputs + sys.* (apps spec §6.2).
      const runInputs = {
        ...inputs,
        "sys.files": files,
        "sys.user_id": endUser.session_id,
        "sys.app_id": app.id,
        "sys.workflow_id": wf.id,
        "sys.workflow_run_id": runId,
        "sys.timestamp": Math.floor(now.getTime() / 1000),
      };
      await prisma.workflowRun.create({
        data: {
          id: runId,
          tenant_id: app.tenant_id,
          app_id: app.id,
          workflow_id: wf.id,
          type: "workflow",
          triggered_from: "app-run",
          version: wf.version,
          graph: wf.graph as object,
          inputs: runInputs as object,
          status: "running",
          created_by_role: "end_user",
          created_by: endUser.id,
          created_at: now,
        },
      });
      await enqueue(app, "workflow", taskId, endUser.id, { workflowRunId: runId, messageId: null, conversationId: null });
      return { taskId, workflowRunId: runId, messageId: "", conversationId: null, createdAt: now };
    },

    /** POST /chat-messages for advanced-chat: conversation + message + workflow run rows. */
    async startChat(
      app: GraphApp,
      endUser: { id: string; session_id: string },
      req: { query: string; inputs: Record<string, unknown>; files: unknown; conversationId: string | null; workflowId: string | null; autoGenerateName: boolean },
    ): Promise<StartedGraphRun> {
      const wf = await pickWorkflow(app, req.workflowId);
      let conversation: { id: string; inputs: unknown } | null = null;
      if (req.conversationId) {
        if (!isUuid(req.conversationId)) throw Errors.invalidParam(`conversation_id must be a valid UUID: '${req.conversationId}'`);
        const c = await prisma.conversation.findFirst({
          where: { id: req.conversationId.toLowerCase(), app_id: app.id, from_end_user_id: endUser.id, from_source: "api", is_deleted: false },
        });
        if (!c || c.status !== "normal") throw Errors.conversationNotFound();
        conversation = c;
      }
      // Conversation inputs are frozen at the first message (apps spec §5.7).
      const inputs = conversation ? (conversation.inputs as Record<string, unknown>) : await resolveFileInputs(app, endUser.id, wf.graph, checkInputs(wf.graph, req.inputs));
      const resolved = await resolveFiles(app, endUser.id, wf.features, req.files);
      const files = resolved.map((f) => toWorkflowFile(f, app.tenant_id));
      const taskId = newId();
      const runId = newId();
      const messageId = newId();
      const conversationId = conversation?.id ?? newId();
      const now = new Date();
      const previous = conversation ? await prisma.message.count({ where: { conversation_id: conversationId } }) : 0;
      const runInputs = {
        ...inputs,
        "sys.query": req.query,
        "sys.files": files,
        "sys.conversation_id": conversationId,
        "sys.user_id": endUser.session_id,
        // Turns in the thread including this one (current Dify counts from 1, dsl §3.4.1).
        "sys.dialogue_count": previous + 1,
        "sys.app_id": app.id,
        "sys.workflow_id": wf.id,
        "sys.workflow_run_id": runId,
        "sys.timestamp": Math.floor(now.getTime() / 1000),
      };
      const features = (wf.features ?? {}) as Record<string, unknown>;
      await prisma.$transaction(async (tx) => {
        if (!conversation) {
          await tx.conversation.create({
            data: {
              id: conversationId,
              tenant_id: app.tenant_id,
              app_id: app.id,
              workflow_id: wf.id,
              mode: app.mode,
              name: "New conversation",
              inputs: inputs as object,
              introduction: String(features.opening_statement ?? ""),
              from_end_user_id: endUser.id,
              created_at: now,
              updated_at: now,
            },
          });
        } else {
          await tx.conversation.update({ where: { id: conversationId }, data: { updated_at: now } });
        }
        await tx.workflowRun.create({
          data: {
            id: runId,
            tenant_id: app.tenant_id,
            app_id: app.id,
            workflow_id: wf.id,
            type: "chat",
            triggered_from: "app-run",
            version: wf.version,
            graph: wf.graph as object,
            inputs: runInputs as object,
            status: "running",
            created_by_role: "end_user",
            created_by: endUser.id,
            conversation_id: conversationId,
            message_id: messageId,
            created_at: now,
          },
        });
        await tx.message.create({
          data: {
            id: messageId,
            tenant_id: app.tenant_id,
            app_id: app.id,
            conversation_id: conversationId,
            workflow_run_id: runId,
            inputs: inputs as object,
            query: req.query,
            from_end_user_id: endUser.id,
            status: "normal",
            created_at: now,
            updated_at: now,
          },
        });
        await recordMessageFiles(tx, messageId, resolved, endUser.id);
      });
      await enqueue(app, "advanced-chat", taskId, endUser.id, { workflowRunId: runId, messageId, conversationId }, !conversation && req.autoGenerateName);
      return { taskId, workflowRunId: runId, messageId, conversationId, createdAt: now };
    },

    async taskOfRun(runId: string): Promise<string | null> {
      return deps.redis.get(runTaskKey(runId));
    },

    /** Blocking workflow mode: waits for the terminal frame; an error frame becomes the HTTP error. */
    async waitForFinish(taskId: string): Promise<Record<string, unknown> | null> {
      let finished: Record<string, unknown> | null = null;
      for await (const frame of events.subscribe(taskId)) {
        if (frame.event === "error") throw new DifyError(Number(frame.status) || 500, String(frame.code), String(frame.message));
        if (frame.event === "workflow_finished") finished = frame;
      }
      return finished;
    },
  };
}
export type WorkflowService = ReturnType<typeof createWorkflowService>;

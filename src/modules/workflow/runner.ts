// The worker side of workflow and advanced-chat runs (apps spec §5.3, §5.4, §6.3.2, §6.4;
// dsl-and-workflow §3, §5). The route created the workflow_runs row (and for advanced-chat the
// conversation and message rows); this builds the variable pool, runs the engine, turns engine
// events into frames and node-execution rows as they happen, and finishes the rows before the
// terminal frames are published (a GET right after the stream ends sees the finished run).
import { Prisma } from "../../generated/prisma/client.js";
import type { Logger } from "../../lib/logger.js";
import { toUnix } from "../../lib/time.js";
import type { AppRunJob } from "../../queue/contract.js";
import type { RunEvents } from "../../queue/run-events.js";
import type { RunnerDeps } from "../generation/basic-runner.js";
import { workflowFrames } from "../generation/frames.js";
import { Decimal } from "../models/decimal.js";
import { citationsEnabled, mergeCitations } from "./citations.js";
import { runGraph, STOPPED_BY_USER, type EngineEvent } from "./engine.js";
import { findStartNode, parseGraph } from "./graph.js";
import { canonicalFileInputs } from "./service.js";
import type { CodeSandbox, KnowledgeRetriever, NodeServices, RunInfo, WorkflowFile } from "./types.js";
import { createVariablePool, isFile, type VariablePoolImpl } from "./variable-pool.js";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------- helpers

interface ConvVarDecl {
  id: string;
  name: string;
  value_type: string;
  value: unknown;
  description: string;
}

function conversationDeclarations(raw: unknown): ConvVarDecl[] {
  return (Array.isArray(raw) ? raw : []).filter(isObj).map((d) => ({
    id: String(d.id ?? ""),
    name: String(d.name ?? ""),
    value_type: String(d.value_type ?? "string"),
    value: d.value ?? null,
    description: String(d.description ?? ""),
  }));
}

/** Dify's empty LLMUsage (message_end.metadata.usage when no model ran). */
function emptyUsage(latency: number): Record<string, unknown> {
  return {
    prompt_tokens: 0,
    prompt_unit_price: "0.0",
    prompt_price_unit: "0.0",
    prompt_price: "0.0",
    completion_tokens: 0,
    completion_unit_price: "0.0",
    completion_price_unit: "0.0",
    completion_price: "0.0",
    total_tokens: 0,
    total_price: "0.0",
    currency: "USD",
    latency,
    time_to_first_token: null,
    time_to_generate: null,
  };
}

/** LLMUsage.plus over every node usage: tokens and prices add, unit prices of the first stay. */
export function sumUsages(usages: Record<string, unknown>[], latency: number): Record<string, unknown> {
  if (usages.length === 0) return emptyUsage(latency);
  const out: Record<string, unknown> = { ...emptyUsage(latency), ...usages[0], latency };
  for (const k of ["prompt_tokens", "completion_tokens", "total_tokens"]) out[k] = usages.reduce((a, u) => a + Number(u[k] ?? 0), 0);
  for (const k of ["prompt_price", "completion_price", "total_price"]) {
    out[k] = usages.reduce((a, u) => a.add(Decimal.parse(String(u[k] ?? "0"))), Decimal.parse("0")).toString();
  }
  return out;
}

function filesIn(outputs: Record<string, unknown> | null): unknown[] {
  const out: unknown[] = [];
  for (const v of Object.values(outputs ?? {})) {
    if (isFile(v)) out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (isFile(x)) out.push(x);
  }
  return out;
}

const json = (v: unknown) => (v === null || v === undefined ? Prisma.JsonNull : (v as Prisma.InputJsonValue));

// ---------------------------------------------------------------- the run

export async function runGraphApp(deps: RunnerDeps, job: AppRunJob): Promise<void> {
  const { prisma, events, logger } = deps;
  const log: Logger = logger.child({ taskId: job.taskId, appId: job.appId, workflowRunId: job.workflowRunId });
  const runRow = job.workflowRunId ? await prisma.workflowRun.findUnique({ where: { id: job.workflowRunId } }) : null;
  // A re-delivered job whose run already finished (or vanished): nothing to redo.
  if (!runRow || runRow.status !== "running") {
    await events.end(job.taskId);
    return;
  }
  const mode = job.kind === "advanced-chat" ? "advanced-chat" : "workflow";
  const message = mode === "advanced-chat" && job.messageId ? await prisma.message.findUnique({ where: { id: job.messageId } }) : null;
  const frames = workflowFrames({
    mode,
    taskId: job.taskId,
    workflowRunId: runRow.id,
    messageId: message?.id ?? null,
    conversationId: message?.conversation_id ?? null,
    createdAt: toUnix(message?.created_at ?? runRow.created_at)!,
  });
  const publish = (f: Record<string, unknown>) => events.publish(job.taskId, f);
  const stop = await events.stopSignal(job.taskId);
  const started = Date.now();
  let answer = "";
  try {
    const workflow = await prisma.workflow.findUnique({ where: { id: runRow.workflow_id } });
    if (!workflow) throw new Error("Workflow not found");
    const endUser = await prisma.endUser.findUnique({ where: { id: job.endUserId }, select: { session_id: true } });
    const storedInputs = canonicalFileInputs((isObj(runRow.inputs) ? runRow.inputs : {}) as Record<string, unknown>);

    // sys.* were fixed by the route (they are part of the run's inputs, §6.2); the rest are user inputs.
    const system: Record<string, unknown> = {};
    const userInputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(storedInputs)) {
      if (k.startsWith("sys.")) system[k.slice(4)] = v;
      else userInputs[k] = v;
    }
    const environment: Record<string, unknown> = {};
    for (const v of (Array.isArray(workflow.environment_variables) ? (workflow.environment_variables as unknown[]) : []).filter(isObj)) environment[String(v.name)] = v.value ?? null;

    // Conversation variables (advanced-chat): one row per declaration per conversation, created
    // from the declared default on the conversation's first turn (dsl-and-workflow §1.5).
    const decls = conversationDeclarations(workflow.conversation_variables);
    const conversation: Record<string, unknown> = {};
    const stored = new Map<string, string>();
    const conversationId = message?.conversation_id ?? null;
    if (mode === "advanced-chat" && conversationId) {
      const rows = await prisma.conversationVariable.findMany({ where: { conversation_id: conversationId } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const d of decls) {
        let row = byId.get(d.id);
        if (!row && d.id) {
          row = await prisma.conversationVariable.create({
            data: { id: d.id, conversation_id: conversationId, app_id: job.appId, name: d.name, value_type: d.value_type, value: json(d.value), description: d.description },
          });
        }
        conversation[d.name] = row ? row.value : d.value;
        stored.set(d.name, JSON.stringify(conversation[d.name] ?? null));
      }
    }

    const pool: VariablePoolImpl = createVariablePool({ system, environment, conversation });
    const graph = parseGraph(workflow.graph);
    const start = findStartNode(graph);
    if (start) for (const [k, v] of Object.entries(userInputs)) pool.set([start.id, k], v);

    const persistConversation = async () => {
      if (mode !== "advanced-chat" || !conversationId) return;
      for (const d of decls) {
        const v = pool.get(["conversation", d.name]);
        const text = JSON.stringify(v ?? null);
        if (stored.get(d.name) === text) continue;
        stored.set(d.name, text);
        await prisma.conversationVariable.updateMany({ where: { id: d.id, conversation_id: conversationId }, data: { value: json(v), updated_at: new Date() } });
      }
    };

    await publish(frames.event("workflow_started", { id: runRow.id, workflow_id: workflow.id, inputs: storedInputs, created_at: toUnix(runRow.created_at), reason: "initial" }));

    const run: RunInfo = {
      workflowRunId: runRow.id,
      workflowId: workflow.id,
      appId: job.appId,
      tenantId: job.tenantId,
      mode,
      taskId: job.taskId,
      endUserId: job.endUserId,
      userId: endUser?.session_id ?? String(system.user_id ?? ""),
      conversationId,
      messageId: message?.id ?? null,
    };
    const services: NodeServices = {
      models: deps.models,
      prisma,
      storage: deps.storage,
      config: deps.config,
      logger: log,
      retrieval: deps.retrieval,
      extractText: deps.extractText,
      sandbox: deps.sandbox,
    };

    const onEvent = async (ev: EngineEvent): Promise<void> => {
      if (ev.kind === "chunk") {
        answer += ev.text;
        await publish(frames.chunk(ev.text, ev.selector));
        return;
      }
      const d = ev.data;
      if (ev.event === "node_started") {
        await prisma.workflowNodeExecution.create({
          data: {
            id: String(d.id),
            tenant_id: job.tenantId,
            app_id: job.appId,
            workflow_id: workflow.id,
            workflow_run_id: runRow.id,
            index: Number(d.index),
            predecessor_node_id: (d.predecessor_node_id as string | null) ?? null,
            node_execution_id: String(d.id),
            node_id: String(d.node_id),
            node_type: String(d.node_type),
            title: String(d.title ?? "").slice(0, 255),
            status: "running",
            created_at: new Date(Number(d.created_at) * 1000),
          },
        });
      } else if (ev.event === "node_finished") {
        await prisma.workflowNodeExecution.update({
          where: { id: String(d.id) },
          data: {
            inputs: json(d.inputs),
            process_data: json(d.process_data),
            outputs: json(d.outputs),
            status: String(d.status),
            error: (d.error as string | null) ?? null,
            elapsed_time: Number(d.elapsed_time ?? 0),
            execution_metadata: json(d.execution_metadata),
            finished_at: new Date(),
          },
        });
        // Conversation variables are persisted as soon as an assigner wrote them (§5.2 "variable updated").
        if (d.node_type === "assigner" || d.node_type === "variable-assigner") await persistConversation();
      }
      await publish(frames.event(ev.event, d));
    };

    const result = await runGraph({
      graph: workflow.graph,
      pool,
      run,
      services,
      signal: stop.signal,
      limits: { maxSteps: deps.config.WORKFLOW_MAX_EXECUTION_STEPS, maxTimeMs: deps.config.WORKFLOW_MAX_EXECUTION_TIME * 1000 },
      onEvent,
    });
    await persistConversation();

    const elapsed = (Date.now() - started) / 1000;
    const finishedAt = new Date();
    const outputs = result.outputs;
    await prisma.workflowRun.update({
      where: { id: runRow.id },
      data: {
        status: result.status,
        outputs: json(outputs),
        error: result.error,
        elapsed_time: elapsed,
        total_tokens: result.totalTokens,
        total_steps: result.totalSteps,
        exceptions_count: result.exceptionsCount,
        finished_at: finishedAt,
      },
    });
    const finishedFrame = frames.event("workflow_finished", {
      id: runRow.id,
      workflow_id: workflow.id,
      status: result.status,
      outputs,
      error: result.error,
      elapsed_time: elapsed,
      total_tokens: result.totalTokens,
      total_steps: result.totalSteps,
      created_by: { id: job.endUserId, user: endUser?.session_id ?? null },
      created_at: toUnix(runRow.created_at),
      finished_at: toUnix(finishedAt),
      exceptions_count: result.exceptionsCount,
      files: filesIn(outputs),
    });

    if (mode === "workflow" || !message) {
      await publish(finishedFrame);
      return;
    }

    // advanced-chat: the message row is committed before its terminal frames.
    const usage = sumUsages(result.usages, elapsed);
    if (result.status === "failed") {
      const text = `Run failed: ${result.error ?? ""}`;
      await prisma.message.update({ where: { id: message.id }, data: { answer, status: "error", error: text, workflow_run_id: runRow.id, message_metadata: {}, updated_at: new Date() } });
      await publish(finishedFrame);
      // apps spec §6.4: failure → workflow_finished(failed) → error, no message_end.
      await publish(frames.error({ code: "invalid_param", status: 400, message: text }));
      return;
    }
    // apps spec §7.1: citations only when the workflow's `retriever_resource` feature is on.
    const retrieverResources = citationsEnabled(workflow.features) ? mergeCitations(result.citations ?? []) : [];
    const metadata = { annotation_reply: null, retriever_resources: retrieverResources, usage };
    await prisma.$transaction(async (tx) => {
      await tx.message.update({
        where: { id: message.id },
        data: {
          answer,
          workflow_run_id: runRow.id,
          message_tokens: Number(usage.prompt_tokens),
          answer_tokens: Number(usage.completion_tokens),
          total_price: String(usage.total_price),
          currency: String(usage.currency),
          provider_response_latency: elapsed,
          message_metadata: metadata as object,
          status: "normal",
          updated_at: new Date(),
        },
      });
      if (message.conversation_id) await tx.conversation.update({ where: { id: message.conversation_id }, data: { dialogue_count: { increment: 1 } } });
    });
    const files = filesIn({ files: outputs.files });
    const messageEnd = frames.messageEnd(metadata, files.length > 0 ? files : null);
    if (result.status === "stopped") {
      // apps spec §5.8 / §6.4: stop → workflow_finished(stopped) → message_end.
      await publish(finishedFrame);
      await publish(messageEnd);
    } else {
      // Success: Dify 1.16's documented order (apps spec §6.4) — message_end, then workflow_finished.
      await publish(messageEnd);
      await publish(finishedFrame);
    }
  } catch (err) {
    log.error({ err }, "graph run failed");
    const text = err instanceof Error ? err.message : String(err);
    await prisma.workflowRun
      .update({ where: { id: runRow.id }, data: { status: "failed", error: text, elapsed_time: (Date.now() - started) / 1000, finished_at: new Date() } })
      .catch((e: unknown) => log.error({ err: e }, "could not mark the run failed"));
    if (message) {
      await prisma.message
        .update({ where: { id: message.id }, data: { answer, status: "error", error: text, message_metadata: {}, updated_at: new Date() } })
        .catch((e: unknown) => log.error({ err: e }, "could not mark the message failed"));
    }
    await publish(frames.error({ code: "internal_server_error", status: 500, message: "Internal Server Error, please contact support." })).catch(() => undefined);
  } finally {
    stop.release();
    await events.end(job.taskId);
  }
}

export { STOPPED_BY_USER };
export type { RunEvents, WorkflowFile };

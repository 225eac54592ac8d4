// Workflow-app routes (apps spec §5.4, §5.8, §6.7, §14.1, §14.2):
//   POST /v1/workflows/run
//   POST /v1/workflows/{workflow_id}/run
//   POST /v1/workflows/tasks/{task_id}/stop
//   GET  /v1/workflows/run/{workflow_run_id}
//   GET  /v1/workflows/logs
//   GET  /v1/workflow/{workflow_run_id}/events
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { Prisma } from "../../generated/prisma/client.js";
import { DifyError, Errors } from "../../lib/errors.js";
import { isUuid, uuidParam } from "../../lib/ids.js";
import { pyJson } from "../../lib/pyjson.js";
import { toUnix } from "../../lib/time.js";
import type { StartedGraphRun } from "../../modules/workflow/service.js";
import { jsonBody } from "../plugins/body.js";
import { sendEventStream } from "../plugins/sse.js";
import type { Services } from "../services.js";
import { parseOr400 } from "../validation.js";

const runBody = z.object({
  inputs: z.record(z.string(), z.unknown()),
  response_mode: z.enum(["blocking", "streaming"]).nullish(),
  files: z.array(z.unknown()).max(100).nullish(),
});

const GRAPH_MODES = new Set(["workflow", "advanced-chat"]);

/** Resource bodies in json.dumps style with the trailing newline (architecture: HTTP details). */
function sendPy(reply: FastifyReply, body: unknown, status = 200) {
  return reply.status(status).type("application/json").serializer((p: unknown) => `${pyJson(p)}\n`).send(body);
}

export function workflowRoutes(app: FastifyInstance, s: Services): void {
  const userInBody = { auth: "app" as const, user: { from: "body" as const, required: true } };

  const run = async (req: FastifyRequest, reply: FastifyReply, workflowId: string | null) => {
    const ctx = req.app!;
    if (ctx.mode !== "workflow") throw Errors.notWorkflowApp();
    const body = parseOr400(runBody, jsonBody(req), "WorkflowRunPayload");
    const release = await s.activeRequests.acquire(ctx);
    try {
      const started = await s.workflows.startWorkflow(ctx, req.endUser!, { inputs: body.inputs, files: body.files ?? null, workflowId });
      return await respond(req, reply, s, started, body.response_mode ?? "blocking");
    } finally {
      await release();
    }
  };

  app.post("/v1/workflows/run", { config: userInBody }, (req, reply) => run(req, reply, null));
  app.post("/v1/workflows/:workflow_id/run", { config: userInBody }, (req, reply) => run(req, reply, (req.params as { workflow_id: string }).workflow_id));

  // apps spec §5.8: newest Dify checks no owner for workflow stops; the answer is always success.
  app.post("/v1/workflows/tasks/:task_id/stop", { config: userInBody }, async (req) => {
    if (req.app!.mode !== "workflow") throw Errors.notWorkflowApp();
    const { task_id } = req.params as { task_id: string };
    const owner = await s.events.owner(task_id);
    // Tasks of other apps stay untouchable: the owner record names the app.
    if (owner?.startsWith(`${req.app!.id}:`)) await s.events.stop(task_id);
    return { result: "success" };
  });

  // §14.1: inputs is the stored JSON text (quirk), outputs an object.
  app.get(`/v1/workflows/run/${uuidParam("workflow_run_id")}`, { config: { auth: "app", user: { from: "query", required: false } } }, async (req, reply) => {
    const ctx = req.app!;
    if (!GRAPH_MODES.has(ctx.mode)) throw Errors.notWorkflowApp();
    const { workflow_run_id } = req.params as { workflow_run_id: string };
    const r = await s.prisma.workflowRun.findFirst({ where: { id: workflow_run_id.toLowerCase(), app_id: ctx.id, tenant_id: ctx.tenant_id } });
    if (!r) throw new DifyError(404, "not_found", "Workflow run not found.");
    return sendPy(reply, {
      id: r.id,
      workflow_id: r.workflow_id,
      status: r.status,
      inputs: pyJson(r.inputs ?? {}),
      outputs: r.status === "running" || r.status === "paused" ? {} : (r.outputs ?? {}),
      error: r.error ?? null,
      total_steps: r.total_steps,
      total_tokens: r.total_tokens,
      created_at: toUnix(r.created_at),
      finished_at: toUnix(r.finished_at),
      elapsed_time: r.elapsed_time,
    });
  });

  app.get("/v1/workflows/logs", { config: { auth: "app", user: { from: "query", required: false } } }, async (req, reply) => {
    const ctx = req.app!;
    const q = req.query as Record<string, string | undefined>;
    const page = intParam(q.page, 1, 1, 99999, "page");
    const limit = intParam(q.limit, 20, 1, 100, "limit");
    const where: Prisma.WorkflowRunWhereInput = { app_id: ctx.id, tenant_id: ctx.tenant_id };
    const and: Prisma.WorkflowRunWhereInput[] = [];
    if (q.status) {
      if (!["succeeded", "failed", "stopped", "partial-succeeded", "running"].includes(q.status)) throw Errors.invalidParam(`status: Input should be 'succeeded', 'failed' or 'stopped'`);
      and.push({ status: q.status });
    }
    const date = (v: string, name: string) => {
      const d = new Date(v.endsWith("Z") || /[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
      if (Number.isNaN(d.getTime())) throw Errors.invalidParam(`${name}: Input should be a valid datetime`);
      return d;
    };
    if (q.created_at__before) and.push({ created_at: { lte: date(q.created_at__before, "created_at__before") } });
    if (q.created_at__after) and.push({ created_at: { gte: date(q.created_at__after, "created_at__after") } });
    if (q.created_by_end_user_session_id) {
      const eus = await s.prisma.endUser.findMany({ where: { app_id: ctx.id, session_id: q.created_by_end_user_session_id }, select: { id: true } });
      and.push({ created_by_role: "end_user", created_by: { in: eus.map((e) => e.id) } });
    }
    // Servify has no accounts: every account e-mail is unknown (§14.2 error text).
    if (q.created_by_account) throw Errors.invalidParam(`Account not found: ${q.created_by_account}`);
    if (q.keyword) {
      const kw = q.keyword.slice(0, 30);
      const like = `%${kw.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const hits = await s.prisma.$queryRaw<Array<{ id: string }>>`
        SELECT r.id FROM workflow_runs r LEFT JOIN end_users u ON u.id = r.created_by
        WHERE r.app_id = ${ctx.id}::uuid AND (r.inputs::text ILIKE ${like} OR COALESCE(r.outputs::text, '') ILIKE ${like} OR COALESCE(u.session_id, '') ILIKE ${like}
          ${isUuid(q.keyword) ? Prisma.sql`OR r.id = ${q.keyword.toLowerCase()}::uuid` : Prisma.empty})`;
      and.push({ id: { in: hits.map((h) => h.id) } });
    }
    if (and.length) where.AND = and;
    const [total, rows] = await Promise.all([
      s.prisma.workflowRun.count({ where }),
      s.prisma.workflowRun.findMany({ where, orderBy: { created_at: "desc" }, skip: (page - 1) * limit, take: limit }),
    ]);
    const userIds = [...new Set(rows.map((r) => r.created_by).filter((x): x is string => !!x))];
    const users = new Map((await s.prisma.endUser.findMany({ where: { id: { in: userIds } } })).map((u) => [u.id, u]));
    const data = rows.map((r) => {
      const u = r.created_by ? users.get(r.created_by) : undefined;
      return {
        // One log per run: the run id doubles as the log id (Servify keeps no separate log table).
        id: r.id,
        workflow_run: {
          id: r.id,
          version: r.version,
          status: r.status,
          triggered_from: r.triggered_from,
          error: r.error ?? null,
          elapsed_time: r.elapsed_time,
          total_tokens: r.total_tokens,
          total_steps: r.total_steps,
          created_at: toUnix(r.created_at),
          finished_at: toUnix(r.finished_at),
          exceptions_count: r.exceptions_count,
        },
        details: null,
        created_from: "service-api",
        created_by_role: r.created_by_role,
        created_by_account: null,
        created_by_end_user: u ? { id: u.id, type: u.type, is_anonymous: u.is_anonymous, session_id: u.session_id } : null,
        created_at: toUnix(r.created_at),
      };
    });
    return sendPy(reply, { page, limit, total, has_more: total > page * limit, data });
  });

  // §6.7 resume: replay the task's stream while it exists, else the persisted finished state.
  app.get(`/v1/workflow/${uuidParam("workflow_run_id")}/events`, { config: { auth: "app", user: { from: "query", required: true } } }, async (req, reply) => {
    const ctx = req.app!;
    const { workflow_run_id } = req.params as { workflow_run_id: string };
    const r = await s.prisma.workflowRun.findFirst({ where: { id: workflow_run_id.toLowerCase(), app_id: ctx.id } });
    if (!r || r.created_by_role !== "end_user" || r.created_by !== req.endUser!.id) throw new DifyError(404, "not_found", "Workflow run not found");
    const taskId = await s.workflows.taskOfRun(r.id);
    const finished = r.status !== "running" && r.status !== "paused";
    if (!finished && taskId) {
      await sendEventStream(req, reply, (gone) => s.events.subscribe(taskId, "0", gone));
      return reply;
    }
    const frames = finished
      ? [
          {
            event: "workflow_finished",
            task_id: taskId ?? null,
            workflow_run_id: r.id,
            data: {
              id: r.id,
              workflow_id: r.workflow_id,
              status: r.status,
              outputs: r.outputs ?? {},
              error: r.error ?? null,
              elapsed_time: r.elapsed_time,
              total_tokens: r.total_tokens,
              total_steps: r.total_steps,
              created_by: { id: req.endUser!.id, user: req.endUser!.session_id },
              created_at: toUnix(r.created_at),
              finished_at: toUnix(r.finished_at),
              exceptions_count: r.exceptions_count,
              files: [],
            },
          },
        ]
      : [];
    await sendEventStream(req, reply, async function* () {
      yield* frames;
    });
    return reply;
  });
}

function intParam(v: string | undefined, dflt: number, min: number, max: number, name: string): number {
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw Errors.invalidParam(`${name}: Input should be between ${min} and ${max}`);
  return n;
}

async function respond(req: FastifyRequest, reply: FastifyReply, s: Services, run: StartedGraphRun, mode: "blocking" | "streaming") {
  if (mode === "streaming") {
    await sendEventStream(req, reply, (gone) => s.events.subscribe(run.taskId, "0", gone));
    return reply;
  }
  const finished = await s.workflows.waitForFinish(run.taskId);
  if (!finished) throw Errors.internalServerError();
  const d = finished.data as Record<string, unknown>;
  // Blocking body (§5.4): no `event`; the streaming-only keys are left out.
  const body = {
    task_id: run.taskId,
    workflow_run_id: run.workflowRunId,
    data: {
      id: d.id,
      workflow_id: d.workflow_id,
      status: d.status,
      outputs: d.outputs,
      error: d.error,
      elapsed_time: d.elapsed_time,
      total_tokens: d.total_tokens,
      total_steps: d.total_steps,
      created_at: d.created_at,
      finished_at: d.finished_at,
    },
  };
  return reply.status(200).type("application/json").serializer((p: unknown) => pyJson(p)).send(body);
}

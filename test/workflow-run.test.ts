// Workflow-app routes (apps spec §5.4, §5.8, §6.2–6.4, §6.7, §14.1–14.2) end to end: real
// Postgres/Redis, in-process workers, graphs of start/end nodes written here.
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey } from "./support/factories.js";
import { postSse } from "./support/sse.js";

const workflowYaml = (graphNodes: string, graphEdges: string) => `app:
  name: WF test
  mode: workflow
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables: []
  environment_variables:
    - {id: env1, name: greeting, value: hello, value_type: string}
  features: {}
  graph:
    nodes:
${graphNodes}
    edges:
${graphEdges}
`;

const okNodes = `      - id: start
        type: custom
        data:
          type: start
          title: Start
          variables:
            - {variable: name, label: Name, type: text-input, required: true, max_length: 48}
      - id: end
        type: custom
        data:
          type: end
          title: End
          outputs:
            - {variable: who, value_selector: [start, name]}
            - {variable: env, value_selector: [env, greeting]}
            - {variable: legacy, value_selector: [start, sys.user_id]}`;
const okEdges = `      - {id: e1, source: start, target: end, sourceHandle: source, targetHandle: target}`;

const toolNodes = `      - id: start
        type: custom
        data: {type: start, title: Start, variables: []}
      - id: tool
        type: custom
        data: {type: tool, title: Tool}
      - id: end
        type: custom
        data: {type: end, title: End, outputs: []}`;
const toolEdges = `      - {id: e1, source: start, target: tool}
      - {id: e2, source: tool, target: end}`;

let t: TestApp;
let base: string;
beforeAll(async () => {
  t = await buildTestApp({}, { workers: true });
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => t?.close());

describe("POST /v1/workflows/run", () => {
  it("blocking: {task_id, workflow_run_id, data} with end outputs", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    const res = await t.app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs: { name: "Ann" }, user: "u1", response_mode: "blocking" } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["task_id", "workflow_run_id", "data"]);
    expect(Object.keys(body.data)).toEqual(["id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens", "total_steps", "created_at", "finished_at"]);
    expect(body.data).toMatchObject({ id: body.workflow_run_id, status: "succeeded", outputs: { who: "Ann", env: "hello", legacy: "u1" }, error: null, total_steps: 2 });
  });

  it("validates inputs before the run", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    const res = await t.app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs: {}, user: "u1" } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("invalid_param");
  });

  it("streaming: event order, prefixes and data keys", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    const cap = await postSse(base, "/v1/workflows/run", auth, { inputs: { name: "Bo" }, user: "u2", response_mode: "streaming" });
    expect(cap.status).toBe(200);
    const names = cap.events.map((e) => e.event);
    // §5.3: the end session activates when start→end is taken, so its text precedes node_finished(start)
    expect(names).toEqual(["workflow_started", "node_started", "text_chunk", "text_chunk", "text_chunk", "text_chunk", "text_chunk", "node_finished", "node_started", "node_finished", "workflow_finished"]);
    const [started] = cap.events;
    expect(Object.keys(started!)).toEqual(["event", "workflow_run_id", "task_id", "data"]);
    expect(started!.data).toMatchObject({ inputs: { name: "Bo", "sys.user_id": "u2", "sys.files": [] }, reason: "initial" });
    const chunk = cap.events[2]!;
    expect(Object.keys(chunk)).toEqual(["event", "workflow_run_id", "task_id", "data"]);
    expect(cap.events.filter((e) => e.event === "text_chunk").map((e) => (e.data as { text: string }).text).join("")).toBe("Bo\nhello\nu2");
    const nodeFinished = cap.events[7]!.data as Record<string, unknown>;
    expect(Object.keys(nodeFinished)).toEqual([
      "id", "node_id", "node_type", "title", "index", "predecessor_node_id", "inputs", "inputs_truncated", "process_data", "process_data_truncated",
      "outputs", "outputs_truncated", "status", "error", "elapsed_time", "execution_metadata", "created_at", "finished_at", "files", "iteration_id", "loop_id",
    ]);
    expect((nodeFinished.outputs as Record<string, unknown>)["sys.user_id"]).toBe("u2");
    const fin = cap.events.at(-1)!.data as Record<string, unknown>;
    expect(Object.keys(fin)).toEqual(["id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens", "total_steps", "created_by", "created_at", "finished_at", "exceptions_count", "files"]);
    expect(fin.status).toBe("succeeded");
  });

  it("an unsupported node fails the run (HTTP 200, status failed) and persists node records", async () => {
    const { auth, appId } = await appWithKey(t, workflowYaml(toolNodes, toolEdges));
    const res = await t.app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs: {}, user: "u1" } });
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ status: "failed", error: "Node type tool is not supported yet" });
    const rows = await t.prisma.workflowNodeExecution.findMany({ where: { app_id: appId }, orderBy: { index: "asc" } });
    expect(rows.map((r) => [r.node_id, r.status])).toEqual([["start", "succeeded"], ["tool", "failed"]]);
  });

  it("workflow_id variants: malformed, unknown", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    let res = await t.app.inject({ method: "POST", url: "/v1/workflows/nope/run", headers: auth, payload: { inputs: { name: "a" }, user: "u" } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "bad_request", message: "Invalid workflow_id format: 'nope'. " });
    res = await t.app.inject({ method: "POST", url: "/v1/workflows/00000000-0000-4000-8000-000000000000/run", headers: auth, payload: { inputs: { name: "a" }, user: "u" } });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toBe("Workflow not found with id: 00000000-0000-4000-8000-000000000000");
  });

  it("stop answers success for any task", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    const res = await t.app.inject({ method: "POST", url: "/v1/workflows/tasks/whatever/stop", headers: auth, payload: { user: "x" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: "success" });
  });
});

describe("run detail, logs, resume", () => {
  it("GET /v1/workflows/run/{id}: inputs as a JSON string; logs list it; resume gives workflow_finished", async () => {
    const { auth } = await appWithKey(t, workflowYaml(okNodes, okEdges));
    const run = await t.app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs: { name: "Cy" }, user: "u3" } });
    const runId = run.json().workflow_run_id as string;
    const res = await t.app.inject({ method: "GET", url: `/v1/workflows/run/${runId}`, headers: auth });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["id", "workflow_id", "status", "inputs", "outputs", "error", "total_steps", "total_tokens", "created_at", "finished_at", "elapsed_time"]);
    expect(typeof body.inputs).toBe("string");
    expect(JSON.parse(body.inputs).name).toBe("Cy");
    expect(body.outputs).toEqual({ who: "Cy", env: "hello", legacy: "u3" });

    const missing = await t.app.inject({ method: "GET", url: "/v1/workflows/run/00000000-0000-4000-8000-000000000000", headers: auth });
    expect(missing.statusCode).toBe(404);

    const logs = await t.app.inject({ method: "GET", url: "/v1/workflows/logs?limit=1&status=succeeded", headers: auth });
    expect(logs.statusCode).toBe(200);
    expect(logs.json()).toMatchObject({ page: 1, limit: 1, total: 1, has_more: false });
    expect(logs.json().data[0].workflow_run).toMatchObject({ id: runId, status: "succeeded", triggered_from: "app-run", exceptions_count: 0 });
    expect(logs.json().data[0].created_by_end_user.session_id).toBe("u3");
    const kw = await t.app.inject({ method: "GET", url: "/v1/workflows/logs?keyword=nomatch", headers: auth });
    expect(kw.json().total).toBe(0);
    const bySession = await t.app.inject({ method: "GET", url: "/v1/workflows/logs?created_by_end_user_session_id=u3", headers: auth });
    expect(bySession.json().total).toBe(1);

    const resumed = await new Promise<string>((resolve, reject) => {
      void fetch(`${base}/v1/workflow/${runId}/events?user=u3`, { headers: auth }).then((r) => r.text().then(resolve), reject);
    });
    const frames = resumed.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => JSON.parse(f.slice(6)) as Record<string, unknown>);
    expect(frames.map((f) => f.event)).toContain("workflow_finished");
    const other = await t.app.inject({ method: "GET", url: `/v1/workflow/${runId}/events?user=someone-else`, headers: auth });
    expect(other.statusCode).toBe(404);
    expect(other.json().message).toBe("Workflow run not found");
  });
});

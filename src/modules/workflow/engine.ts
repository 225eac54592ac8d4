// The graph engine (dsl-and-workflow §3.6–§3.10, §4.14–§4.15, §5): scheduling with Dify's
// join/skip rules, parallel branches, error strategies and retries, limits, stop, containers
// (iteration/loop child runs) and the response coordinator that orders answer/end streaming.
//
// The engine knows nothing of Redis, frames or rows: it reports events through `onEvent` (awaited
// in emission order) and returns the run's result. The runner turns events into frames and rows.
import { randomUUID } from "node:crypto";
import { evaluateConditions, type Condition } from "./conditions.js";
import { findStartNode, parseGraph, reachableFrom, type Graph, type GraphEdge } from "./graph.js";
import { nodeImplementation } from "./nodes/index.js";
import type { GraphNode, NodeContext, NodeImplementation, NodeResult, NodeServices, RunInfo, Selector } from "./types.js";
import { NodeError } from "./types.js";
import { isFile, parseTemplate, renderMarkdown, type TemplateSegment, type VariablePoolImpl } from "./variable-pool.js";

// ------------------------------------------------------------------ public surface

export type EngineEvent =
  /** A workflow-type stream event (§5.2): node_started, node_finished, node_retry, iteration_*, loop_*. */
  | { kind: "event"; event: string; data: Record<string, unknown> }
  /** Text released by a response coordinator (§3.7): `message` (advanced-chat) / `text_chunk` (workflow). */
  | { kind: "chunk"; text: string; selector: Selector };

export type RunStatus = "succeeded" | "failed" | "stopped" | "partial-succeeded";

export interface EngineResult {
  status: RunStatus;
  outputs: Record<string, unknown>;
  error: string | null;
  totalTokens: number;
  totalSteps: number;
  exceptionsCount: number;
  /** Usage objects of the nodes that reported one (summed into message_end.metadata.usage). */
  usages: Record<string, unknown>[];
  /** Citations of succeeded nodes (NodeResult.citations), in completion order; merged by the runner. */
  citations?: Record<string, unknown>[][];
}

export interface EngineOptions {
  graph: unknown;
  pool: VariablePoolImpl;
  run: RunInfo;
  services: NodeServices;
  /** The task's stop signal (`events.stopSignal`). */
  signal: AbortSignal;
  limits?: { maxSteps?: number; maxTimeMs?: number };
  onEvent(ev: EngineEvent): Promise<void>;
  /** Extra implementations looked up before the registry (tests, embedding apps). */
  resolve?: (type: string) => NodeImplementation | undefined;
}

export const STOPPED_BY_USER = "Stopped by user.";

/** Types whose failures may be retried (§3.9 step 1). */
const RETRYABLE = new Set(["llm", "code", "http-request", "tool", "agent", "question-classifier", "parameter-extractor", "knowledge-retrieval", "document-extractor"]);
/** Types whose events never reach the stream (§4.14, §4.15). */
const HIDDEN = new Set(["iteration-start", "loop-start"]);
const BRANCH_TYPES = new Set(["if-else", "question-classifier"]);
const RESPONSE_TYPES = new Set(["answer", "end"]);
const CONTAINER_TYPES = new Set(["iteration", "loop"]);

const nowSec = () => Math.floor(Date.now() / 1000);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Runs a graph app's published graph to completion. */
export async function runGraph(opts: EngineOptions): Promise<EngineResult> {
  const engine = new Engine(opts);
  return engine.run();
}

// ------------------------------------------------------------------ engine (run-wide state)

interface Scope {
  iterationId?: string;
  iterationIndex?: number;
  loopId?: string;
  loopIndex?: number;
}

type Emit = (ev: EngineEvent) => Promise<void>;

class Engine {
  readonly graph: Graph;
  readonly startedAt = Date.now();
  index = 0;
  steps = 0;
  exceptions = 0;
  tokens = 0;
  usages: Record<string, unknown>[] = [];
  citations: Record<string, unknown>[][] = [];
  outputs: Record<string, unknown> = {};
  /** Set once the run's fate is decided: later events (abandoned nodes) are dropped. */
  closed = false;
  private tail: Promise<void> = Promise.resolve();
  readonly maxSteps: number;
  readonly maxTimeMs: number;

  constructor(readonly opts: EngineOptions) {
    this.graph = parseGraph(opts.graph);
    this.maxSteps = opts.limits?.maxSteps ?? 500;
    this.maxTimeMs = opts.limits?.maxTimeMs ?? 1_200_000;
  }

  /** Serialises every event: parallel branches must not interleave inside one frame sequence. */
  readonly emit: Emit = (ev) => {
    if (this.closed) return this.tail;
    this.tail = this.tail.then(() => (this.closed ? undefined : this.opts.onEvent(ev)));
    return this.tail;
  };

  idle(): Promise<void> {
    return this.tail;
  }

  get stopped(): boolean {
    return this.opts.signal.aborted;
  }

  async run(): Promise<EngineResult> {
    const start = findStartNode(this.graph);
    let status: RunStatus;
    let error: string | null = null;
    if (!start) {
      status = "failed";
      error = "Graph has no start node";
    } else {
      const main = new GraphRun(this, start.id, this.opts.pool, {}, this.emit, this.opts.signal);
      const r = await main.execute();
      status = r.status === "succeeded" ? (this.exceptions > 0 ? "partial-succeeded" : "succeeded") : r.status;
      error = r.error;
    }
    await this.tail;
    this.closed = true;
    return {
      status,
      outputs: this.outputs,
      error,
      totalTokens: this.tokens,
      totalSteps: this.steps,
      exceptionsCount: this.exceptions,
      usages: this.usages,
      citations: this.citations,
    };
  }

  /** §3.10: limits are checked when a node finishes. */
  limitExceeded(): string | null {
    if (this.steps > this.maxSteps) return `Maximum execution steps exceeded: ${this.steps} > ${this.maxSteps}`;
    if (Date.now() - this.startedAt > this.maxTimeMs) return `Maximum execution time exceeded: ${Math.round(this.maxTimeMs / 1000)}s`;
    return null;
  }
}

// ------------------------------------------------------------------ one (child) graph run

interface ChildResult {
  status: "succeeded" | "failed" | "stopped";
  error: string | null;
}

type EdgeState = "unknown" | "taken" | "skipped";
type NodeState = "unknown" | "queued" | "running" | "done" | "skipped";

class GraphRun {
  readonly nodes: Set<string>;
  readonly edgeState = new Map<GraphEdge, EdgeState>();
  readonly nodeState = new Map<string, NodeState>();
  private readonly queue: Array<{ id: string; pred: string | null }> = [];
  private failure: string | null = null;
  private readonly abort = new AbortController();
  readonly signal: AbortSignal;
  readonly coordinator: ResponseCoordinator;
  /** A loop-end node ran in this round (§4.15 step 3). */
  loopEnded = false;
  /** Tokens of nodes of this (child) run, summed into container metadata (§4.14 step 7). */
  tokens = 0;

  constructor(
    readonly engine: Engine,
    readonly root: string,
    readonly pool: VariablePoolImpl,
    readonly scope: Scope,
    readonly emit: Emit,
    parentSignal: AbortSignal,
  ) {
    this.nodes = reachableFrom(engine.graph, root);
    for (const id of this.nodes) this.nodeState.set(id, "unknown");
    for (const id of this.nodes) for (const e of this.outEdges(id)) this.edgeState.set(e, "unknown");
    this.signal = AbortSignal.any([parentSignal, this.abort.signal]);
    this.coordinator = new ResponseCoordinator(this);
  }

  node(id: string): GraphNode {
    return this.engine.graph.nodes.get(id)!;
  }

  outEdges(id: string): GraphEdge[] {
    return (this.engine.graph.outgoing.get(id) ?? []).filter((e) => this.nodes.has(e.target));
  }

  inEdges(id: string): GraphEdge[] {
    return (this.engine.graph.incoming.get(id) ?? []).filter((e) => this.nodes.has(e.source));
  }

  private halted(): boolean {
    return this.failure !== null || this.signal.aborted;
  }

  private fail(message: string): void {
    if (this.failure === null) this.failure = message;
    // §3.6: on failure the run stops — running nodes are abandoned, nothing else starts.
    this.abort.abort(new Error(message));
  }

  async execute(): Promise<ChildResult> {
    this.nodeState.set(this.root, "queued");
    this.queue.push({ id: this.root, pred: null });
    const running = new Set<Promise<void>>();
    const aborted = new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve();
      else this.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    for (;;) {
      while (this.queue.length > 0 && !this.halted()) {
        const item = this.queue.shift()!;
        const p: Promise<void> = this.runNode(item.id, item.pred)
          .catch((err: unknown) => {
            this.engine.opts.services.logger.error({ err, nodeId: item.id }, "workflow: node crashed");
            this.fail(err instanceof Error ? err.message : String(err));
          })
          .finally(() => running.delete(p));
        running.add(p);
      }
      if (running.size === 0) break;
      if (this.halted()) {
        // Give aborted nodes a moment to report; a node that ignores its signal is abandoned.
        await Promise.race([Promise.allSettled([...running]), new Promise((r) => setTimeout(r, 2000).unref())]);
        break;
      }
      await Promise.race([...running, aborted]);
    }
    if (this.engine.stopped) return { status: "stopped", error: STOPPED_BY_USER };
    if (this.failure !== null) return { status: "failed", error: this.failure };
    if (this.signal.aborted) return { status: "stopped", error: STOPPED_BY_USER };
    return { status: "succeeded", error: null };
  }

  // ---------------------------------------------------------------- edges (§3.6)

  private isBranchNode(node: GraphNode): boolean {
    return BRANCH_TYPES.has(node.data.type) || node.data.error_strategy === "fail-branch";
  }

  /** Marks outgoing edges after a node finished; ready targets are queued in edge-list order. */
  private followEdges(nodeId: string, handle: string | undefined): void {
    const node = this.node(nodeId);
    const branch = this.isBranchNode(node) || handle !== undefined;
    const selected = handle ?? "source";
    for (const e of this.outEdges(nodeId)) {
      if (!branch || e.handle === selected) this.takeEdge(e);
      else this.skipEdge(e);
    }
    this.coordinator.onEdgesChanged();
  }

  private takeEdge(e: GraphEdge): void {
    this.edgeState.set(e, "taken");
    this.checkReady(e.target, e.source);
  }

  private skipEdge(e: GraphEdge): void {
    this.edgeState.set(e, "skipped");
    const target = e.target;
    if (this.nodeState.get(target) !== "unknown") return;
    const states = this.inEdges(target).map((x) => this.edgeState.get(x));
    if (states.includes("unknown")) return;
    if (states.includes("taken")) {
      this.checkReady(target, e.source);
      return;
    }
    // Every incoming edge skipped: the node is skipped and so is everything only it feeds.
    this.nodeState.set(target, "skipped");
    this.coordinator.onNodeSkipped(target);
    for (const out of this.outEdges(target)) this.skipEdge(out);
  }

  /** Join rule: ready iff no incoming edge is unknown and at least one is taken. */
  private checkReady(target: string, pred: string): void {
    if (this.nodeState.get(target) !== "unknown") return;
    const states = this.inEdges(target).map((x) => this.edgeState.get(x));
    if (states.includes("unknown") || !states.includes("taken")) return;
    this.nodeState.set(target, "queued");
    this.queue.push({ id: target, pred });
  }

  // ---------------------------------------------------------------- one node

  private async runNode(nodeId: string, pred: string | null): Promise<void> {
    const engine = this.engine;
    const node = this.node(nodeId);
    const type = node.data.type;
    const hidden = HIDDEN.has(type);
    this.nodeState.set(nodeId, "running");
    const execId = randomUUID();
    const index = ++engine.index;
    engine.steps++;
    const createdAt = nowSec();
    const started = Date.now();
    const base = {
      id: execId,
      node_id: nodeId,
      node_type: type,
      title: String(node.data.title ?? ""),
      index,
      predecessor_node_id: pred,
    };
    const scopeKeys = { iteration_id: this.scope.iterationId ?? null, loop_id: this.scope.loopId ?? null };
    if (!hidden) {
      await this.emit({
        kind: "event",
        event: "node_started",
        data: { ...base, inputs: null, inputs_truncated: false, created_at: createdAt, extras: {}, ...scopeKeys },
      });
    }

    const retry = isObj(node.data.retry_config) ? node.data.retry_config : {};
    const maxRetries = retry.retry_enabled === true && RETRYABLE.has(type) ? Math.max(0, Number(retry.max_retries ?? 0)) : 0;
    const intervalMs = Math.max(0, Number(retry.retry_interval ?? 0));
    let result: NodeResult;
    let attempt = 0;
    for (;;) {
      result = await this.invoke(node, { execId, createdAt, base });
      if (result.status !== "failed" || this.signal.aborted || attempt >= maxRetries) break;
      // §3.6: every failure event counts, also attempts that a retry later makes good.
      engine.exceptions++;
      attempt++;
      await this.emit({
        kind: "event",
        event: "node_retry",
        data: this.finishedData(base, createdAt, started, { ...result, status: "failed" }, { retry_index: attempt - 1, status: "retry" }),
      });
      await sleep(intervalMs, this.signal);
      if (this.signal.aborted) break;
    }

    let status: string = result.status;
    let outputs = result.outputs ?? null;
    let handle = result.edgeSourceHandle;
    const metadata: Record<string, unknown> = { ...(result.metadata ?? {}) };
    let error = result.error ?? null;
    if (this.signal.aborted && result.status !== "succeeded") {
      status = "stopped";
      error = error ?? STOPPED_BY_USER;
    } else if (result.status === "failed") {
      const strategy = node.data.error_strategy;
      const errorType = result.errorType ?? "NodeError";
      if (strategy === "default-value" || strategy === "fail-branch") {
        // §3.9 step 2: the failure is absorbed; the run may end partial-succeeded.
        engine.exceptions++;
        status = "exception";
        metadata.error_strategy = strategy;
        outputs = strategy === "default-value" ? { ...defaultValues(node.data.default_value), error_message: error ?? "", error_type: errorType } : { error_message: error ?? "", error_type: errorType };
        handle = strategy === "fail-branch" ? "fail-branch" : undefined;
      }
    } else if (result.status === "exception") {
      engine.exceptions++;
    }
    if (this.scope.iterationId) Object.assign(metadata, { iteration_id: this.scope.iterationId, iteration_index: this.scope.iterationIndex });
    if (this.scope.loopId) Object.assign(metadata, { loop_id: this.scope.loopId, loop_index: this.scope.loopIndex });

    const nodeTokens = CONTAINER_TYPES.has(type) ? 0 : tokensOf(result);
    if (nodeTokens > 0 && metadata.total_tokens === undefined) metadata.total_tokens = nodeTokens;
    engine.tokens += nodeTokens;
    this.tokens += CONTAINER_TYPES.has(type) ? Number(metadata.total_tokens ?? 0) : nodeTokens;
    if (!CONTAINER_TYPES.has(type) && result.usage?.usage) engine.usages.push(result.usage.usage);

    const ok = status === "succeeded" || status === "exception";
    if (ok) {
      // Only the engine writes node outputs, after the node succeeded or was handled (§3.4).
      for (const [k, v] of Object.entries(outputs ?? {})) this.pool.set([nodeId, k], v);
      this.recordRunOutputs(type, outputs ?? {});
      if (status === "succeeded" && result.citations?.length) engine.citations.push(result.citations);
    }
    this.nodeState.set(nodeId, "done");
    const finished = { ...result, status: status as NodeResult["status"], outputs, error, metadata };
    const limit = ok ? engine.limitExceeded() : null;
    // §5.3: chunks released by the value → chunks released by taken edges → node_finished.
    this.coordinator.onNodeDone(nodeId, ok);
    if (ok && !limit && !this.signal.aborted) this.followEdges(nodeId, handle);
    if (!hidden) await this.emit({ kind: "event", event: "node_finished", data: this.finishedData(base, createdAt, started, finished) });

    if (limit) this.fail(limit);
    else if (status === "failed") this.fail(error ?? "Node failed");
  }

  /** node_finished / node_retry data (§5.2), keys in Dify's order. */
  private finishedData(
    base: Record<string, unknown>,
    createdAt: number,
    started: number,
    r: NodeResult,
    extra: { retry_index?: number; status?: string } = {},
  ): Record<string, unknown> {
    const outputs = r.outputs ?? null;
    return {
      ...base,
      inputs: r.inputs ?? null,
      inputs_truncated: false,
      process_data: r.process_data ?? null,
      process_data_truncated: false,
      outputs,
      outputs_truncated: false,
      status: extra.status ?? r.status,
      error: r.error ?? null,
      elapsed_time: (Date.now() - started) / 1000,
      execution_metadata: r.metadata && Object.keys(r.metadata).length > 0 ? r.metadata : null,
      created_at: createdAt,
      finished_at: nowSec(),
      files: filesIn(outputs),
      iteration_id: this.scope.iterationId ?? null,
      loop_id: this.scope.loopId ?? null,
      ...(extra.retry_index !== undefined ? { retry_index: extra.retry_index } : {}),
    };
  }

  /** §3.6 "Outputs of the run": end sets keys, answer appends its text. */
  private recordRunOutputs(type: string, outputs: Record<string, unknown>): void {
    const out = this.engine.outputs;
    if (type === "end") Object.assign(out, outputs);
    else if (type === "answer") {
      out.answer = String(out.answer ?? "") + String(outputs.answer ?? "");
      out.files = Array.isArray(outputs.files) ? outputs.files : [];
    }
  }

  private async invoke(node: GraphNode, exec: { execId: string; createdAt: number; base: Record<string, unknown> }): Promise<NodeResult> {
    const type = node.data.type;
    try {
      switch (type) {
        case "iteration":
          return await runIteration(this, node, exec);
        case "loop":
          return await runLoop(this, node, exec);
        case "iteration-start":
        case "loop-start":
          return { status: "succeeded", inputs: {}, outputs: {} };
        case "loop-end":
          this.loopEnded = true;
          return { status: "succeeded", inputs: {}, outputs: {} };
      }
      const impl = this.engine.opts.resolve?.(type) ?? nodeImplementation(type);
      if (!impl) return { status: "failed", error: `Node type ${type} is not supported yet`, errorType: "NodeTypeNotSupported" };
      const ctx: NodeContext = {
        run: this.engine.opts.run,
        pool: this.pool,
        signal: this.signal,
        services: this.engine.opts.services,
        emitChunk: async (chunk) => {
          if (!this.signal.aborted) this.coordinator.onChunk(chunk.selector, chunk.text);
          // Back-pressure: the node goes on once its released text is delivered.
          await this.engine.idle();
        },
      };
      return await impl.run(node, ctx);
    } catch (err) {
      if (err instanceof NodeError) return { status: "failed", error: err.message, errorType: err.errorType };
      if (this.signal.aborted) return { status: "failed", error: STOPPED_BY_USER, errorType: "Stopped" };
      const e = err instanceof Error ? err : new Error(String(err));
      return { status: "failed", error: e.message, errorType: e.name || "Error" };
    }
  }
}

function tokensOf(r: NodeResult): number {
  const m = r.metadata?.total_tokens;
  if (typeof m === "number") return m;
  if (r.usage) return (r.usage.prompt_tokens ?? 0) + (r.usage.completion_tokens ?? 0);
  return 0;
}

/** Files found in a node's outputs (node_finished.files). */
function filesIn(outputs: Record<string, unknown> | null): unknown[] {
  const out: unknown[] = [];
  for (const v of Object.values(outputs ?? {})) {
    if (isFile(v)) out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (isFile(x)) out.push(x);
  }
  return out;
}

/** §3.9 step 3: `{key, type, value}` entries; non-string types given as strings are parsed. */
export function defaultValues(raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of Array.isArray(raw) ? raw : []) {
    if (!isObj(d) || typeof d.key !== "string") continue;
    let v = d.value;
    if (typeof v === "string" && d.type !== "string") {
      try {
        v = d.type === "number" ? Number.parseFloat(v) : JSON.parse(v);
      } catch {
        // Dify rejects such a DSL at import; keep the raw text rather than failing the run.
      }
    }
    out[d.key] = v;
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

// ------------------------------------------------------------------ response coordinator (§3.7)

interface Session {
  nodeId: string;
  segments: TemplateSegment[];
  pos: number;
  /** Chunks already forwarded from the stream of the current segment. */
  streamPos: number;
  /** `[node, var]` selectors the template reads (for assigner blocking). */
  reads: Selector[];
}

class ResponseCoordinator {
  private readonly sessions = new Map<string, Session>();
  private readonly waiting: Session[] = [];
  private active: Session | null = null;
  private readonly activated = new Set<string>();
  private readonly streams = new Map<string, { chunks: string[]; final: boolean }>();

  constructor(private readonly run: GraphRun) {
    for (const id of run.nodes) {
      const n = run.node(id);
      if (n.data.type === "answer") {
        const segments = parseTemplate(String(n.data.answer ?? ""));
        this.sessions.set(id, { nodeId: id, segments, pos: 0, streamPos: 0, reads: segments.filter((s) => s.kind === "var").map((s) => s.selector!) });
      } else if (n.data.type === "end") {
        // The end node streams its output selectors separated by "\n" literals (§3.7).
        const segments: TemplateSegment[] = [];
        const outs = Array.isArray(n.data.outputs) ? n.data.outputs : [];
        outs.forEach((o: unknown, i: number) => {
          if (i > 0) segments.push({ kind: "text", text: "\n" });
          const sel = isObj(o) && Array.isArray(o.value_selector) ? (o.value_selector as string[]).map(String) : [];
          segments.push({ kind: "var", text: sel.join("."), selector: sel });
        });
        this.sessions.set(id, { nodeId: id, segments, pos: 0, streamPos: 0, reads: segments.filter((s) => s.kind === "var").map((s) => s.selector!) });
      }
    }
  }

  onChunk(selector: Selector, text: string): void {
    const key = selector.join(".");
    const s = this.streams.get(key) ?? this.streams.set(key, { chunks: [], final: false }).get(key)!;
    s.chunks.push(text);
    this.flush();
  }

  onNodeDone(nodeId: string, ok: boolean): void {
    for (const [key, s] of this.streams) if (key.startsWith(`${nodeId}.`) && ok) s.final = true;
    this.flush();
  }

  onNodeSkipped(_nodeId: string): void {
    this.flush();
  }

  onEdgesChanged(): void {
    for (const s of this.sessions.values()) {
      if (this.activated.has(s.nodeId)) continue;
      if (this.pathOpen(s)) {
        this.activated.add(s.nodeId);
        this.waiting.push(s);
      }
    }
    this.flush();
  }

  /** An edge blocks a session when it leaves a branch, container, response node or an assigner writing what the template reads. */
  private isBlocking(e: GraphEdge, s: Session): boolean {
    const src = this.run.node(e.source);
    const t = src.data.type;
    if (BRANCH_TYPES.has(t) || CONTAINER_TYPES.has(t) || RESPONSE_TYPES.has(t) || src.data.error_strategy === "fail-branch") return true;
    if (t === "assigner") {
      const written: Selector[] = [];
      if (Array.isArray(src.data.assigned_variable_selector)) written.push(src.data.assigned_variable_selector as string[]);
      for (const it of Array.isArray(src.data.items) ? src.data.items : []) {
        if (isObj(it) && Array.isArray(it.variable_selector)) written.push(it.variable_selector as string[]);
      }
      return written.some((w) => s.reads.some((r) => r[0] === w[0] && r[1] === w[1]));
    }
    return false;
  }

  /** Some root path to the response node has all its blocking edges taken (§3.7 step 1). */
  private pathOpen(s: Session): boolean {
    const seen = new Set<string>();
    const visit = (id: string): boolean => {
      if (id === this.run.root) return true;
      if (seen.has(id)) return false;
      seen.add(id);
      for (const e of this.run.inEdges(id)) {
        if (this.isBlocking(e, s) && this.run.edgeState.get(e) !== "taken") continue;
        if (visit(e.source)) return true;
      }
      return false;
    };
    return visit(s.nodeId);
  }

  private send(text: string, selector: Selector): void {
    if (text === "") return;
    void this.run.emit({ kind: "chunk", text, selector });
  }

  /** Releases what the active session can release now; one session at a time (§3.7 step 2–3). */
  private flush(): void {
    for (;;) {
      if (!this.active) {
        this.active = this.waiting.shift() ?? null;
        if (!this.active) return;
      }
      const s = this.active;
      while (s.pos < s.segments.length) {
        const seg = s.segments[s.pos]!;
        if (seg.kind === "text") {
          this.send(seg.text, [s.nodeId, "answer"]);
        } else if (!this.releaseVar(s, seg.selector!)) {
          return; // wait: nothing after this segment is emitted until it completes
        }
        s.pos++;
        s.streamPos = 0;
      }
      this.active = null;
    }
  }

  /** True when the variable segment is complete. */
  private releaseVar(s: Session, sel: Selector): boolean {
    const owner = sel[0] ?? "";
    const stream = this.streams.get(sel.join("."));
    const state = this.run.nodeState.get(owner);
    if (stream) {
      while (s.streamPos < stream.chunks.length) this.send(stream.chunks[s.streamPos++]!, sel);
      return stream.final || state === "done" || state === "skipped";
    }
    // Not a node of this run (sys/env/conversation, a container's item/loop variables, outer nodes).
    if (state === undefined || state === "done") {
      const v = this.run.pool.get(sel);
      if (v !== undefined) this.send(renderMarkdown(v), sel);
      return true;
    }
    // A variable of a skipped node is dropped silently.
    return state === "skipped";
  }
}

// ------------------------------------------------------------------ containers (§4.14, §4.15)

interface ExecInfo {
  execId: string;
  createdAt: number;
  base: Record<string, unknown>;
}

function containerHead(node: GraphNode, exec: ExecInfo) {
  return { id: exec.execId, node_id: node.id, node_type: node.data.type, title: String(node.data.title ?? "") };
}

/** A stream of events held back and replayed at once (parallel iteration rounds, §4.14 step 4). */
function bufferedEmit(): { emit: Emit; flushTo(target: Emit): Promise<void> } {
  const held: EngineEvent[] = [];
  return {
    emit: async (ev) => {
      held.push(ev);
    },
    async flushTo(target) {
      for (const ev of held.splice(0)) await target(ev);
    },
  };
}

async function runIteration(parent: GraphRun, node: GraphNode, exec: ExecInfo): Promise<NodeResult> {
  const d = node.data;
  const sel = Array.isArray(d.iterator_selector) ? (d.iterator_selector as string[]).map(String) : [];
  const value = parent.pool.get(sel);
  if (value === undefined) return { status: "failed", error: `Iterator variable ${sel.join(".")} not found`, errorType: "IteratorVariableNotFoundError" };
  if (value !== null && !Array.isArray(value)) return { status: "failed", error: `Invalid iterator value: ${JSON.stringify(value)}, please provide a list.`, errorType: "InvalidIteratorValueError" };
  const items = (value ?? []) as unknown[];
  const inputs = { iterator_selector: items };
  // §4.14 step 1: null or empty → output [] at once, no iteration events.
  if (items.length === 0) return { status: "succeeded", inputs, outputs: { output: [] } };

  const startNode = String(d.start_node_id ?? "");
  if (!parent.engine.graph.nodes.has(startNode)) return { status: "failed", error: `Iteration start node ${startNode} not found`, errorType: "StartNodeIdNotFoundError" };
  const outSel = Array.isArray(d.output_selector) ? (d.output_selector as string[]).map(String) : [];
  const mode = String(d.error_handle_mode ?? "terminated");
  const flatten = d.flatten_output !== false;
  const parallel = d.is_parallel === true;
  const head = containerHead(node, exec);
  const started = Date.now();
  await parent.emit({
    kind: "event",
    event: "iteration_started",
    data: { ...head, created_at: exec.createdAt, extras: {}, metadata: { iterator_length: items.length }, inputs, inputs_truncated: false },
  });

  const results: Array<{ ok: boolean; value: unknown } | undefined> = new Array(items.length);
  const durations: Record<string, number> = {};
  let tokens = 0;
  let failure: string | null = null;
  const stopAll = new AbortController();
  const signal = AbortSignal.any([parent.signal, stopAll.signal]);

  const round = async (i: number, emit: Emit): Promise<void> => {
    const t0 = Date.now();
    await emit({ kind: "event", event: "iteration_next", data: { ...head, index: i, created_at: nowSec(), extras: {} } });
    const pool = parent.pool.clone();
    pool.set([node.id, "item"], items[i]);
    pool.set([node.id, "index"], i);
    const child = new GraphRun(parent.engine, startNode, pool, { ...parent.scope, iterationId: node.id, iterationIndex: i }, emit, signal);
    const r = await child.execute();
    tokens += child.tokens;
    durations[String(i)] = (Date.now() - t0) / 1000;
    // Conversation-variable writes of a round are applied to the run's pool at once (§8 item 2).
    for (const [k, v] of pool.entries("conversation")) parent.pool.set(["conversation", k], v);
    if (r.status === "succeeded") {
      const out = pool.get(outSel);
      results[i] = { ok: true, value: out === undefined ? null : out };
    } else {
      results[i] = { ok: false, value: null };
      if (r.status === "failed" && mode === "terminated" && failure === null) {
        failure = r.error;
        stopAll.abort();
      }
    }
  };

  if (!parallel) {
    for (let i = 0; i < items.length && failure === null && !parent.signal.aborted; i++) await round(i, parent.emit);
  } else {
    const width = Math.max(1, Math.min(Number(d.parallel_nums ?? 10) || 10, items.length));
    let next = 0;
    const worker = async () => {
      while (next < items.length && failure === null && !parent.signal.aborted) {
        const i = next++;
        const buf = bufferedEmit();
        await round(i, buf.emit);
        await buf.flushTo(parent.emit);
      }
    };
    await Promise.all(Array.from({ length: width }, worker));
  }

  let outputs: unknown[] = [];
  for (const r of results) {
    if (!r) continue;
    if (r.ok) outputs.push(r.value);
    else if (mode === "continue-on-error") outputs.push(null);
    // remove-abnormal-output: the round contributes nothing
  }
  // §4.14 step 6: flatten when every non-null round output is a list.
  if (flatten) {
    const nonNull = outputs.filter((o) => o !== null);
    if (nonNull.length > 0 && nonNull.every(Array.isArray)) outputs = (nonNull as unknown[][]).flat();
  }
  const stopped = parent.signal.aborted && failure === null;
  const status = failure !== null ? "failed" : stopped ? "stopped" : "succeeded";
  const metadata = { total_tokens: tokens, iteration_duration_map: durations };
  const outObj = { output: outputs };
  await parent.emit({
    kind: "event",
    event: "iteration_completed",
    data: {
      ...head,
      outputs: status === "succeeded" ? outObj : null,
      outputs_truncated: false,
      created_at: exec.createdAt,
      extras: {},
      inputs,
      inputs_truncated: false,
      status,
      error: failure ?? (stopped ? STOPPED_BY_USER : null),
      elapsed_time: (Date.now() - started) / 1000,
      total_tokens: tokens,
      execution_metadata: metadata,
      finished_at: nowSec(),
      steps: items.length,
    },
  });
  if (status !== "succeeded") return { status: "failed", inputs, error: failure ?? STOPPED_BY_USER, errorType: "IterationNodeError", metadata };
  return { status: "succeeded", inputs, outputs: outObj, metadata };
}

const LOOP_ARRAY_TYPES = new Set(["array[string]", "array[number]", "array[object]", "array[boolean]", "object"]);

/** §4.15: constants are typed directly; JSON strings are parsed for arrays/objects and mismatches. */
function loopConstant(varType: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (varType === "string") return value;
  if (LOOP_ARRAY_TYPES.has(varType) || varType === "number" || varType === "boolean") {
    try {
      return JSON.parse(value);
    } catch {
      if (varType === "number" && value.trim() !== "" && !Number.isNaN(Number(value))) return Number(value);
      return value;
    }
  }
  return value;
}

async function runLoop(parent: GraphRun, node: GraphNode, exec: ExecInfo): Promise<NodeResult> {
  const d = node.data;
  const loopId = node.id;
  const count = Math.max(0, Number(d.loop_count ?? 0) || 0);
  const startNode = String(d.start_node_id ?? "");
  if (!parent.engine.graph.nodes.has(startNode)) return { status: "failed", error: `Loop start node ${startNode} not found`, errorType: "StartNodeIdNotFoundError" };
  const conditions = (Array.isArray(d.break_conditions) ? d.break_conditions : []) as Condition[];
  const logical = typeof d.logical_operator === "string" ? d.logical_operator : "and";
  const vars = (Array.isArray(d.loop_variables) ? d.loop_variables : []).filter(isObj);

  // Step 1: loop variables live in the shared pool at [loop_id, label].
  const inputs: Record<string, unknown> = { loop_count: count };
  for (const v of vars) {
    const label = String(v.label ?? "");
    let value: unknown;
    if (v.value_type === "variable") {
      value = Array.isArray(v.value) ? parent.pool.get((v.value as unknown[]).map(String)) : undefined;
      if (value === undefined) return { status: "failed", inputs, error: `Variable ${Array.isArray(v.value) ? v.value.join(".") : String(v.value)} not found`, errorType: "LoopNodeError" };
    } else {
      value = loopConstant(String(v.var_type ?? "string"), v.value);
    }
    parent.pool.set([loopId, label], value);
    inputs[label] = value;
  }
  const labels = vars.map((v) => String(v.label ?? ""));
  const snapshot = () => Object.fromEntries(labels.map((l) => [l, parent.pool.get([loopId, l]) ?? null]));

  const head = containerHead(node, exec);
  const started = Date.now();
  await parent.emit({
    kind: "event",
    event: "loop_started",
    data: { ...head, created_at: exec.createdAt, extras: {}, metadata: { loop_length: count }, inputs, inputs_truncated: false },
  });

  const breakMet = (strict: boolean): boolean => {
    if (conditions.length === 0) return false;
    try {
      return evaluateConditions(conditions, logical, parent.pool).finalResult;
    } catch (err) {
      // Step 2: errors before the first round count as "not met"; later ones fail the loop.
      if (strict) throw err;
      return false;
    }
  };

  const durations: Record<string, number> = {};
  const varMap: Record<string, Record<string, unknown>> = {};
  let rounds = 0;
  let reason = "loop_completed";
  let failure: string | null = null;
  let tokens = 0;
  const inner = [...parent.engine.graph.nodes.values()].filter((n) => n.data.loop_id === loopId).map((n) => n.id);
  if (breakMet(false)) reason = "loop_break";
  else {
    for (let i = 0; i < count; i++) {
      const t0 = Date.now();
      // Step 3: stale outputs of the previous round must not be read or streamed.
      for (const id of inner) parent.pool.removeNode(id);
      const child = new GraphRun(parent.engine, startNode, parent.pool, { ...parent.scope, loopId, loopIndex: i }, parent.emit, parent.signal);
      const r = await child.execute();
      tokens += child.tokens;
      durations[String(i)] = (Date.now() - t0) / 1000;
      rounds = i + 1;
      varMap[String(i)] = snapshot();
      if (r.status !== "succeeded") {
        failure = r.error ?? "Loop round failed";
        break;
      }
      if (child.loopEnded) {
        reason = "loop_break";
        break;
      }
      try {
        if (breakMet(true)) {
          reason = "loop_break";
          break;
        }
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
        break;
      }
      if (i < count - 1) {
        await parent.emit({ kind: "event", event: "loop_next", data: { ...head, index: i + 1, created_at: nowSec(), extras: {}, pre_loop_output: snapshot() } });
      }
    }
  }
  const outputs = { ...snapshot(), loop_round: rounds };
  const metadata = { total_tokens: tokens, loop_duration_map: durations, loop_variable_map: varMap, completed_reason: reason };
  const stopped = parent.signal.aborted && failure !== null;
  const status = failure !== null ? (stopped ? "stopped" : "failed") : "succeeded";
  await parent.emit({
    kind: "event",
    event: "loop_completed",
    data: {
      ...head,
      outputs: status === "succeeded" ? outputs : null,
      outputs_truncated: false,
      created_at: exec.createdAt,
      extras: {},
      inputs,
      inputs_truncated: false,
      status,
      error: failure,
      elapsed_time: (Date.now() - started) / 1000,
      total_tokens: tokens,
      execution_metadata: metadata,
      finished_at: nowSec(),
      steps: rounds,
    },
  });
  if (failure !== null) return { status: "failed", inputs, error: failure, errorType: "LoopNodeError", metadata };
  return { status: "succeeded", inputs, outputs, metadata };
}

// The code sandbox behind code nodes (dsl-and-workflow §4.8): Python 3 in Pyodide (CPython on
// WASM) and JavaScript in QuickJS (WASM), each inside worker threads. Dify uses a separate
// sandbox service over HTTP; here everything ships inside npm packages and nothing is downloaded.
//
// Python: one interpreter serves ONE run and is then thrown away, so no state (monkeypatched
// modules, planted hooks) can leak from one run, tenant or app into another. To make that
// affordable the interpreter is booted once per process and memory-snapshotted; a run worker
// restores the snapshot (~0.5 s instead of ~3 s) and a few are kept warm ahead of demand.
// JavaScript: QuickJS creates a fresh runtime per run inside long-lived workers (the worker's own
// realm is never exposed to QuickJS), which costs milliseconds.
// Time limit: enforced in the parent by terminating the worker (a runaway loop cannot stop it);
// QuickJS also has its own interrupt handler. Memory: WASM memory cap inside the worker (Python
// gets a MemoryError) plus `resourceLimits` on the worker's JS heap.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { Logger } from "../../../lib/logger.js";
import type { CodeSandbox } from "../types.js";

export type CodeLanguage = "python3" | "javascript";

export interface CodeSandboxOptions {
  logger?: Logger;
  /** WASM memory cap per run (Python) / QuickJS heap limit (JavaScript), in MB. */
  memoryMb?: number;
  /** Idle Python interpreters kept ready. */
  pythonWarm?: number;
  /** Runs executing at once, per language; further runs queue. */
  maxConcurrency?: number;
  /** Start booting the Python snapshot and the warm workers now instead of on first use. */
  prewarm?: boolean;
}

export interface CodeSandboxRequest {
  language: CodeLanguage;
  code: string;
  inputs: Record<string, unknown>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ManagedCodeSandbox extends CodeSandbox {
  run(req: CodeSandboxRequest): Promise<Record<string, unknown>>;
  /** Resolves when the Python snapshot exists and the warm pool is filled. */
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

/** A failure of the user's code or of its execution; `message` is what the node reports. */
export class CodeExecutionError extends Error {
  readonly errorType: string;
  constructor(message: string, errorType = "CodeExecutionError") {
    super(message);
    this.name = "CodeExecutionError";
    this.errorType = errorType;
  }
}

const PY_WORKER = new URL("./python-worker.mjs", import.meta.url);
const JS_WORKER = new URL("./js-worker.mjs", import.meta.url);

interface WorkerReply {
  type: string;
  id?: number;
  ok?: boolean;
  result?: string;
  error?: string;
  errorType?: string;
  timeout?: boolean;
  snapshot?: SharedArrayBuffer;
  bootMs?: number;
}

/** A counting semaphore (runs per language). */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async enter(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

function workerOptions(memoryMb: number, workerData: Record<string, unknown>) {
  return {
    // The worker sees an empty environment, inherits no loader flags, and its stdout/stderr
    // are piped here and dropped (resume() below) instead of reaching the server's output.
    env: {},
    execArgv: [],
    workerData,
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: Math.max(64, memoryMb), maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
  };
}

function drain(worker: Worker): void {
  worker.stdout?.resume();
  worker.stderr?.resume();
}

function timeoutError(timeoutMs: number): CodeExecutionError {
  return new CodeExecutionError(`Code execution timed out: the code ran longer than ${timeoutMs} ms.`, "TimeoutError");
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error("The code execution was aborted.");
  err.name = "AbortError";
  return err;
}

function workerFailure(err: unknown): CodeExecutionError {
  const code = (err as { code?: string } | null)?.code;
  if (code === "ERR_WORKER_OUT_OF_MEMORY") return new CodeExecutionError("Code execution failed: memory limit exceeded.", "MemoryError");
  return new CodeExecutionError(`Code execution failed: ${err instanceof Error ? err.message : String(err)}`, "SandboxError");
}

/** Python's `type(x).__name__` for a JSON value (the names Dify's messages use). */
export function pyTypeName(value: unknown): string {
  if (value === null || value === undefined) return "NoneType";
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "bigint") return "int";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (Array.isArray(value)) return "list";
  return "dict";
}

/**
 * Parses the JSON a script returned. Integers beyond 2^53 become BigInt, so range checks against
 * ±(2^63-1) see the exact value Python produced (a double would round 2^63 down into range).
 */
export function parseResultJson(text: string): unknown {
  const reviver = (_key: string, value: unknown, context?: { source?: string }) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  };
  return (JSON.parse as (t: string, r: typeof reviver) => unknown)(text, reviver);
}

function toResult(text: string | undefined): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseResultJson(text ?? "");
  } catch (err) {
    // What Dify reports when the printed result is not JSON (e.g. JS `main` returning undefined).
    const detail = text === "undefined" ? "Expecting value: line 1 column 1 (char 0)" : err instanceof Error ? err.message : String(err);
    throw new CodeExecutionError(`Failed to parse JSON response: ${detail}.`, "ValueError");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CodeExecutionError(`Result must be a dict, got ${pyTypeName(value)}`, "ValueError");
  }
  return value as Record<string, unknown>;
}

// ------------------------------------------------------------------------------------ Python

// tsconfig has no DOM lib, so the WebAssembly global is typed here (a compiled module is opaque to us).
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<object> } }).WebAssembly;

interface PyBase {
  wasmModule: object;
  snapshot: SharedArrayBuffer | undefined;
}

interface ReadyWorker {
  worker: Worker;
  bootMs: number;
}

class PythonPool {
  private base: Promise<PyBase> | null = null;
  private readonly idle: ReadyWorker[] = [];
  private starting = 0;
  private closed = false;
  private readonly all = new Set<Worker>();

  constructor(
    private readonly memoryMb: number,
    private readonly warm: number,
    private readonly logger: Logger | undefined,
  ) {}

  private loadBase(): Promise<PyBase> {
    this.base ??= (async () => {
      const t0 = performance.now();
      const require = createRequire(import.meta.url);
      const dir = path.dirname(require.resolve("pyodide/package.json"));
      const wasmModule = await wasm.compile(await readFile(path.join(dir, "pyodide.asm.wasm")));
      let snapshot: SharedArrayBuffer | undefined;
      try {
        const reply = await this.spawnRaw({ mode: "snapshot", wasmModule }, "snapshot");
        snapshot = reply.reply.snapshot;
        await reply.worker.terminate();
      } catch (err) {
        // Without a snapshot every run boots a full interpreter: slower, equally isolated.
        this.logger?.warn({ err }, "python sandbox: memory snapshot failed, booting interpreters from scratch");
      }
      this.logger?.info({ ms: Math.round(performance.now() - t0), snapshotBytes: snapshot?.byteLength ?? 0 }, "python sandbox ready");
      return { wasmModule, snapshot };
    })();
    this.base.catch(() => {
      this.base = null; // let a later run try again
    });
    return this.base;
  }

  /** Starts a worker and resolves with it and its first message of type `expect`. */
  private spawnRaw(workerData: Record<string, unknown>, expect: string): Promise<{ worker: Worker; reply: WorkerReply }> {
    if (this.closed) return Promise.reject(new CodeExecutionError("The code sandbox is closed.", "SandboxError"));
    const worker = new Worker(PY_WORKER, workerOptions(this.memoryMb, { memoryMb: this.memoryMb, ...workerData }));
    drain(worker);
    this.all.add(worker);
    worker.once("exit", () => this.all.delete(worker));
    return new Promise((resolve, reject) => {
      const onError = (err: unknown) => reject(workerFailure(err));
      const onExit = (code: number) => reject(new CodeExecutionError(`Python sandbox exited while starting (code ${code}).`, "SandboxError"));
      worker.once("error", onError);
      worker.once("exit", onExit);
      worker.once("message", (msg: WorkerReply) => {
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (msg.type === expect) resolve({ worker, reply: msg });
        else reject(new CodeExecutionError(`Python sandbox failed to start (${msg.type}).`, "SandboxError"));
      });
    });
  }

  private async spawn(): Promise<ReadyWorker> {
    const base = await this.loadBase();
    const { worker, reply } = await this.spawnRaw({ mode: "run", wasmModule: base.wasmModule, snapshot: base.snapshot }, "ready");
    // A warm worker that dies while idle (should not happen) is simply dropped from the pool.
    worker.once("exit", () => {
      const i = this.idle.findIndex((r) => r.worker === worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return { worker, bootMs: reply.bootMs ?? 0 };
  }

  /** Keeps `warm` idle interpreters booted ahead of demand. */
  refill(): void {
    while (!this.closed && this.idle.length + this.starting < this.warm) {
      this.starting++;
      this.spawn()
        .then((ready) => {
          if (this.closed) void ready.worker.terminate();
          else this.idle.push(ready);
        })
        .catch((err: unknown) => this.logger?.warn({ err }, "python sandbox: warm worker failed to start"))
        .finally(() => {
          this.starting--;
        });
    }
  }

  async warmUp(): Promise<void> {
    await this.loadBase();
    this.refill();
    while (!this.closed && this.idle.length < this.warm && this.starting > 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async run(code: string, inputsJson: string, timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const ready = this.idle.shift() ?? (await this.spawn());
    this.refill();
    const { worker } = ready;
    try {
      const reply = await exchange(worker, { id: 1, code, inputsJson }, timeoutMs, signal);
      if (!reply.ok) throw new CodeExecutionError(reply.error ?? "Code execution failed.", reply.errorType ?? "CodeExecutionError");
      return reply.result;
    } finally {
      // One run per interpreter, whatever happened.
      void worker.terminate();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((w) => w.terminate()));
  }
}

/** Sends one job and waits for its answer, the deadline or the abort — whichever comes first. */
function exchange(worker: Worker, job: Record<string, unknown> & { id: number }, timeoutMs: number, signal?: AbortSignal): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
      fn();
    };
    const onMessage = (msg: WorkerReply) => {
      if (msg.type === "result" && msg.id === job.id) finish(() => resolve(msg));
    };
    const onError = (err: unknown) => finish(() => reject(workerFailure(err)));
    const onExit = (code: number) => finish(() => reject(new CodeExecutionError(`Code execution failed: the sandbox exited (code ${code}).`, "SandboxError")));
    const onAbort = () =>
      finish(() => {
        void worker.terminate();
        reject(abortError(signal!));
      });
    const timer = setTimeout(
      () =>
        finish(() => {
          void worker.terminate();
          reject(timeoutError(timeoutMs));
        }),
      timeoutMs,
    );
    worker.on("message", onMessage);
    worker.once("error", onError);
    worker.once("exit", onExit);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.postMessage(job);
  });
}

// ------------------------------------------------------------------------------------ JavaScript

class JsPool {
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private closed = false;
  private nextId = 1;

  constructor(private readonly memoryMb: number) {}

  private spawn(): Promise<Worker> {
    if (this.closed) return Promise.reject(new CodeExecutionError("The code sandbox is closed.", "SandboxError"));
    const worker = new Worker(JS_WORKER, workerOptions(this.memoryMb * 2, { memoryMb: this.memoryMb }));
    drain(worker);
    this.all.add(worker);
    worker.once("exit", () => {
      this.all.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return new Promise((resolve, reject) => {
      worker.once("error", (err) => reject(workerFailure(err)));
      worker.once("message", (msg: WorkerReply) => (msg.type === "ready" ? resolve(worker) : reject(new CodeExecutionError("JavaScript sandbox failed to start.", "SandboxError"))));
    });
  }

  async run(code: string, inputsJson: string, timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const worker = this.idle.pop() ?? (await this.spawn());
    let healthy = false;
    try {
      // QuickJS interrupts itself at the deadline; the parent's timer (with a grace period) only
      // fires if the worker is stuck beyond that, and then the worker is replaced.
      const reply = await exchange(worker, { id: this.nextId++, code, inputsJson, timeoutMs }, timeoutMs + 1000, signal).catch((err: unknown) => {
        throw err instanceof CodeExecutionError && err.errorType === "TimeoutError" ? timeoutError(timeoutMs) : err;
      });
      healthy = true;
      if (reply.timeout) throw timeoutError(timeoutMs);
      if (!reply.ok) throw new CodeExecutionError(reply.error ?? "Code execution failed.", reply.errorType ?? "CodeExecutionError");
      return reply.result;
    } finally {
      if (healthy && !this.closed) this.idle.push(worker);
      else void worker.terminate();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((w) => w.terminate()));
  }
}

// ------------------------------------------------------------------------------------ facade

export function createCodeSandbox(opts: CodeSandboxOptions = {}): ManagedCodeSandbox {
  const memoryMb = opts.memoryMb ?? 256;
  const concurrency = Math.max(1, opts.maxConcurrency ?? 4);
  const python = new PythonPool(memoryMb, Math.max(0, opts.pythonWarm ?? 1), opts.logger);
  const js = new JsPool(memoryMb);
  const gates: Record<CodeLanguage, Gate> = { python3: new Gate(concurrency), javascript: new Gate(concurrency) };

  const sandbox: ManagedCodeSandbox = {
    async run(req) {
      if (req.language !== "python3" && req.language !== "javascript") {
        throw new CodeExecutionError(`Unsupported code language: ${String(req.language)}`, "CodeNodeError");
      }
      if (req.signal?.aborted) throw abortError(req.signal);
      let inputsJson: string;
      try {
        inputsJson = JSON.stringify(req.inputs, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
      } catch (err) {
        throw new CodeExecutionError(`Failed to serialize the inputs: ${err instanceof Error ? err.message : String(err)}`, "ValueError");
      }
      const gate = gates[req.language];
      await gate.enter();
      try {
        if (req.signal?.aborted) throw abortError(req.signal);
        const pool = req.language === "python3" ? python : js;
        const text = await pool.run(req.code, inputsJson, req.timeoutMs, req.signal);
        return toResult(text);
      } finally {
        gate.leave();
      }
    },
    warmUp: () => python.warmUp(),
    async close() {
      await Promise.all([python.close(), js.close()]);
    },
  };
  if (opts.prewarm) {
    sandbox.warmUp().catch((err: unknown) => opts.logger?.warn({ err }, "python sandbox: prewarm failed"));
  }
  return sandbox;
}

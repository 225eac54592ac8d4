// JavaScript code nodes run in QuickJS (a separate JS engine compiled to WASM), inside this
// worker thread so a run never blocks the parent's event loop. Plain JavaScript so the worker
// loads without a TS loader.
//
// Isolation: the QuickJS context has only the ECMAScript built-ins plus a silent `console` — no
// `require`, `process`, `fetch`, timers, `std`/`os` modules or any host object; nothing of this
// worker's realm is passed in. Every run gets a fresh runtime and context (no state survives a
// run), with a memory limit, a stack limit and an interrupt handler that stops it at its deadline.
// The parent still terminates this worker if it does not answer in time (belt and braces).
import { parentPort, workerData } from "node:worker_threads";
import { newQuickJSWASMModuleFromVariant, shouldInterruptAfterDeadline } from "quickjs-emscripten-core";
import variant from "@jitl/quickjs-wasmfile-release-sync";

const memoryBytes = Math.max(16, Number(workerData?.memoryMb ?? 128)) * 1024 * 1024;
const QuickJS = await newQuickJSWASMModuleFromVariant(variant);

// Dify runs JS code nodes on Node.js, where `console.log` exists; output is discarded there too
// (only the result tag on stdout counts), so a no-op console keeps such code working.
const PRELUDE = `var console = (function () { var f = function () {}; return { log: f, info: f, warn: f, error: f, debug: f, trace: f, dir: f }; })();\n`;

function describe(dumped) {
  if (dumped && typeof dumped === "object") {
    const name = typeof dumped.name === "string" ? dumped.name : "Error";
    const message = typeof dumped.message === "string" ? dumped.message : JSON.stringify(dumped);
    const stack = typeof dumped.stack === "string" && dumped.stack ? `\n${dumped.stack.trimEnd()}` : "";
    return { errorType: name, error: `${name}: ${message}${stack}` };
  }
  return { errorType: "Error", error: `Uncaught ${String(dumped)}` };
}

function runOnce(msg) {
  const runtime = QuickJS.newRuntime();
  try {
    runtime.setMemoryLimit(memoryBytes);
    runtime.setMaxStackSize(1024 * 1024);
    runtime.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + msg.timeoutMs));
    const vm = runtime.newContext();
    try {
      // Dify's Node template: user code, then `main(inputs)` and JSON.stringify of the result.
      const source = `${PRELUDE}${msg.code}\n;JSON.stringify(main(JSON.parse(${JSON.stringify(msg.inputsJson)})));`;
      const result = vm.evalCode(source, "code.js");
      if (result.error) {
        const dumped = vm.dump(result.error);
        result.error.dispose();
        const info = describe(dumped);
        if (info.errorType === "InternalError" && /interrupted/.test(info.error)) return { ok: false, timeout: true, errorType: "TimeoutError", error: "interrupted" };
        return { ok: false, ...info };
      }
      const value = vm.dump(result.value);
      result.value.dispose();
      // JSON.stringify(undefined) is undefined: Dify then fails to parse the printed "undefined".
      return { ok: true, result: typeof value === "string" ? value : "undefined" };
    } finally {
      vm.dispose();
    }
  } finally {
    try { runtime.dispose(); } catch { /* a run that hit the memory limit may leave objects behind */ }
  }
}

parentPort.on("message", (msg) => {
  let reply;
  try {
    reply = runOnce(msg);
  } catch (err) {
    reply = { ok: false, errorType: "SandboxError", error: String(err && err.message ? err.message : err) };
  }
  parentPort.postMessage({ type: "result", id: msg.id, ...reply });
});
parentPort.postMessage({ type: "ready" });

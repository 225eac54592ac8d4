// One Python interpreter (Pyodide, CPython compiled to WASM) in one worker thread, for ONE run.
// Plain JavaScript (not TypeScript) so the same file loads as a worker under tsx, vitest and a
// bare `node`, without a TS loader in the worker.
//
// Isolation, in layers (the worker itself is thrown away after one run, so nothing a script does
// to the interpreter — monkeypatched modules, planted hooks — can see another run's inputs):
//  1. The parent starts this worker with an empty `process.env`, JS-heap `resourceLimits` and
//     piped stdout/stderr that it discards.
//  2. WASM memory: Pyodide grows its memory through `WebAssembly.Memory.prototype.grow` from JS;
//     the patched `grow` refuses to go past the cap, so malloc fails and Python raises MemoryError
//     instead of taking the host's memory.
//  3. After the interpreter has booted, the JS realm is stripped before user code runs: the
//     `require` shim Pyodide leaves on globalThis (it hands out fs and child_process), `process`,
//     `fetch`, `WebSocket` and friends are deleted; `eval` and every Function constructor throw,
//     so JS reached through Pyodide's FFI can neither name a host object nor compile code that
//     could `import()` one; Pyodide API methods that reach the host (loadPackage, mountNodeFS,
//     useNodeSockFS, loadBinaryFile, FS.mount …) are replaced by throwing stubs.
//  4. Python side (defence in depth, not the boundary): the `js`/`pyodide_js` FFI modules are
//     unregistered (`js` maps to an empty object anyway, via `jsglobals`), and imports of the FFI
//     and package-loader modules are refused by a meta-path hook.
// Files: Pyodide's in-memory file system only; no host directory is ever mounted. Packages: the
// stdlib zip shipped in the npm package; nothing is fetched (indexURL is the package folder and
// package loading is disabled).
import { parentPort, workerData } from "node:worker_threads";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const indexURL = path.dirname(require.resolve("pyodide/package.json")) + path.sep;
const memoryCapBytes = Math.max(64, Number(workerData?.memoryMb ?? 256)) * 1024 * 1024;

// --- layer 2: cap WASM memory growth (must be installed before Pyodide instantiates).
const WASM_PAGE = 65536;
const realGrow = WebAssembly.Memory.prototype.grow;
Object.defineProperty(WebAssembly.Memory.prototype, "grow", {
  value: function grow(deltaPages) {
    const next = this.buffer.byteLength + Number(deltaPages) * WASM_PAGE;
    if (next > memoryCapBytes) throw new RangeError("WebAssembly.Memory.grow(): sandbox memory limit reached");
    return realGrow.call(this, deltaPages);
  },
  writable: false,
  configurable: false,
});

// WASM imports that reach the host are replaced before instantiation. This is the boundary
// even for code that corrupts WASM memory or calls function pointers through ctypes: the
// instance simply has no path to them. Emscripten's system() spawns a shell through
// child_process in Node, its sockets go through the `ws` package, run_script evals JS.
const EACCES = 2; // Emscripten/WASI errno numbering
const deniedImports = {
  _emscripten_system: () => 0, // system(NULL) → "no shell"; system(cmd) → exit status 0, nothing runs
  __syscall_socket: () => -EACCES,
  __syscall_connect: () => -EACCES,
  __syscall_bind: () => -EACCES,
  __syscall_listen: () => -EACCES,
  __syscall_accept4: () => -EACCES,
  __syscall_sendto: () => -EACCES,
  __syscall_sendmsg: () => -EACCES,
  __syscall_recvfrom: () => -EACCES,
  __syscall_recvmsg: () => -EACCES,
  _maybe_connect_async: () => -EACCES,
  _maybe_sendto_async: () => -EACCES,
  _maybe_recvfrom_async: () => -EACCES,
  emscripten_run_script: () => {},
  emscripten_run_script_int: () => 0,
  emscripten_run_script_string: () => 0,
};
function restrictImports(imports) {
  const env = imports?.env;
  if (env) for (const [name, fn] of Object.entries(deniedImports)) if (name in env) env[name] = fn;
  return imports;
}
// The parent compiles pyodide.asm.wasm once and hands the WebAssembly.Module to every worker,
// so a worker only instantiates it (Pyodide would otherwise compile 9.6 MB of WASM each time).
const precompiled = workerData?.wasmModule;
const realInstantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function instantiate(source, imports) {
  restrictImports(imports);
  if (source instanceof WebAssembly.Module) return realInstantiate.call(this, source, imports);
  if (precompiled instanceof WebAssembly.Module) {
    return { instance: await realInstantiate.call(this, precompiled, imports), module: precompiled };
  }
  return realInstantiate.call(this, source, imports);
};
WebAssembly.instantiateStreaming = undefined;

const { loadPyodide } = await import("pyodide");

// Two modes: "snapshot" boots an interpreter, defines the runner, imports the common modules and
// returns a memory snapshot of it (done once per process); "run" restores that snapshot — about
// ten times faster than a boot — locks everything down and serves one run.
const makeSnapshot = workerData?.mode === "snapshot";
const snapshot = workerData?.snapshot ? new Uint8Array(workerData.snapshot) : undefined;

const t0 = performance.now();
const pyodide = await loadPyodide({
  indexURL,
  // The `js` module: an empty object without a prototype, so `import js; js.process` finds nothing.
  jsglobals: Object.create(null),
  env: { HOME: "/home/pyodide", LANG: "C.UTF-8", _: "/usr/bin/python3" },
  stdout: () => {},
  stderr: () => {},
  packages: [],
  _makeSnapshot: makeSnapshot,
  _loadSnapshot: snapshot,
});

// The runner: Dify's template semantics (user code as a module named __main__, then
// `main(**inputs)`, then `json.dumps` of the result), errors as a traceback without our frame.
const RUNNER = String.raw`
import builtins as _b, json as _json, sys as _sys, traceback as _tb

_loads, _dumps, _compile, _exec = _json.loads, _json.dumps, compile, exec

def __servify_run(code, inputs_json):
    try:
        ns = {"__name__": "__main__", "__builtins__": _b}
        _exec(_compile(code, "<code>", "exec"), ns)
        if "main" not in ns:
            raise NameError("name 'main' is not defined")
        inputs = _loads(inputs_json)
        out = ns["main"](**inputs)
        return _dumps({"ok": True, "result": _dumps(out, ensure_ascii=False, allow_nan=False)})
    except BaseException as e:
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        text = "".join(_tb.format_exception(type(e), e, tb))
        return _dumps({"ok": False, "error": text, "errorType": type(e).__name__})

# Warm the modules user code imports most, so runs do not pay for them.
import json, re, math, datetime, base64, hashlib, random, time, collections, urllib.parse, decimal, string, itertools, functools
`;
if (!snapshot) pyodide.runPython(RUNNER);
if (makeSnapshot) {
  const bytes = pyodide.makeMemorySnapshot();
  // A SharedArrayBuffer so every run worker reads the same bytes without a 30 MB copy each.
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  parentPort.postMessage({ type: "snapshot", snapshot: shared, bootMs: performance.now() - t0 });
  await new Promise(() => {}); // the parent terminates this worker
}

pyodide.setStdout({ write: (buf) => buf.length });
pyodide.setStderr({ write: (buf) => buf.length });
pyodide.runPython(String.raw`
import sys as _sys

_BLOCKED = {"js", "pyodide_js", "pyodide", "_pyodide", "_pyodide_core", "micropip", "pyodide_http", "_ctypes", "ctypes"}

class _SandboxImportBlocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None

_sys.meta_path.insert(0, _SandboxImportBlocker)
`);
const run = pyodide.globals.get("__servify_run");

// --- layer 4: drop the FFI modules from Python's view.
for (const name of ["pyodide_js", "js"]) {
  try { pyodide.unregisterJsModule(name); } catch { /* not registered */ }
}
pyodide.runPython(String.raw`
import sys as _sys
for _m in list(_sys.modules):
    if _m.partition(".")[0] in _BLOCKED:
        del _sys.modules[_m]
del _m
`);
const bootMs = performance.now() - t0;

// --- layer 3: strip the JS realm.
// Pyodide keeps module-scoped handles on Node builtins (a real `require`, fs, vm, ws,
// child_process). Their exports are this worker's own objects, so every function on them is
// replaced and the ESM views re-synced: whatever still holds a handle gets a throwing stub.
{
  const req = createRequire(import.meta.url);
  const pyReq = createRequire(indexURL + "pyodide.asm.mjs");
  const stubAll = (obj, label) => {
    if (!obj || (typeof obj !== "object" && typeof obj !== "function")) return;
    for (const key of Object.getOwnPropertyNames(obj)) {
      if (key === "prototype" || key === "length" || key === "name") continue;
      const d = Object.getOwnPropertyDescriptor(obj, key);
      if (d && typeof d.value === "function" && d.writable !== false) {
        try { obj[key] = function refused() { throw new Error(`${label}.${key} is not available in the sandbox`); }; } catch { /* ignore */ }
      }
    }
  };
  for (const name of ["child_process", "net", "tls", "dgram", "http", "https", "http2", "dns", "fs", "fs/promises", "vm", "worker_threads", "cluster", "inspector", "module", "os", "v8", "wasi", "repl"]) {
    try { stubAll(req(`node:${name}`), name); } catch { /* not available */ }
    try { stubAll(req(`node:${name}`).promises, `${name}.promises`); } catch { /* none */ }
  }
  try { stubAll(pyReq("ws"), "ws"); } catch { /* not installed */ }
  try { req("node:module").syncBuiltinESMExports(); } catch { /* old node */ }
  for (const key of ["binding", "_linkedBinding", "dlopen", "getBuiltinModule", "kill", "exit", "reallyExit", "abort", "chdir", "setuid", "setgid", "send"]) {
    try { process[key] = function refused() { throw new Error(`process.${key} is not available in the sandbox`); }; } catch { /* ignore */ }
  }
}
const refuse = (what) => function refused() { throw new Error(`${what} is not available in the sandbox`); };
const FS = pyodide.FS;
try { delete FS.filesystems.NODEFS; } catch { /* absent */ }
try { delete FS.filesystems.NODESOCKFS; } catch { /* absent */ }
FS.mount = refuse("FS.mount");
for (const key of [
  "loadPackage", "loadPackagesFromImports", "mountNodeFS", "mountNativeFS", "useNodeSockFS",
  "registerJsModule", "unregisterJsModule", "loadBinaryFile", "pyimport", "runPythonAsync",
  "setStdout", "setStderr", "setStdin", "registerComlink", "setInterruptBuffer",
]) {
  try { Object.defineProperty(pyodide, key, { value: refuse(key), writable: false, configurable: false }); } catch { /* frozen */ }
}
const api = pyodide._api;
if (api) {
  for (const key of ["loadBinaryFile", "initializeNodeSockFS", "loadPackage", "loadDynlib", "install", "packageIndexReady"]) {
    try { api[key] = refuse(key); } catch { /* ignore */ }
  }
}
for (const key of [
  "require", "process", "fetch", "WebSocket", "EventSource", "XMLHttpRequest", "Request", "Response",
  "Headers", "FormData", "Worker", "SharedWorker", "importScripts", "navigator", "Buffer", "module",
  "exports", "__filename", "__dirname", "BroadcastChannel", "MessageChannel", "MessagePort",
  "postMessage", "WebAssembly", "global", "Deno", "Bun", "Atomics", "SharedArrayBuffer",
]) {
  try { delete globalThis[key]; } catch { /* non-configurable */ }
  if (key in globalThis) {
    try { Object.defineProperty(globalThis, key, { value: undefined, writable: false, configurable: false }); } catch { /* ignore */ }
  }
}
globalThis.eval = refuse("eval");
const ctors = [
  Function,
  Object.getPrototypeOf(async function () {}).constructor,
  Object.getPrototypeOf(function* () {}).constructor,
  Object.getPrototypeOf(async function* () {}).constructor,
];
for (const C of ctors) {
  Object.defineProperty(C.prototype, "constructor", { value: refuse("Function constructor"), writable: false, configurable: false });
}
globalThis.Function = new Proxy(Function, { apply: refuse("Function"), construct: refuse("Function") });

parentPort.postMessage({ type: "ready", bootMs });

parentPort.once("message", (msg) => {
  const t = performance.now();
  let reply;
  try {
    reply = JSON.parse(run(msg.code, msg.inputsJson));
  } catch (err) {
    // A JS-level failure (memory cap hit inside the runtime, a fatal Pyodide error).
    reply = { ok: false, error: String(err && err.message ? err.message : err), errorType: "SandboxError" };
  }
  parentPort.postMessage({ type: "result", id: msg.id, runMs: performance.now() - t, ...reply });
});

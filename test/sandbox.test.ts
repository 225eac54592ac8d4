// Code sandbox (Pyodide / QuickJS in worker threads) and the code node (dsl-and-workflow §4.8):
// happy paths, Dify's output checks and texts, escape attempts, time and memory limits.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/lib/logger.js";
import { codeNode, floatPrecision } from "../src/modules/workflow/nodes/code.js";
import { CodeExecutionError, createCodeSandbox, type ManagedCodeSandbox } from "../src/modules/workflow/sandbox/index.js";
import { makeCtx, node } from "./support/node-ctx.js";

const log = createLogger({ name: "sandbox-test" });
const HOST_SECRET = "servify-host-secret-4f1c";
let sandbox: ManagedCodeSandbox;
const timings: Record<string, number> = {};

// A local TCP server: network escape attempts must never reach it.
let server: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  process.env.SERVIFY_SANDBOX_TEST_SECRET = HOST_SECRET;
  server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
  sandbox = createCodeSandbox({ pythonWarm: 2, memoryMb: 128, maxConcurrency: 4 });
  // Cold start: the first run pays for compiling the WASM, booting and snapshotting the interpreter.
  const t0 = performance.now();
  await sandbox.run({ language: "python3", code: "def main():\n    return {}", inputs: {}, timeoutMs: 10_000 });
  timings.pythonColdStartMs = performance.now() - t0;
  const t1 = performance.now();
  await sandbox.run({ language: "javascript", code: "function main() { return {} }", inputs: {}, timeoutMs: 10_000 });
  timings.jsColdStartMs = performance.now() - t1;
  await sandbox.warmUp();
}, 120_000);

afterAll(async () => {
  await sandbox?.close();
  await new Promise((r) => server?.close(r));
  delete process.env.SERVIFY_SANDBOX_TEST_SECRET;
  log.info({ timings: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])) }, "sandbox timings");
});

const py = (code: string, inputs: Record<string, unknown> = {}, timeoutMs = 10_000) => sandbox.run({ language: "python3", code, inputs, timeoutMs });
const js = (code: string, inputs: Record<string, unknown> = {}, timeoutMs = 10_000) => sandbox.run({ language: "javascript", code, inputs, timeoutMs });

async function failure(p: Promise<unknown>): Promise<CodeExecutionError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CodeExecutionError);
    return err as CodeExecutionError;
  }
  throw new Error("expected the run to fail");
}

describe("python happy paths", () => {
  it("calls main(**inputs) and returns dicts, lists, nested values and unicode", async () => {
    const t = performance.now();
    const out = await py(
      "import json\n\ndef main(arg1: str, arg2: dict) -> dict:\n    return {'text': arg1 + ' ✓ 你好', 'items': [1, 2.5, None], 'nested': {'a': {'b': [arg2['k']]}}, 'flag': True, 'n': None}",
      { arg1: "héllo 🌍", arg2: { k: "v" } },
    );
    timings.pythonWarmRunMs = performance.now() - t;
    expect(out).toEqual({ text: "héllo 🌍 ✓ 你好", items: [1, 2.5, null], nested: { a: { b: ["v"] } }, flag: true, n: null });
  });

  it("runs module-level code as __main__ and ignores prints (fixture shape)", async () => {
    const out = await py("import re\n\ndef main(arg1: str) -> dict:\n    return {'result': re.sub(r'\\s+', ' ', arg1).strip()}\n\nif __name__ == '__main__':\n    print(main('x  y'))", { arg1: "  a \n b  " });
    expect(out).toEqual({ result: "a b" });
  });

  it("keeps integers beyond 2^53 exact for the range check", async () => {
    const out = await py("def main():\n    return {'big': 2**63}");
    expect(out.big).toBe(2n ** 63n);
  });

  it("reports errors as a Python traceback", async () => {
    const err = await failure(py("def main():\n    return 1 / 0"));
    expect(err.message).toContain("ZeroDivisionError: division by zero");
    expect(err.message).toMatch(/^Traceback \(most recent call last\):/);
    expect(err.errorType).toBe("ZeroDivisionError");
    expect((await failure(py("x = 1"))).message).toContain("NameError: name 'main' is not defined");
    expect((await failure(py("def main():\n    return [1]"))).message).toBe("Result must be a dict, got list");
    expect((await failure(py("def main():\n    return {'s': {1, 2}}"))).message).toContain("TypeError: Object of type set is not JSON serializable");
  });
});

describe("javascript happy paths", () => {
  it("calls main(inputs) and returns nested values and unicode", async () => {
    const t = performance.now();
    const out = await js("function main({arg1, arg2}) {\n  console.log('ignored');\n  return { text: arg1 + ' ✓', items: [1, 2.5, null], nested: { a: { b: [arg2.k] } }, flag: true }\n}", { arg1: "héllo 🌍", arg2: { k: "v" } });
    timings.jsWarmRunMs = performance.now() - t;
    expect(out).toEqual({ text: "héllo 🌍 ✓", items: [1, 2.5, null], nested: { a: { b: ["v"] } }, flag: true });
  });

  it("reports thrown errors and non-object results", async () => {
    const err = await failure(js("function main() { throw new TypeError('boom') }"));
    expect(err.message).toMatch(/^TypeError: boom/);
    expect((await failure(js("function main() { return [1] }"))).message).toBe("Result must be a dict, got list");
    expect((await failure(js("function main() { }"))).message).toBe("Failed to parse JSON response: Expecting value: line 1 column 1 (char 0).");
  });
});

describe("python escape attempts fail safely", () => {
  it("cannot read host files", async () => {
    expect((await failure(py("def main():\n    return {'x': open('/etc/passwd').read()}"))).message).toContain("FileNotFoundError");
    const listing = await py("import os\n\ndef main():\n    return {'root': sorted(os.listdir('/')), 'cwd': os.getcwd()}");
    expect(listing.root).not.toContain("work");
    expect(listing.root).not.toContain("etc");
    expect(listing.root).not.toContain("usr");
    expect((await failure(py("def main():\n    return {'x': open('/proc/self/environ').read()}"))).message).toMatch(/Error/);
  });

  it("sees no host environment", async () => {
    const out = await py("import os\n\ndef main():\n    return {'env': dict(os.environ)}");
    expect(JSON.stringify(out)).not.toContain(HOST_SECRET);
    expect(JSON.stringify(out)).not.toContain("DATABASE_URL");
  });

  it("cannot reach the JS host through the FFI", async () => {
    for (const code of [
      "import js\n\ndef main():\n    return {'x': str(js.process.env)}",
      "import pyodide_js\n\ndef main():\n    return {'x': str(pyodide_js)}",
      "from pyodide.code import run_js\n\ndef main():\n    return {'x': str(run_js('process.env'))}",
      "from pyodide.ffi import to_js\n\ndef main():\n    return {'x': str(to_js({}))}",
      "import _pyodide_core\n\ndef main():\n    return {}",
      "import ctypes\n\ndef main():\n    return {}",
    ]) {
      expect((await failure(py(code))).message, code).toContain("ModuleNotFoundError");
    }
  });

  it("cannot get JS objects around the import blocker either", async () => {
    // A determined script removes the blocker and re-imports the C core (or digs objects out of
    // the GC): the JS realm it then reaches has no host objects and cannot compile code.
    const out = await py(
      [
        "import sys, gc",
        "def main():",
        "    res = {}",
        "    sys.meta_path[:] = [f for f in sys.meta_path if 'Blocker' not in getattr(f, '__name__', type(f).__name__)]",
        "    try:",
        "        import importlib._bootstrap as b",
        "        core = b._builtin_from_name('_pyodide_core')",
        "        res['core'] = 'loaded'",
        "        obj = core.to_js({}) if hasattr(core, 'to_js') else None",
        "        res['obj'] = str(type(obj))",
        "    except BaseException as e:",
        "        res['core'] = repr(e)",
        "    for i, attempt in enumerate([",
        "        lambda: __import__('js').process.env,",
        "        lambda: __import__('pyodide_js')._module,",
        "        lambda: __import__('pyodide.ffi', fromlist=['to_js']).to_js({}).constructor.constructor('return process')().env,",
        "        lambda: __import__('pyodide.ffi', fromlist=['to_js']).to_js([]).constructor.constructor('return globalThis')().require('child_process'),",
        "        lambda: __import__('pyodide.code', fromlist=['run_js']).run_js('1'),",
        "        lambda: [o for o in gc.get_objects() if 'JsProxy' in type(o).__name__][0].constructor.constructor('return process')(),",
        "    ]):",
        "        try:",
        "            res[f'a{i}'] = 'LEAK ' + str(attempt())",
        "        except BaseException as e:",
        "            res[f'a{i}'] = 'blocked: ' + type(e).__name__ + ': ' + str(e)[:200]",
        "    return res",
      ].join("\n"),
    );
    const text = JSON.stringify(out);
    expect(text).not.toContain("LEAK");
    expect(text).not.toContain(HOST_SECRET);
  });

  it("has no network", async () => {
    const attempts = [
      `import urllib.request\n\ndef main():\n    return {'x': urllib.request.urlopen('http://127.0.0.1:${port}/', timeout=2).read().decode()}`,
      `import socket\n\ndef main():\n    s = socket.create_connection(('127.0.0.1', ${port}), timeout=2)\n    s.sendall(b'hi')\n    return {'x': s.recv(10).decode()}`,
      "from pyodide.http import pyfetch\n\ndef main():\n    return {}",
      "import js\n\ndef main():\n    return {'x': str(js.fetch('http://127.0.0.1/'))}",
    ];
    for (const code of attempts) await failure(py(code));
    await new Promise((r) => setTimeout(r, 200));
    expect(connections).toBe(0);
  });

  it("cannot start processes", async () => {
    expect((await failure(py("import subprocess\n\ndef main():\n    return {'x': subprocess.run(['ls', '/'], capture_output=True).stdout.decode()}"))).message).toMatch(/Error/);
    // Emscripten's system() would spawn a host shell: the marker file must never appear.
    const marker = path.join(tmpdir(), `servify-sandbox-escape-${process.pid}`);
    const viaOs = await py(`import os\n\ndef main():\n    try:\n        return {'x': str(os.system('touch ${marker}'))}\n    except BaseException as e:\n        return {'x': type(e).__name__}`);
    expect(JSON.stringify(viaOs)).not.toContain("work");
    await failure(py(`import os\n\ndef main():\n    return {'x': os.popen('touch ${marker}').read()}`)).catch(() => null);
    expect(existsSync(marker)).toBe(false);
  });

  it("an infinite loop is killed at the time limit and the pool recovers", async () => {
    const t = performance.now();
    const err = await failure(py("def main():\n    while True:\n        pass", {}, 1500));
    const elapsed = performance.now() - t;
    expect(err.errorType).toBe("TimeoutError");
    expect(err.message).toContain("1500 ms");
    expect(elapsed).toBeLessThan(4000);
    expect(await py("def main():\n    return {'ok': 1}")).toEqual({ ok: 1 });
  });

  it("a memory bomb fails and the pool recovers", async () => {
    const err = await failure(py("def main():\n    x = []\n    while True:\n        x.append(' ' * 10**7)"));
    expect(err.message).toContain("MemoryError");
    expect((await failure(py("def main():\n    return {'x': len(b'x' * (4 * 1024**3))}"))).message).toMatch(/MemoryError|OverflowError/);
    expect(await py("def main():\n    return {'ok': 2}")).toEqual({ ok: 2 });
  });

  it("no state survives from one run to the next", async () => {
    await py("import json\njson.loads = lambda *a, **k: {'hijacked': True}\nimport builtins\nbuiltins.LEFTOVER = 1\n\ndef main():\n    return {}").catch(() => ({}));
    expect(await py("import builtins\n\ndef main(a):\n    return {'a': a, 'left': hasattr(builtins, 'LEFTOVER')}", { a: 1 })).toEqual({ a: 1, left: false });
  });
});

describe("javascript escape attempts fail safely", () => {
  it("has no require, process, fetch or host globals", async () => {
    const out = await js("function main() { return { r: typeof require, p: typeof process, f: typeof fetch, m: typeof module, i: typeof importScripts, s: typeof setTimeout, g: Object.keys(globalThis).filter(k => k !== 'console').join(',') } }");
    expect(out).toMatchObject({ r: "undefined", p: "undefined", f: "undefined", m: "undefined", i: "undefined", s: "undefined" });
    expect((await failure(js("function main() { return { x: require('fs').readFileSync('/etc/passwd', 'utf8') } }"))).message).toContain("ReferenceError");
    expect((await failure(js("function main() { return { x: process.env } }"))).message).toContain("ReferenceError");
    const viaFunction = await js("function main() { let g = Function('return this')(); return { p: typeof g.process, r: typeof g.require } }");
    expect(viaFunction).toEqual({ p: "undefined", r: "undefined" });
    await failure(js("import fs from 'fs'\nfunction main() { return {} }"));
    const dyn = await js("function main() { let r = 'none'; import('fs').then(() => { r = 'loaded' }, (e) => { r = 'rejected' }); return { r } }");
    expect(dyn.r).not.toBe("loaded");
  });

  it("an infinite loop is interrupted at the time limit and the pool recovers", async () => {
    const t = performance.now();
    const err = await failure(js("function main() { while (true) {} }", {}, 1000));
    expect(err.errorType).toBe("TimeoutError");
    expect(performance.now() - t).toBeLessThan(3000);
    expect(await js("function main() { return { ok: 1 } }")).toEqual({ ok: 1 });
  });

  it("a memory bomb fails and the pool recovers", async () => {
    const err = await failure(js("function main() { const a = []; while (true) a.push(new Array(1e5).fill(1)) }", {}, 20_000));
    expect(err.message).toMatch(/out of memory|timed out/);
    expect(await js("function main() { return { ok: 2 } }")).toEqual({ ok: 2 });
  });
});

describe("code node", () => {
  const codeNodeData = (over: Record<string, unknown>) => node("code", { code_language: "python3", variables: [], outputs: {}, ...over });
  const runNode = async (data: Record<string, unknown>, nodes: Record<string, Record<string, unknown>> = {}) => {
    const { ctx } = makeCtx({ nodes, services: { sandbox } });
    return codeNode.run(codeNodeData(data), ctx);
  };
  const pyReturn = (expr: string) => `def main() -> dict:\n    return ${expr}`;

  it("builds inputs from selectors and validates declared outputs", async () => {
    const r = await runNode(
      {
        code: "def main(arg1: str, arg2) -> dict:\n    return {'result': arg1 + '!', 'data': {'name': 'x', 'n': 1}, 'list': [{'a': 1}], 'missing': arg2}",
        variables: [
          { variable: "arg1", value_selector: ["start", "q"] },
          { variable: "arg2", value_selector: ["start", "nope"] },
        ],
        outputs: {
          result: { type: "string", children: null },
          data: { type: "object", children: { name: { type: "string", children: null }, n: { type: "number", children: null } } },
          list: { type: "array[object]", children: null },
          missing: { type: "string", children: null },
        },
      },
      { start: { q: "héllo" } },
    );
    expect(r).toMatchObject({ status: "succeeded", inputs: { arg1: "héllo", arg2: null }, outputs: { result: "héllo!", data: { name: "x", n: 1 }, list: [{ a: 1 }], missing: null } });
  });

  it("runs javascript code nodes", async () => {
    const r = await runNode({ code_language: "javascript", code: "function main({a}) { return { result: a * 2 } }", variables: [{ variable: "a", value_selector: ["s", "a"] }], outputs: { result: { type: "number" } } }, { s: { a: 21 } });
    expect(r).toMatchObject({ status: "succeeded", outputs: { result: 42 } });
  });

  it.each([
    ["missing key", "{'a': 'x'}", { a: { type: "string" }, b: { type: "string" } }, "Output b is missing.", "OutputValidationError"],
    ["extra key", "{'a': 'x', 'z': 1}", { a: { type: "string" } }, "Not all output parameters are validated.", "CodeNodeError"],
    ["string type", "{'a': 1}", { a: { type: "string" } }, "Output a must be a string, got int instead.", "OutputValidationError"],
    ["number type", "{'a': '1'}", { a: { type: "number" } }, "Output a is not a number, got <class 'str'> instead.", "OutputValidationError"],
    ["object type", "{'a': [1]}", { a: { type: "object" } }, "Output a is not an object, got <class 'list'> instead.", "OutputValidationError"],
    ["array type", "{'a': 'x'}", { a: { type: "array[string]" } }, "Output a is not an array, got <class 'str'> instead.", "OutputValidationError"],
    ["array[string] element", "{'a': ['x', 2]}", { a: { type: "array[string]" } }, "Output a[1] must be a string, got int instead.", "OutputValidationError"],
    ["array[number] element", "{'a': [1, None]}", { a: { type: "array[number]" } }, "The element at index 1 of output variable `a` must be a number.", "OutputValidationError"],
    ["array[object] element", "{'a': [{}, 3]}", { a: { type: "array[object]" } }, "Output a[1] is not an object, got <class 'int'> instead at index 1.", "OutputValidationError"],
    ["array[boolean] element", "{'a': [True, 'x']}", { a: { type: "array[boolean]" } }, "Output a[1] is not a boolean, got <class 'str'> instead.", "OutputValidationError"],
    ["number range", "{'a': 2**63}", { a: { type: "number" } }, "Output variable `a` is out of range, it must be between -9223372036854775808 and 9223372036854775807.", "OutputValidationError"],
    ["number precision", "{'a': 1e-21}", { a: { type: "number" } }, "Output variable `a` has too high precision, it must be less than 20 digits.", "OutputValidationError"],
    ["string length", "{'a': 'x' * 400001}", { a: { type: "string" } }, "The length of output variable `a` must be less than 400000 characters", "OutputValidationError"],
    ["string array length", "{'a': ['x'] * 31}", { a: { type: "array[string]" } }, "The length of output variable `a` must be less than 30 elements.", "OutputValidationError"],
    ["object array length", "{'a': [{}] * 31}", { a: { type: "array[object]" } }, "The length of output variable `a` must be less than 30 elements.", "OutputValidationError"],
    ["number array length", "{'a': [1] * 1001}", { a: { type: "array[number]" } }, "The length of output variable `a` must be less than 1000 elements.", "OutputValidationError"],
    ["nested missing", "{'a': {'x': 1}}", { a: { type: "object", children: { y: { type: "number" } } } }, "Output a.y is missing.", "OutputValidationError"],
    ["depth", "{'a': {'b': {'c': {'d': {'e': {'f': 1}}}}}}", { a: { type: "object" } }, "Depth limit 5 reached, object too deep.", "DepthLimitError"],
    ["untyped mixed array", "{'a': {'l': [1, 'x']}}", { a: { type: "object" } }, "Output a.l is not a valid array. make sure all elements are of the same type.", "OutputValidationError"],
    ["unsupported type", "{'a': 1}", { a: { type: "file" } }, "Output type file is not supported.", "OutputValidationError"],
  ])("%s", async (_label, expr, outputs, message, errorType) => {
    const r = await runNode({ code: pyReturn(expr), outputs });
    expect(r).toMatchObject({ status: "failed", error: message, errorType });
  });

  it("normalises like Dify: bool → int for numbers, NUL stripped, nulls accepted", async () => {
    const r = await runNode({
      code: pyReturn("{'n': True, 's': 'a\\x00b', 'o': None, 'l': None, 'b': 'anything', 'f': 0.1 + 0.2}"),
      outputs: { n: { type: "number" }, s: { type: "string" }, o: { type: "object" }, l: { type: "array[number]" }, b: { type: "boolean" }, f: { type: "number" } },
    });
    expect(r).toMatchObject({ status: "succeeded", outputs: { n: 1, s: "ab", o: null, l: null, b: "anything", f: 0.30000000000000004 } });
  });

  it("fails clearly without a sandbox, and maps runtime errors", async () => {
    const { ctx } = makeCtx();
    const r = await codeNode.run(codeNodeData({ code: pyReturn("{}") }), ctx);
    expect(r).toMatchObject({ status: "failed", errorType: "CodeExecutionError" });
    expect(r.error).toContain("no code sandbox");
    const e = await runNode({ code: "def main():\n    raise ValueError('bad input')", outputs: {} });
    expect(e).toMatchObject({ status: "failed", errorType: "ValueError" });
    expect(e.error).toContain("ValueError: bad input");
  });

  it("computes float precision as Decimal(str(x)).normalize()", () => {
    expect(floatPrecision(0.1)).toBe(1);
    expect(floatPrecision(1.5e-10)).toBe(11);
    expect(floatPrecision(1e-7)).toBe(7);
    expect(floatPrecision(0.30000000000000004)).toBe(17);
    expect(floatPrecision(1e21)).toBe(0);
  });
});

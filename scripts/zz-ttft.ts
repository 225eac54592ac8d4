// drive: start fake + servify(with cpu-prof) externally? Simplified: in-process measurement of where time goes.
import http from "node:http";
import { startFakeOpenAI } from "../test/support/fake-openai.js";
import { spawn } from "node:child_process";
const fake = await startFakeOpenAI();
fake.setDefault("chat", { text: Array.from({ length: 20 }, (_, i) => `w${i}`).join(" "), chunks: 20, firstByteDelayMs: 20, chunkDelayMs: 2 });
const port = 31555;
const child = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir=/tmp/prof", "/work/main/bin/servify.js", "all"], { env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", ADMIN_API_KEY: "adm", OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "x", QUEUE_PREFIX: "prof", APP_RUN_CONCURRENCY: "500", LOG_LEVEL: "warn" }, stdio: "inherit" });
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 300; i++) { if (await fetch(base + "/health").then(r => r.ok, () => false)) break; await new Promise(r => setTimeout(r, 100)); }
const yaml = `app:\n  name: B\n  mode: chat\nkind: app\nversion: 0.1.5\nmodel_config:\n  model: { provider: openai, name: gpt-4o-mini, mode: chat, completion_params: {} }\n  pre_prompt: x\n  prompt_type: simple\n  user_input_form: []\n`;
const appId = (await (await fetch(base + "/admin/v1/apps/import", { method: "POST", headers: { authorization: "Bearer adm", "content-type": "application/yaml" }, body: yaml })).json()).id;
const key = (await (await fetch(`${base}/admin/v1/apps/${appId}/api-keys`, { method: "POST", headers: { authorization: "Bearer adm" } })).json()).token;
function one(i: number): Promise<number> { return new Promise((res, rej) => { const t0 = performance.now(); const body = JSON.stringify({ query: "hi " + i, inputs: {}, user: "u" + (i % 50), response_mode: "streaming", auto_generate_name: false }); const r = http.request(base + "/v1/chat-messages", { method: "POST", headers: { authorization: "Bearer " + key, "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (resp) => { let done = false; resp.setEncoding("utf8"); resp.on("data", (c: string) => { if (!done && c.includes('"event":"message"')) { done = true; res(performance.now() - t0); } }); resp.on("end", () => { if (!done) rej(new Error("no token")); }); }); r.on("error", rej); r.end(body); }); }
for (let i = 0; i < 20; i++) await one(i);
for (let w = 0; w < 3; w++) { const xs = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i))); xs.sort((a, b) => a - b); process.stdout.write(`wave ${w}: p50 ${xs[100].toFixed(0)} p99 ${xs[197].toFixed(0)}\n`); }
child.kill("SIGINT");
await new Promise(r => setTimeout(r, 3000));
await fake.close();
process.exit(0);

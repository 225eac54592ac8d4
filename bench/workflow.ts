// `npm run bench:workflow`: the graph engine's overhead, measured through the Service API on one
// Servify process (`servify all`, child process) with the fake model (test/support/fake-openai.ts).
// Like bench/run.ts it reports ratios against a baseline measured in the same run, because these
// machines are noisy:
//
//   - blocking POST /v1/workflows/run of a 2-node start → end workflow (the baseline), a 102-node
//     chain (start → 100 template-transform nodes → end, each node reading the previous output)
//     and a fan-out/fan-in (start → 50 parallel template-transform branches → variable-aggregator
//     → end): latency p50/p99 and the cost per extra node;
//   - an advanced-chat turn (start → llm → answer, streaming) against a basic chat app with the
//     same model and prompt: time to the first `message` frame, p50/p99 at 1 and 50 concurrent.
//
// Merges its figures under `workflow` in bench/results.json and rewrites the workflow-figures
// block of bench/README.md.
//
//   npm run bench:workflow                     all scenarios
//   npm run bench:workflow -- --samples 50     samples per workflow shape (default 40)
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { migrate } from "../src/lib/migrate.js";
import { startServices, type Services } from "../scripts/services.js";
import { startFakeOpenAI } from "../test/support/fake-openai.js";

const root = path.resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({ options: { samples: { type: "string", default: "40" }, ttft: { type: "string", default: "100" } } });
const SAMPLES = Number(args.samples);
const TTFT_SAMPLES = Number(args.ttft);
const out = (s: string) => process.stdout.write(`${s}\n`);

const ADMIN = "bench-admin-key";
const CHAIN = 100;
const FAN = 50;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

// ---------------------------------------------------------------- helpers

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const r1 = (n: number) => +n.toFixed(1);
const r2 = (n: number) => +n.toFixed(2);

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timeout waiting for ${url}`);
}

function post(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(url, { method: "POST", agent, headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** Streaming chat request: ms to the first `message` frame with text; the rest of the stream is drained. */
function firstMessage(base: string, headers: Record<string, string>, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const payload = JSON.stringify(body);
    const req = http.request(`${base}/v1/chat-messages`, { method: "POST", agent, headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) } }, (res) => {
      let buf = "";
      let done = false;
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (done) return;
        buf += chunk;
        let idx: number;
        while (!done && (idx = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          if (!frame.startsWith("data: ")) continue;
          const ev = JSON.parse(frame.slice(6)) as { event?: string; answer?: string; message?: string };
          if (ev.event === "error") return reject(new Error(`stream error: ${ev.message}`));
          if (ev.event === "message" && ev.answer) {
            done = true;
            resolve(performance.now() - t0);
          }
        }
      });
      res.on("end", () => (done ? undefined : reject(new Error(`stream ended before the first message (HTTP ${res.statusCode}) ${buf.slice(0, 300)}`))));
      res.on("error", (e) => (done ? undefined : reject(e)));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------- the apps (DSL written here)

const header = (name: string, mode: string) => `app:\n  name: ${name}\n  mode: ${mode}\n  icon: "🤖"\n  description: ""\nkind: app\nversion: 0.3.1\nworkflow:\n  conversation_variables: []\n  environment_variables: []\n  features: {}\n  graph:\n`;
const startNode = `      - id: start\n        type: custom\n        data:\n          type: start\n          title: Start\n          variables:\n            - {variable: x, label: X, type: text-input, required: true, max_length: 256}\n`;
const endNode = (selector: string) => `      - id: end\n        type: custom\n        data:\n          type: end\n          title: End\n          outputs:\n            - {variable: out, value_selector: ${selector}}\n`;
const template = (id: string, from: string) =>
  `      - id: ${id}\n        type: custom\n        data:\n          type: template-transform\n          title: ${id}\n          template: "{{ v }}."\n          variables:\n            - {variable: v, value_selector: ${from}}\n`;
const edge = (i: string, s: string, t: string) => `      - {id: ${i}, source: ${s}, target: ${t}, sourceHandle: source, targetHandle: target}\n`;

function twoNodeYaml(): string {
  return `${header("WF 2 nodes", "workflow")}    nodes:\n${startNode}${endNode("[start, x]")}    edges:\n${edge("e0", "start", "end")}`;
}

function chainYaml(n: number): string {
  let nodes = startNode;
  let edges = "";
  let prev = "start";
  let prevSel = "[start, x]";
  for (let i = 1; i <= n; i++) {
    const id = `t${i}`;
    nodes += template(id, prevSel);
    edges += edge(`e${i}`, prev, id);
    prev = id;
    prevSel = `[${id}, output]`;
  }
  nodes += endNode(prevSel);
  edges += edge("eend", prev, "end");
  return `${header(`WF chain ${n}`, "workflow")}    nodes:\n${nodes}    edges:\n${edges}`;
}

function fanYaml(n: number): string {
  let nodes = startNode;
  let edges = "";
  const sels: string[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `b${i}`;
    nodes += template(id, "[start, x]");
    edges += edge(`s${i}`, "start", id) + edge(`j${i}`, id, "agg");
    sels.push(`[${id}, output]`);
  }
  nodes += `      - id: agg\n        type: custom\n        data:\n          type: variable-aggregator\n          title: Aggregate\n          output_type: string\n          variables: [${sels.join(", ")}]\n`;
  nodes += endNode("[agg, output]");
  edges += edge("eend", "agg", "end");
  return `${header(`WF fan ${n}`, "workflow")}    nodes:\n${nodes}    edges:\n${edges}`;
}

const MODEL = "{provider: langgenius/openai/openai, name: gpt-4o-mini, mode: chat, completion_params: {}}";
const PROMPT = "You are fast.";

function chatflowYaml(): string {
  return `${header("Chatflow LLM", "advanced-chat")}    nodes:
      - id: start
        type: custom
        data: {type: start, title: Start, variables: []}
      - id: llm
        type: custom
        data:
          type: llm
          title: LLM
          model: ${MODEL}
          prompt_template:
            - {role: system, text: ${PROMPT}}
            - {role: user, text: "{{#sys.query#}}"}
          context: {enabled: false, variable_selector: []}
      - id: answer
        type: custom
        data: {type: answer, title: Answer, answer: "{{#llm.text#}}"}
    edges:
${edge("e1", "start", "llm")}${edge("e2", "llm", "answer")}`;
}

const chatYaml = `app:\n  name: Bench chat\n  mode: chat\nkind: app\nversion: 0.1.5\nmodel_config:\n  model: ${MODEL}\n  pre_prompt: ${PROMPT}\n  prompt_type: simple\n  user_input_form: []\n`;

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  let services: Services | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  let redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    services = await startServices();
    databaseUrl = services.databaseUrl;
    redisUrl = services.redisUrl;
  }
  await migrate(databaseUrl);

  const fake = await startFakeOpenAI();
  // Same model behaviour as bench/run.ts: 20 chunks, the first ~20 ms after the request.
  const answer = Array.from({ length: 20 }, (_, i) => `word${i}`).join(" ");
  fake.setDefault("chat", { text: answer, chunks: 20, firstByteDelayMs: 20, chunkDelayMs: 2 });

  const port = 20000 + Math.floor(Math.random() * 30000);
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: String(port),
    HOST: "127.0.0.1",
    ADMIN_API_KEY: ADMIN,
    OPENAI_BASE_URL: fake.baseURL,
    OPENAI_API_KEY: "sk-bench",
    QUEUE_PREFIX: `bench-wf-${process.pid}`,
    APP_RUN_CONCURRENCY: "200",
    LOG_LEVEL: "warn",
  };
  let child: ChildProcess | undefined;
  const figures: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
  try {
    child = spawn(process.execPath, [path.join(root, "bin/servify.js"), "all"], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
    const base = `http://127.0.0.1:${port}`;
    await waitHttp(`${base}/health`);

    const importApp = async (yaml: string) => {
      const res = await fetch(`${base}/admin/v1/apps/import`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/yaml" }, body: yaml });
      if (res.status !== 201) throw new Error(`import failed: ${res.status} ${await res.text()}`);
      const appId = ((await res.json()) as { id: string }).id;
      const key = await fetch(`${base}/admin/v1/apps/${appId}/api-keys`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } });
      return { authorization: `Bearer ${((await key.json()) as { token: string }).token}` };
    };

    // ---- engine overhead per node (blocking /v1/workflows/run)
    const shapes = [
      { name: "two_node", nodes: 2, auth: await importApp(twoNodeYaml()) },
      { name: "chain_100", nodes: CHAIN + 2, auth: await importApp(chainYaml(CHAIN)) },
      { name: "fanout_50", nodes: FAN + 3, auth: await importApp(fanYaml(FAN)) },
    ];
    const runOnce = async (auth: Record<string, string>, i: number): Promise<number> => {
      const t0 = performance.now();
      const res = await post(`${base}/v1/workflows/run`, auth, { inputs: { x: `v${i}` }, user: `bench-${i % 10}`, response_mode: "blocking" });
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`workflow run failed: ${res.status} ${res.text.slice(0, 300)}`);
      const body = JSON.parse(res.text) as { data: { status: string; error: string | null } };
      if (body.data.status !== "succeeded") throw new Error(`workflow run ${body.data.status}: ${body.data.error}`);
      return ms;
    };
    for (const s of shapes) for (let i = 0; i < 5; i++) await runOnce(s.auth, i); // warm-up
    const samples = new Map<string, number[]>(shapes.map((s) => [s.name, []]));
    // Interleaved, so drift on a noisy machine hits every shape alike.
    for (let i = 0; i < SAMPLES; i++) for (const s of shapes) samples.get(s.name)!.push(await runOnce(s.auth, i));
    const p50 = (n: string) => pct(samples.get(n)!, 50);
    const p99 = (n: string) => pct(samples.get(n)!, 99);
    const baseP50 = p50("two_node");
    const engine: Record<string, unknown> = {};
    for (const s of shapes) {
      const row: Record<string, unknown> = { nodes: s.nodes, p50_ms: r1(p50(s.name)), p99_ms: r1(p99(s.name)), ms_per_node_p50: r2(p50(s.name) / s.nodes) };
      if (s.name !== "two_node") {
        // What each node beyond the 2-node baseline adds to the request.
        row.extra_ms_per_node_p50 = r2((p50(s.name) - baseP50) / (s.nodes - 2));
        row.ratio_to_two_node_p50 = r2(p50(s.name) / baseP50);
      }
      engine[s.name] = row;
      out(`workflow ${s.name}: ${JSON.stringify(row)}`);
    }
    figures.engine = { samples: SAMPLES, ...engine };

    // ---- advanced-chat vs basic chat: time to the first `message` frame (streaming)
    const flowAuth = await importApp(chatflowYaml());
    const chatAuth = await importApp(chatYaml);
    const body = (i: number) => ({ query: `hello ${i}`, inputs: {}, user: `bench-${i % 100}`, response_mode: "streaming", auto_generate_name: false });
    for (let i = 0; i < 20; i++) {
      await firstMessage(base, flowAuth, body(i));
      await firstMessage(base, chatAuth, body(i));
    }
    const ttft: Record<string, unknown> = {};
    for (const concurrency of [1, 50]) {
      const waves = concurrency === 1 ? TTFT_SAMPLES : 4;
      const flow: number[] = [];
      const chat: number[] = [];
      for (let w = 0; w < waves; w++) {
        flow.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => firstMessage(base, flowAuth, body(w * concurrency + i))))));
        chat.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => firstMessage(base, chatAuth, body(w * concurrency + i))))));
      }
      const row = {
        advanced_chat_p50_ms: r1(pct(flow, 50)),
        advanced_chat_p99_ms: r1(pct(flow, 99)),
        chat_p50_ms: r1(pct(chat, 50)),
        chat_p99_ms: r1(pct(chat, 99)),
        ratio_p50: r2(pct(flow, 50) / pct(chat, 50)),
        ratio_p99: r2(pct(flow, 99) / pct(chat, 99)),
        samples: flow.length,
      };
      ttft[`concurrency_${concurrency}`] = row;
      out(`advanced-chat vs chat, time to first message, ${concurrency} concurrent: ${JSON.stringify(row)}`);
    }
    figures.advanced_chat_ttft = ttft;
  } finally {
    child?.kill("SIGKILL");
    await fake.close();
    await services?.stop();
  }

  // Merge: other scenarios' figures (bench/run.ts) stay as they are.
  const resultsPath = path.join(root, "bench/results.json");
  let results: Record<string, unknown> = {};
  try {
    results = JSON.parse(readFileSync(resultsPath, "utf8")) as Record<string, unknown>;
  } catch {
    /* first run */
  }
  results.workflow = figures;
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);

  const readmePath = path.join(root, "bench/README.md");
  const readme = readFileSync(readmePath, "utf8");
  const block = ["<!-- workflow-figures:start -->", "```json", JSON.stringify(figures, null, 2), "```", "<!-- workflow-figures:end -->"].join("\n");
  const re = /<!-- workflow-figures:start -->[\s\S]*<!-- workflow-figures:end -->/;
  writeFileSync(readmePath, re.test(readme) ? readme.replace(re, block) : `${readme.trimEnd()}\n\n${block}\n`);
  out("wrote bench/results.json (workflow) and bench/README.md (workflow-figures)");
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:workflow failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);

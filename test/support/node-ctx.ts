// A NodeContext for unit-testing node implementations without the engine or a database.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, type Config } from "../../src/config/index.js";
import { createLogger } from "../../src/lib/logger.js";
import { LocalStorage } from "../../src/lib/storage.js";
import { createVariablePool } from "../../src/modules/workflow/variable-pool.js";
import type { GraphNode, NodeContext, NodeServices, WorkflowFile } from "../../src/modules/workflow/types.js";

export interface TestCtxOptions {
  sys?: Record<string, unknown>;
  env?: Record<string, unknown>;
  conversation?: Record<string, unknown>;
  /** node id → outputs */
  nodes?: Record<string, Record<string, unknown>>;
  config?: Partial<Config>;
  services?: Partial<NodeServices>;
}

/** An in-memory stand-in for the two upload_files calls nodes make. */
export function fakePrisma() {
  const rows = new Map<string, Record<string, unknown>>();
  return {
    rows,
    uploadFile: {
      async create({ data }: { data: Record<string, unknown> }) {
        const row = { ...data, created_at: new Date() };
        rows.set(String(data.id), row);
        return row;
      },
      async findUnique({ where }: { where: { id: string } }) {
        return rows.get(where.id) ?? null;
      },
    },
  };
}

export function makeCtx(opts: TestCtxOptions = {}) {
  const pool = createVariablePool({ system: opts.sys ?? {}, environment: opts.env ?? {}, conversation: opts.conversation ?? {} });
  for (const [id, outs] of Object.entries(opts.nodes ?? {})) for (const [k, v] of Object.entries(outs)) pool.set([id, k], v);
  const storage = new LocalStorage(mkdtempSync(path.join(tmpdir(), "servify-node-")));
  const prisma = fakePrisma();
  const config = loadConfig({}, { OUTBOUND_POLICY: "loopback", ...opts.config });
  const services = {
    models: null,
    prisma,
    storage,
    config,
    logger: createLogger({ level: "silent" }),
    retrieval: null,
    extractText: null,
    sandbox: null,
    ...opts.services,
  } as unknown as NodeServices;
  const ctx: NodeContext = {
    run: {
      workflowRunId: "run-1",
      workflowId: "wf-1",
      appId: "00000000-0000-0000-0000-0000000000a1",
      tenantId: "00000000-0000-0000-0000-000000000001",
      mode: "workflow",
      taskId: "task-1",
      endUserId: "00000000-0000-0000-0000-0000000000e1",
      userId: "user",
      conversationId: null,
      messageId: null,
    },
    pool,
    signal: new AbortController().signal,
    services,
    emitChunk: async () => {},
  };
  return { ctx, pool, storage, prisma };
}

export const node = (type: string, data: Record<string, unknown> = {}, id = "n1"): GraphNode => ({ id, data: { type, title: type, ...data } });

export function file(over: Partial<WorkflowFile> = {}): WorkflowFile {
  return {
    dify_model_identity: "__dify__file__",
    id: null,
    tenant_id: "t",
    type: "document",
    transfer_method: "local_file",
    remote_url: null,
    related_id: "f1",
    filename: "a.pdf",
    extension: ".pdf",
    mime_type: "application/pdf",
    size: 100,
    url: "http://files/a.pdf",
    ...over,
  };
}

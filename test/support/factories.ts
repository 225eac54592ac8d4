// Fresh tenant, app and key per test: tests never share rows, so they can run in parallel.
import { randomUUID } from "node:crypto";
import type { TestApp } from "./app.js";
import { ADMIN_KEY } from "./app.js";

export const adminHeaders = { authorization: `Bearer ${ADMIN_KEY}` };

export async function createTenant(t: TestApp): Promise<string> {
  const row = await t.prisma.tenant.create({ data: { name: `tenant-${randomUUID().slice(0, 8)}` } });
  return row.id;
}

/** Imports a DSL document through the admin API and returns the app id. */
export async function importApp(t: TestApp, yaml: string, tenantId?: string): Promise<string> {
  const tid = tenantId ?? (await createTenant(t));
  const res = await t.app.inject({
    method: "POST",
    url: `/admin/v1/apps/import?tenant_id=${tid}`,
    headers: { ...adminHeaders, "content-type": "application/yaml" },
    payload: yaml,
  });
  if (res.statusCode !== 201) throw new Error(`import failed: ${res.statusCode} ${res.body}`);
  return res.json().id as string;
}

export async function createAppKey(t: TestApp, appId: string): Promise<string> {
  const res = await t.app.inject({ method: "POST", url: `/admin/v1/apps/${appId}/api-keys`, headers: adminHeaders });
  if (res.statusCode !== 201) throw new Error(`key failed: ${res.statusCode} ${res.body}`);
  return res.json().token as string;
}

export async function createDatasetKey(t: TestApp, tenantId: string, datasetIds?: string[]): Promise<string> {
  const res = await t.app.inject({
    method: "POST",
    url: "/admin/v1/dataset-api-keys",
    headers: adminHeaders,
    payload: { tenant_id: tenantId, ...(datasetIds ? { dataset_ids: datasetIds } : {}) },
  });
  if (res.statusCode !== 201) throw new Error(`dataset key failed: ${res.statusCode} ${res.body}`);
  return res.json().token as string;
}

/** A small chat app written by the test suite itself (never a copy of ../shared fixtures). */
export const chatAppYaml = (name = "Test chat") => `app:
  name: ${name}
  mode: chat
  icon: "🤖"
  icon_background: "#FFEAD5"
  description: A chat app for tests
kind: app
version: 0.1.5
model_config:
  model:
    provider: langgenius/openai/openai
    name: gpt-4o-mini
    mode: chat
    completion_params:
      temperature: 0.2
  pre_prompt: You are a helpful assistant for {{company}}.
  prompt_type: simple
  opening_statement: Hello! How can I help?
  suggested_questions:
    - What can you do?
  suggested_questions_after_answer:
    enabled: true
  retriever_resource:
    enabled: true
  user_input_form:
    - text-input:
        label: Company
        variable: company
        required: true
        max_length: 48
        default: ""
    - select:
        label: Tone
        variable: tone
        required: false
        options: [formal, casual]
        default: casual
  file_upload:
    image:
      enabled: true
      number_limits: 2
      detail: high
      transfer_methods: [local_file, remote_url]
`;

export async function appWithKey(t: TestApp, yaml = chatAppYaml()) {
  const tenantId = await createTenant(t);
  const appId = await importApp(t, yaml, tenantId);
  const key = await createAppKey(t, appId);
  return { tenantId, appId, key, auth: { authorization: `Bearer ${key}` } };
}

/** A small completion app (topic → "Write about {{topic}}."), written by the suite itself. */
export const completionAppYaml = (opts: { suggestions?: boolean } = {}) => `app:
  name: Writer
  mode: completion
kind: app
version: 0.1.5
model_config:
  model: { provider: openai, name: gpt-4o-mini, mode: chat, completion_params: {} }
  pre_prompt: "Write about {{topic}}."
  prompt_type: simple
${opts.suggestions ? "  suggested_questions_after_answer:\n    enabled: true\n" : ""}  user_input_form:
    - text-input: { label: Topic, variable: topic, required: true, max_length: 100 }
`;

/** The smallest workflow app: start → end. */
export const minimalWorkflowYaml = `app:
  name: Flow
  mode: workflow
kind: app
version: 0.3.1
workflow:
  features: {}
  environment_variables: []
  conversation_variables: []
  graph:
    nodes:
      - id: start
        data: { type: start, title: Start, variables: [] }
      - id: end
        data: { type: end, title: End, outputs: [] }
    edges:
      - { id: e1, source: start, target: end, sourceHandle: source, targetHandle: target }
`;

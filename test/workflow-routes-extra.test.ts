// Graph-app routes end to end with the fake model (apps spec §5.3, §5.4, §5.8, §6.3, §6.4, §6.8):
// an advanced-chat start → llm → answer turn streamed through POST /v1/chat-messages, stops of
// advanced-chat and workflow runs mid-model-call, and start-node `file` inputs given as upload
// mappings (turned into file objects before the run).
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey } from "./support/factories.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";
import { postSse } from "./support/sse.js";
import { multipart } from "./support/multipart.js";

const llmNode = (id: string) => `      - id: ${id}
        type: custom
        data:
          type: llm
          title: LLM
          model: {provider: langgenius/openai/openai, name: gpt-4o-mini, mode: chat, completion_params: {temperature: 0.1}}
          prompt_template:
            - {role: system, text: You are terse.}
            - {role: user, text: "{{#sys.query#}}"}
          context: {enabled: false, variable_selector: []}
          vision: {enabled: false}`;

const chatflowYaml = `app:
  name: Chatflow LLM
  mode: advanced-chat
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables: []
  environment_variables: []
  features: {}
  graph:
    nodes:
      - id: start
        type: custom
        data: {type: start, title: Start, variables: []}
${llmNode("llm")}
      - id: answer
        type: custom
        data: {type: answer, title: Answer, answer: "{{#llm.text#}}"}
    edges:
      - {id: e1, source: start, target: llm}
      - {id: e2, source: llm, target: answer}
`;

const workflowLlmYaml = `app:
  name: Workflow LLM
  mode: workflow
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables: []
  environment_variables: []
  features: {}
  graph:
    nodes:
      - id: start
        type: custom
        data:
          type: start
          title: Start
          variables:
            - {variable: q, label: Q, type: text-input, required: true}
      - id: llm
        type: custom
        data:
          type: llm
          title: LLM
          model: {provider: langgenius/openai/openai, name: gpt-4o-mini, mode: chat, completion_params: {}}
          prompt_template:
            - {role: user, text: "{{#start.q#}}"}
          context: {enabled: false, variable_selector: []}
      - id: end
        type: custom
        data:
          type: end
          title: End
          outputs:
            - {variable: text, value_selector: [llm, text]}
    edges:
      - {id: e1, source: start, target: llm}
      - {id: e2, source: llm, target: end}
`;

const fileInputYaml = `app:
  name: Workflow file input
  mode: workflow
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables: []
  environment_variables: []
  features: {}
  graph:
    nodes:
      - id: start
        type: custom
        data:
          type: start
          title: Start
          variables:
            - variable: doc
              label: Doc
              type: file
              required: true
              allowed_file_types: [document]
              allowed_file_extensions: []
              allowed_file_upload_methods: [local_file]
            - variable: more
              label: More
              type: file-list
              required: false
              max_length: 3
              allowed_file_types: [document, image]
              allowed_file_extensions: []
              allowed_file_upload_methods: [local_file, remote_url]
      - id: end
        type: custom
        data:
          type: end
          title: End
          outputs:
            - {variable: doc, value_selector: [start, doc]}
            - {variable: name, value_selector: [start, doc, name]}
            - {variable: more, value_selector: [start, more]}
    edges:
      - {id: e1, source: start, target: end}
`;

let t: TestApp;
let fake: FakeOpenAI;
let base: string;
beforeAll(async () => {
  fake = await startFakeOpenAI();
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const stop = (url: string, auth: Record<string, string>, user: string) =>
  t.app.inject({ method: "POST", url, headers: auth, payload: { user } }).then((r) => {
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ result: "success" });
  });

describe("advanced-chat start → llm → answer (POST /v1/chat-messages)", () => {
  it("streams the LLM deltas as message frames in order with from_variable_selector; usage from the model; message_end then workflow_finished", async () => {
    const { auth } = await appWithKey(t, chatflowYaml);
    fake.enqueue("chat", { text: "Alpha beta gamma delta", usage: { prompt_tokens: 17, completion_tokens: 9 }, chunkDelayMs: 5 });
    const cap = await postSse(base, "/v1/chat-messages", auth, { query: "say four words", inputs: {}, user: "ac-1", response_mode: "streaming", auto_generate_name: false });
    expect(cap.status).toBe(200);

    // The model was called once with the rendered prompt.
    expect(fake.requestsOf("chat")).toHaveLength(1);
    expect(fake.lastRequest("chat")!.body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "say four words" },
    ]);

    const names = cap.events.map((e) => e.event);
    expect(names[0]).toBe("workflow_started");
    const messages = cap.events.filter((e) => e.event === "message");
    // One frame per model delta (one per word by default), in the model's order.
    expect(messages.map((m) => m.answer)).toEqual(["Alpha ", "beta ", "gamma ", "delta"]);
    for (const m of messages) {
      expect(Object.keys(m)).toEqual(["event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer", "from_variable_selector"]);
      expect(m.from_variable_selector).toEqual(["llm", "text"]);
      expect(m.id).toBe(m.message_id);
    }
    // The deltas stream while the llm node runs: before its node_finished.
    const llmFinished = cap.events.findIndex((e) => e.event === "node_finished" && (e.data as Record<string, unknown>).node_id === "llm");
    expect(llmFinished).toBeGreaterThan(cap.events.indexOf(messages.at(-1)!));

    // Terminal part (success): message_end → workflow_finished (apps spec §6.4, Dify 1.16).
    expect(names.slice(-2)).toEqual(["message_end", "workflow_finished"]);
    const end = cap.events.at(-2)!;
    const usage = (end.metadata as Record<string, Record<string, unknown>>).usage!;
    expect(usage).toMatchObject({ prompt_tokens: 17, completion_tokens: 9, total_tokens: 26, currency: "USD" });
    const fin = cap.events.at(-1)!.data as Record<string, unknown>;
    expect(fin).toMatchObject({ status: "succeeded", total_tokens: 26, error: null });

    const row = await t.prisma.message.findUnique({ where: { id: String(end.id) } });
    expect(row).toMatchObject({ answer: "Alpha beta gamma delta", status: "normal", message_tokens: 17, answer_tokens: 9 });
  });

  it("stop mid-run (POST /v1/chat-messages/{task_id}/stop): workflow_finished stopped, then message_end; model request aborted; partial answer saved", async () => {
    const { auth } = await appWithKey(t, chatflowYaml);
    fake.enqueue("chat", { text: "one two three four five six", hangAfterChunks: 2 });
    let stopping: Promise<void> | null = null;
    const cap = await postSse(base, "/v1/chat-messages", auth, { query: "long", inputs: {}, user: "ac-stop", response_mode: "streaming", auto_generate_name: false }, {
      onEvent: (e) => {
        if (!stopping && e.event === "message" && e.answer === "two ") stopping = stop(`/v1/chat-messages/${String(e.task_id)}/stop`, auth, "ac-stop");
      },
    });
    expect(stopping).not.toBeNull();
    await stopping;
    await fake.waitForAbort(fake.requestsOf("chat")[0]!);

    const names = cap.events.map((e) => e.event);
    expect(names.slice(-2)).toEqual(["workflow_finished", "message_end"]);
    expect(names).not.toContain("error");
    const fin = cap.events.at(-2)!.data as Record<string, unknown>;
    expect(fin.status).toBe("stopped");
    expect(cap.events.filter((e) => e.event === "message").map((e) => e.answer).join("")).toBe("one two ");

    const messageId = String(cap.events.at(-1)!.id);
    const row = await t.prisma.message.findUnique({ where: { id: messageId } });
    expect(row).toMatchObject({ answer: "one two ", status: "normal" });
    const run = await t.prisma.workflowRun.findUnique({ where: { id: row!.workflow_run_id! } });
    expect(run?.status).toBe("stopped");
  });
});

describe("workflow stop (POST /v1/workflows/tasks/{task_id}/stop)", () => {
  it("stops a run waiting on the model: workflow_finished stopped, request aborted, run row stopped", async () => {
    const { auth } = await appWithKey(t, workflowLlmYaml);
    fake.enqueue("chat", { text: "never finishing answer", hangAfterChunks: 1 });
    let stopping: Promise<void> | null = null;
    const cap = await postSse(base, "/v1/workflows/run", auth, { inputs: { q: "go" }, user: "wf-stop", response_mode: "streaming" }, {
      onEvent: (e) => {
        if (!stopping && e.event === "text_chunk") stopping = stop(`/v1/workflows/tasks/${String(e.task_id)}/stop`, auth, "wf-stop");
      },
    });
    expect(stopping).not.toBeNull();
    await stopping;
    await fake.waitForAbort(fake.requestsOf("chat")[0]!);

    const names = cap.events.map((e) => e.event);
    expect(names.at(-1)).toBe("workflow_finished");
    expect(names).not.toContain("error");
    const fin = cap.events.at(-1)!.data as Record<string, unknown>;
    expect(fin.status).toBe("stopped");
    const run = await t.prisma.workflowRun.findUnique({ where: { id: String(fin.id) } });
    expect(run?.status).toBe("stopped");
    expect(run?.finished_at).not.toBeNull();
  });
});

// ---------------------------------------------------------------- file inputs


async function upload(auth: Record<string, string>, user: string, filename: string, contentType: string, data: Buffer): Promise<string> {
  const m = multipart([{ name: "file", filename, contentType, data }, { name: "user", value: user }]);
  const res = await t.app.inject({ method: "POST", url: "/v1/files/upload", headers: { ...auth, ...m.headers }, payload: m.payload });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

// A 1×1 PNG.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");

describe("workflow start-node file inputs", () => {
  it("a local_file mapping becomes a file object (apps spec §6.8) in the pool, outputs, workflow_started inputs and the run row", async () => {
    const { auth, tenantId } = await appWithKey(t, fileInputYaml);
    const docId = await upload(auth, "wf-file", "notes.txt", "text/plain", Buffer.from("hello file"));
    const imgId = await upload(auth, "wf-file", "pic.png", "image/png", PNG);
    const cap = await postSse(base, "/v1/workflows/run", auth, {
      inputs: {
        doc: { type: "document", transfer_method: "local_file", upload_file_id: docId },
        more: [{ type: "image", transfer_method: "local_file", upload_file_id: imgId }],
      },
      user: "wf-file",
      response_mode: "streaming",
    });
    expect(cap.status).toBe(200);
    const fin = cap.events.at(-1)!;
    expect(fin.event).toBe("workflow_finished");
    const data = fin.data as Record<string, unknown>;
    expect(data.status).toBe("succeeded");
    const outputs = data.outputs as Record<string, unknown>;

    const doc = outputs.doc as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(["dify_model_identity", "id", "tenant_id", "type", "transfer_method", "remote_url", "related_id", "filename", "extension", "mime_type", "size", "url"]);
    expect(doc).toMatchObject({
      dify_model_identity: "__dify__file__",
      id: null,
      tenant_id: tenantId,
      type: "document",
      transfer_method: "local_file",
      remote_url: null,
      related_id: docId,
      filename: "notes.txt",
      extension: ".txt",
      mime_type: "text/plain",
      size: 10,
    });
    expect(String(doc.url)).toMatch(new RegExp(`/files/${docId}/file-preview\\?timestamp=\\d+&nonce=[0-9a-f]+&sign=`));
    // File attributes are addressable by selector (Dify's FileAttribute `name` → filename).
    expect(outputs.name).toBe("notes.txt");
    const more = outputs.more as Array<Record<string, unknown>>;
    expect(more).toHaveLength(1);
    expect(more[0]).toMatchObject({ dify_model_identity: "__dify__file__", type: "image", related_id: imgId, filename: "pic.png", extension: ".png", mime_type: "image/png" });
    // Image bytes are never serialised into the run.
    expect(JSON.stringify(cap.events)).not.toContain("base64,");
    // workflow_finished.files lists the files found in the outputs.
    expect((data.files as Array<Record<string, unknown>>).map((f) => f.related_id).sort()).toEqual([docId, imgId].sort());

    // workflow_started.data.inputs and the stored run inputs carry the file objects too.
    const started = cap.events[0]!.data as { inputs: Record<string, unknown> };
    expect(started.inputs.doc).toMatchObject({ dify_model_identity: "__dify__file__", related_id: docId });
    const row = await t.prisma.workflowRun.findUnique({ where: { id: String(data.id) } });
    expect((row!.inputs as Record<string, Record<string, unknown>>).doc).toMatchObject({ dify_model_identity: "__dify__file__", related_id: docId, filename: "notes.txt" });
    // The start node's outputs hold the file object.
    const startFinished = cap.events.find((e) => e.event === "node_finished" && (e.data as Record<string, unknown>).node_id === "start")!;
    expect(((startFinished.data as Record<string, Record<string, unknown>>).outputs!.doc as Record<string, unknown>).related_id).toBe(docId);
  });

  it("advanced-chat: a start-node file input is a file object too (answer renders its name; conversation inputs keep it)", async () => {
    const yaml = fileInputYaml
      .replace("name: Workflow file input\n  mode: workflow", "name: Chatflow file input\n  mode: advanced-chat")
      .replace(/      - id: end\n[\s\S]*?    edges:\n      - \{id: e1, source: start, target: end\}\n/, `      - id: answer
        type: custom
        data: {type: answer, title: Answer, answer: "got {{#start.doc.name#}} ({{#start.doc.extension#}})"}
    edges:
      - {id: e1, source: start, target: answer}
`);
    expect(yaml).toContain("got {{#start.doc.name#}}");
    const { auth } = await appWithKey(t, yaml);
    const docId = await upload(auth, "ac-file", "report.txt", "text/plain", Buffer.from("quarterly"));
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/chat-messages",
      headers: auth,
      payload: { query: "read it", inputs: { doc: { type: "document", transfer_method: "local_file", upload_file_id: docId } }, user: "ac-file", response_mode: "blocking" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().answer).toBe("got report.txt (.txt)");
    const conv = await t.prisma.conversation.findUnique({ where: { id: res.json().conversation_id as string } });
    expect((conv!.inputs as Record<string, Record<string, unknown>>).doc).toMatchObject({ dify_model_identity: "__dify__file__", related_id: docId });
  });

  it("the variable's allowed types / methods and the upload's owner are enforced before the run (400 invalid_param)", async () => {
    const { auth, appId } = await appWithKey(t, fileInputYaml);
    const imgId = await upload(auth, "wf-file2", "pic.png", "image/png", PNG);
    const docId = await upload(auth, "wf-file2", "notes.txt", "text/plain", Buffer.from("x"));
    const run = (inputs: Record<string, unknown>, user = "wf-file2") =>
      t.app.inject({ method: "POST", url: "/v1/workflows/run", headers: auth, payload: { inputs, user, response_mode: "blocking" } });

    // An image for a document-only variable.
    let res = await run({ doc: { type: "image", transfer_method: "local_file", upload_file_id: imgId } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "invalid_param", message: "File validation failed for file: pic.png" });
    // A declared type that does not match the file (strict for the Service API).
    res = await run({ doc: { type: "document", transfer_method: "local_file", upload_file_id: imgId } });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toBe("Detected file type does not match the specified type. Please verify the file.");
    // Another end user's upload.
    res = await run({ doc: { type: "document", transfer_method: "local_file", upload_file_id: docId } }, "someone-else");
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toBe("Invalid upload file");
    // No run row was created for any of them.
    expect(await t.prisma.workflowRun.count({ where: { app_id: appId } })).toBe(0);

    // Blocking success: outputs carry the file object.
    res = await run({ doc: { type: "document", transfer_method: "local_file", upload_file_id: docId } });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.outputs.doc).toMatchObject({ dify_model_identity: "__dify__file__", related_id: docId, filename: "notes.txt" });
    expect(res.json().data.outputs.more).toBeNull();
  });
});

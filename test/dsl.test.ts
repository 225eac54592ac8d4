// Unit tests of the DSL reader/writer (dsl spec §1, §2.1). Pure: no database, no server.
// Fixtures are small inline YAML documents written for these tests.
import { describe, it, expect } from "vitest";
import { parse } from "yaml";
import {
  CURRENT_DSL_VERSION,
  DslError,
  KNOWN_DSL_VERSIONS,
  compareDslVersions,
  exportDsl,
  parseDsl,
  type ParsedDsl,
} from "../src/modules/apps/dsl.js";

const chatYaml = (version = "0.1.5", extra = "") => `app:
  description: A test bot
  icon: "🤖"
  icon_background: '#FFEAD5'
  mode: chat
  name: Test bot
kind: app
version: ${version}
model_config:
  model:
    provider: openai
    name: gpt-4o-mini
    mode: chat
  pre_prompt: You are {{name}}.
  opening_statement: Hi
  user_input_form:
  - text-input:
      label: Name
      variable: name
      required: true
      max_length: 48
${extra}`;

const workflowYaml = (extraNodes = "", version = "'0.3.1'") => `app:
  mode: workflow
  name: Flow
kind: app
version: ${version}
workflow:
  features: {}
  environment_variables:
  - name: api_url
    value: https://example.test
    value_type: string
  conversation_variables: []
  graph:
    edges:
    - id: e1
      source: start
      target: end
    - id: e2
      source: note1
      target: end
    nodes:
    - id: start
      type: custom
      data:
        type: start
        title: Start
        variables:
        - variable: q
          label: Question
          type: paragraph
          required: true
          max_length: 100
    - id: note1
      type: custom-note
      data:
        type: ''
        text: remember me
    - id: end
      type: custom
      data:
        type: end
        title: End
        outputs:
        - variable: out
          value_selector: [start, q]
          value_type: Array[String]
${extraNodes}`;

function expectDslError(text: string, message: string | RegExp): void {
  let err: unknown;
  try {
    parseDsl(text);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DslError);
  if (typeof message === "string") expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
}

describe("parseDsl: modes", () => {
  it("imports a chat app with normalised model_config", () => {
    const p = parseDsl(chatYaml());
    expect(p.mode).toBe("chat");
    expect(p.version).toBe("0.1.5");
    expect(p.workflow).toBeNull();
    expect(p.app).toEqual({
      name: "Test bot",
      description: "A test bot",
      icon_type: "emoji",
      icon: "🤖",
      icon_background: "#FFEAD5",
      use_icon_as_answer_icon: false,
    });
    const mc = p.modelConfig!;
    expect(mc.pre_prompt).toBe("You are {{name}}.");
    expect(mc.opening_statement).toBe("Hi");
    expect(mc.prompt_type).toBe("simple");
    expect(mc.model).toEqual({ provider: "langgenius/openai/openai", name: "gpt-4o-mini", mode: "chat", completion_params: {} });
    expect(mc.agent_mode).toEqual({ enabled: false, strategy: null, tools: [], prompt: null });
    expect(mc.dataset_configs).toEqual({ retrieval_model: "multiple" });
    expect(mc.retriever_resource).toEqual({ enabled: true });
    expect(mc.suggested_questions).toEqual([]);
    expect(mc.file_upload).toEqual({
      image: { enabled: false, number_limits: 3, detail: "high", transfer_methods: ["remote_url", "local_file"] },
    });
    expect(mc.sensitive_word_avoidance).toEqual({ enabled: false, type: "", configs: [] });
  });

  it.each(["completion", "agent-chat"])("imports a %s app", (mode) => {
    const p = parseDsl(`app: {mode: ${mode}, name: X}\nversion: '0.7.0'\nmodel_config: {pre_prompt: hello}\n`);
    expect(p.mode).toBe(mode);
    expect(p.modelConfig?.pre_prompt).toBe("hello");
    expect(p.warnings).toEqual([]);
  });

  it("imports a workflow app", () => {
    const p = parseDsl(workflowYaml());
    expect(p.mode).toBe("workflow");
    expect(p.modelConfig).toBeNull();
    expect(p.workflow!.graph.nodes.map((n) => n.id)).toEqual(["start", "end"]);
    expect(p.workflow!.environment_variables[0]).toMatchObject({
      name: "api_url",
      description: "",
      value: "https://example.test",
      value_type: "string",
      selector: ["env", "api_url"],
    });
    expect(p.workflow!.environment_variables[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("imports an advanced-chat app with conversation variables", () => {
    const p = parseDsl(`app: {mode: advanced-chat, name: C}
version: '0.3.1'
workflow:
  graph:
    nodes:
    - {id: s, data: {type: start, variables: []}}
    - {id: a, data: {type: answer, answer: '{{#conversation.n#}}'}}
    edges: [{source: s, target: a}]
  conversation_variables:
  - {id: 11111111-1111-4111-8111-111111111111, name: n, value: 1, value_type: number}
  - {name: tags, value: [a, b], value_type: 'array[string]'}
`);
    expect(p.mode).toBe("advanced-chat");
    expect(p.workflow!.conversation_variables[0]).toMatchObject({ id: "11111111-1111-4111-8111-111111111111", selector: ["conversation", "n"] });
    expect(p.workflow!.conversation_variables[1]).toMatchObject({ name: "tags", value: ["a", "b"] });
    expect(p.workflow!.features).toEqual({});
  });

  it("ids generated for variables without one are stable across imports", () => {
    const a = parseDsl(workflowYaml()).workflow!.environment_variables[0]!.id;
    const b = parseDsl(workflowYaml()).workflow!.environment_variables[0]!.id;
    expect(a).toBe(b);
  });

  it("accepts JSON (it is YAML)", () => {
    const p = parseDsl(JSON.stringify({ app: { mode: "chat", name: "J" }, version: "0.7.0", model_config: { pre_prompt: "x" } }));
    expect(p.mode).toBe("chat");
    expect(p.app.name).toBe("J");
  });
});

describe("parseDsl: app block defaults (rule 6)", () => {
  it("defaults icon_type, icon_background, flags and texts", () => {
    const p = parseDsl(`app: {mode: chat, icon_type: weird}\nmodel_config: {pre_prompt: ''}\n`);
    expect(p.app).toEqual({
      name: "",
      description: "",
      icon_type: "emoji",
      icon: "",
      icon_background: "#FFFFFF",
      use_icon_as_answer_icon: false,
    });
  });
  it("keeps image/link icon types", () => {
    expect(parseDsl(`app: {mode: chat, icon_type: link, icon: 'https://x/i.png'}\nmodel_config: {a: 1}\n`).app.icon_type).toBe("link");
  });
  it("forces kind to app in the document", () => {
    const p = parseDsl(`kind: something\napp: {mode: chat}\nmodel_config: {a: 1}\n`);
    expect(p.document.kind).toBe("app");
  });
});

describe("parseDsl: versions", () => {
  it("knows the version history and the current version", () => {
    expect(CURRENT_DSL_VERSION).toBe("0.7.0");
    expect(KNOWN_DSL_VERSIONS.at(-1)).toBe(CURRENT_DSL_VERSION);
    expect(KNOWN_DSL_VERSIONS[0]).toBe("0.1.0");
  });

  it("missing version → 0.1.0 (with the older-version warning)", () => {
    const p = parseDsl(`app: {mode: chat}\nmodel_config: {pre_prompt: x}\n`);
    expect(p.version).toBe("0.1.0");
    expect(p.document.version).toBe("0.1.0");
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/0\.1\.0 is older than 0\.7\.0/);
  });

  it("rejects a float version such as 0.2", () => {
    expectDslError(`version: 0.2\napp: {mode: chat}\nmodel_config: {a: 1}\n`, "Invalid version type, expected str, got <class 'float'>");
  });

  it("rejects an int version", () => {
    expectDslError(`version: 1\napp: {mode: chat}\nmodel_config: {a: 1}\n`, "Invalid version type, expected str, got <class 'int'>");
  });

  it("accepts the quoted string '0.2'", () => {
    expect(parseDsl(`version: '0.2'\napp: {mode: chat}\nmodel_config: {a: 1}\n`).version).toBe("0.2");
  });

  it("rejects an unparsable version", () => {
    expectDslError(`version: banana\napp: {mode: chat}\nmodel_config: {a: 1}\n`, "Invalid DSL version: banana");
  });

  it("rejects a newer major version", () => {
    expectDslError(chatYaml("1.0.0"), "Unsupported DSL version 1.0.0: newer than 0.7.0 (the newest supported version)");
  });

  it("accepts a newer minor/patch within 0.x with a warning", () => {
    const p = parseDsl(chatYaml("0.9.0"));
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/newer than the supported version 0\.7\.0/);
    expect(parseDsl(chatYaml("0.7.1")).warnings[0]).toMatch(/newer/);
  });

  it("accepts older versions with a warning, the current one without", () => {
    expect(parseDsl(chatYaml("0.1.5")).warnings).toEqual([
      "DSL version 0.1.5 is older than 0.7.0; imported as-is (Dify reports completed-with-warnings)",
    ]);
    expect(parseDsl(chatYaml("0.7.0")).warnings).toEqual([]);
  });

  it("compares versions with PEP 440 rules", () => {
    expect(compareDslVersions("0.1.10", "0.1.9")).toBe(1);
    expect(compareDslVersions("0.7", "0.7.0")).toBe(0);
    expect(compareDslVersions("0.7.0rc1", "0.7.0")).toBe(-1);
    expect(compareDslVersions("0.7.0.post1", "0.7.0")).toBe(1);
    expect(compareDslVersions("0.7.0.dev1", "0.7.0a1")).toBe(-1);
    expect(compareDslVersions("v0.3.1", "0.3.1")).toBe(0);
    expect(() => compareDslVersions("x", "0.1.0")).toThrow(DslError);
  });
});

describe("parseDsl: errors", () => {
  it("invalid YAML", () => {
    expectDslError("app: [unclosed\n", /^Invalid YAML: /);
  });
  it("several documents in one stream", () => {
    expectDslError("app: {mode: chat}\n---\nb: 2\n", "Invalid YAML: expected a single document in the stream");
  });
  it("tags PyYAML's safe_load cannot construct", () => {
    expectDslError("app: {mode: chat}\nmodel_config: !!python/object:os.system {a: 1}\n", /^Invalid YAML: Unresolved tag/);
  });
  it("non-mapping documents", () => {
    expectDslError("- a\n- b\n", "Invalid YAML: content must be a mapping");
    expectDslError("just text", "Invalid YAML: content must be a mapping");
    expectDslError("", "Invalid YAML: content must be a mapping");
  });
  it("content over 10 MB", () => {
    expectDslError(`a: '${"x".repeat(10 * 1024 * 1024)}'`, "File size exceeds the limit of 10MB");
  });
  it("missing app", () => {
    expectDslError(`version: '0.7.0'\nmodel_config: {a: 1}\n`, "Missing app data in YAML content");
  });
  it("app that is not a mapping", () => {
    expectDslError(`app: hello\n`, "Invalid app data: must be a mapping");
  });
  it("missing mode", () => {
    expectDslError(`app: {name: x}\n`, "Missing app mode");
  });
  it("bad mode", () => {
    expectDslError(`app: {mode: foo}\n`, "Invalid app mode: foo");
  });
  it.each(["agent", "channel"])("unsupported mode %s", (mode) => {
    expectDslError(`app: {mode: ${mode}}\n`, new RegExp(`^Unsupported app mode: ${mode}`));
  });
  it("missing workflow block", () => {
    expectDslError(`app: {mode: workflow}\nmodel_config: {a: 1}\n`, "Missing workflow data for workflow mode");
    expectDslError(`app: {mode: advanced-chat}\nworkflow: {}\n`, "Missing workflow data for advanced-chat mode");
  });
  it("missing model_config block", () => {
    expectDslError(`app: {mode: chat}\nworkflow: {graph: {}}\n`, "Missing model_config for chat mode");
    expectDslError(`app: {mode: completion}\nmodel_config: []\n`, "Missing model_config for completion mode");
  });
  it("graph shape errors", () => {
    expectDslError(`app: {mode: workflow}\nworkflow: {graph: {nodes: 3}}\n`, "Invalid workflow graph: nodes must be a list");
    expectDslError(`app: {mode: workflow}\nworkflow: {graph: {nodes: [{data: {type: start}}]}}\n`, "Invalid workflow graph: node #1 has no id");
    expectDslError(
      `app: {mode: workflow}\nworkflow: {graph: {nodes: [{id: a, data: {type: start}}, {id: a, data: {type: end}}]}}\n`,
      "Invalid workflow graph: duplicate node id a",
    );
  });
  it("invalid variable declarations", () => {
    const wf = (decl: string) => `app: {mode: workflow}\nworkflow:\n  graph: {nodes: []}\n  environment_variables: [${decl}]\n`;
    expectDslError(wf(`{value: 1, value_type: number}`), "Invalid environment variable #1: missing name");
    expectDslError(wf(`{name: a, value: 1}`), "Invalid environment variable a: missing value type");
    expectDslError(wf(`{name: a, value_type: string}`), "Invalid environment variable a: missing value");
    expectDslError(wf(`{name: a, value: x, value_type: number}`), "Invalid environment variable a: value does not match value_type number");
    expectDslError(wf(`{name: a, value: x, value_type: file}`), "Invalid environment variable a: not supported value type file");
  });
  it("DslError is an Error with its own name", () => {
    const e = new DslError("x");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("DslError");
  });
});

describe("parseDsl: YAML 1.1 semantics (PyYAML)", () => {
  it("reads yes/on as booleans and keeps dates as strings", () => {
    const p = parseDsl(`app: {mode: chat, use_icon_as_answer_icon: yes}\nmodel_config: {speech_to_text: {enabled: on}, pre_prompt: 2024-01-01}\n`);
    expect(p.app.use_icon_as_answer_icon).toBe(true);
    expect(p.modelConfig!.speech_to_text).toEqual({ enabled: true });
    expect(p.modelConfig!.pre_prompt).toBe("2024-01-01");
  });
  it("uses PyYAML's resolvers: no y/n booleans, floats need a dot", () => {
    const p = parseDsl(`app: {mode: chat, name: n}\nmodel_config: {x: [e1, 1e5, 1.0e+5, y, NO, 0755, 1_000, '0.2', 0.2, 09]}\n`);
    expect(p.app.name).toBe("n");
    expect(p.modelConfig!.x).toEqual(["e1", "1e5", 100000, "y", false, 493, 1000, "0.2", 0.2, "09"]);
  });
  it("allows duplicate keys (last wins), like PyYAML", () => {
    expect(parseDsl(`app: {mode: chat, name: a}\napp: {mode: completion, name: b}\nmodel_config: {a: 1}\n`).mode).toBe("completion");
  });
});

describe("parseDsl: legacy shapes (dsl spec §1.9, §2.1)", () => {
  it("drops custom-note nodes and their edges from the runtime graph but keeps them in the document", () => {
    const p = parseDsl(workflowYaml());
    expect(p.workflow!.graph.nodes.some((n) => n.type === "custom-note")).toBe(false);
    expect(p.workflow!.graph.edges.map((e) => e.id)).toEqual(["e1"]);
    const docNodes = ((p.document.workflow as any).graph.nodes as any[]).map((n) => n.id);
    expect(docNodes).toEqual(["start", "note1", "end"]);
  });

  it("lower-cases End output value_type in the runtime copy only", () => {
    const p = parseDsl(workflowYaml());
    const end = p.workflow!.graph.nodes.find((n) => n.id === "end")!;
    expect((end.data as any).outputs[0].value_type).toBe("array[string]");
    const docEnd = ((p.document.workflow as any).graph.nodes as any[]).find((n) => n.id === "end");
    expect(docEnd.data.outputs[0].value_type).toBe("Array[String]");
  });

  it("normalises bare provider names in node data", () => {
    const p = parseDsl(
      workflowYaml(`    - id: llm
      data:
        type: llm
        model: {provider: openai, name: gpt-4o, mode: chat}
        structured_output_enabled: true
    - id: qc
      data: {type: question-classifier, model: {provider: google, name: gemini}}
    - id: pe
      data:
        type: parameter-extractor
        model: {provider: langgenius/ollama/ollama, name: m}
        parameters:
        - {name: ok, type: bool}
        - {name: pick, type: select}
    - id: tool
      data: {type: tool, provider_type: builtin, provider_id: siliconflow, tool_name: flux}
    - id: apitool
      data: {type: tool, provider_type: api, provider_id: 3f0c5b7e-0000-4000-8000-000000000000, tool_name: t}
    - id: http
      data: {type: http-request, method: post, url: 'https://x', body: {type: raw-text, data: 'hello'}}
    - id: kr
      data:
        type: knowledge-retrieval
        dataset_ids: [d1, d2]
        retrieval_mode: multiple
        multiple_retrieval_config: {reranking_model: {provider: cohere, model: rerank}}
`),
    );
    const data = (id: string) => p.workflow!.graph.nodes.find((n) => n.id === id)!.data as any;
    expect(data("llm").model.provider).toBe("langgenius/openai/openai");
    expect(data("llm").structured_output_switch_on).toBe(true);
    expect(data("qc").model.provider).toBe("langgenius/gemini/google");
    expect(data("pe").model.provider).toBe("langgenius/ollama/ollama");
    expect(data("pe").parameters.map((x: any) => x.type)).toEqual(["boolean", "string"]);
    expect(data("tool").provider_id).toBe("langgenius/siliconflow_tool/siliconflow");
    expect(data("apitool").provider_id).toBe("3f0c5b7e-0000-4000-8000-000000000000");
    expect(data("http").body.data).toEqual([{ key: "", type: "text", value: "hello" }]);
    expect(data("kr").multiple_retrieval_config.reranking_model.provider).toBe("langgenius/cohere/cohere");
    expect(p.datasetIds).toEqual(["d1", "d2"]);
  });

  it("warns about unknown node types and a missing start node", () => {
    const p = parseDsl(`app: {mode: workflow}\nversion: '0.7.0'\nworkflow: {graph: {nodes: [{id: h, data: {type: human-input}}], edges: []}}\n`);
    expect(p.warnings).toEqual(['Node h has unsupported type "human-input"', "The workflow graph has no start node"]);
  });

  it("converts numeric node ids to strings", () => {
    const p = parseDsl(`app: {mode: workflow}\nworkflow: {graph: {nodes: [{id: 17, data: {type: start}}], edges: [{source: 17, target: 18}]}}\n`);
    expect(p.workflow!.graph.nodes[0]!.id).toBe("17");
    expect(p.workflow!.graph.edges[0]).toMatchObject({ source: "17", target: "18" });
  });

  it("rewrites an enabled legacy features.file_upload.image block", () => {
    const p = parseDsl(`app: {mode: advanced-chat}
workflow:
  graph: {nodes: [{id: s, data: {type: start}}]}
  features:
    file_upload:
      image: {enabled: true, number_limits: 2, transfer_methods: [local_file]}
`);
    expect(p.workflow!.features.file_upload).toEqual({
      enabled: true,
      number_limits: 2,
      allowed_file_upload_methods: ["local_file"],
      allowed_file_types: ["image"],
      allowed_file_extensions: [],
    });
  });

  it("normalises basic-mode legacy shapes", () => {
    const p = parseDsl(`app: {mode: agent-chat}
model_config:
  model: {provider: openai, name: gpt-4}
  prompt_type: ~
  suggested_questions_after_answer: {}
  user_input_form:
  - paragraph: {variable: bio, label: Bio}
  - not-a-form-entry
  dataset_configs:
    datasets:
      datasets:
      - dataset: {enabled: true, id: ds-1}
      - dataset: {enabled: false, id: ds-off}
  agent_mode:
    enabled: true
    strategy: function_call
    tools:
    - dataset: {enabled: true, id: ds-2}
    - {provider_type: builtin, provider_id: time, tool_name: current_time, enabled: true, tool_parameters: {}}
  annotation_reply: {enabled: true}
`);
    const mc = p.modelConfig!;
    expect(mc.prompt_type).toBe("simple");
    expect((mc.model as any).completion_params).toEqual({});
    expect(mc.suggested_questions_after_answer).toEqual({ enabled: false });
    expect(mc.user_input_form).toEqual([{ paragraph: { variable: "bio", label: "Bio" } }]);
    // Legacy dataset_configs without retrieval_model = the old single strategy.
    expect((mc.dataset_configs as any).retrieval_model).toBe("single");
    expect((mc.agent_mode as any).tools[1].provider_id).toBe("langgenius/time/time");
    // Dify's import ignores annotation_reply from the file.
    expect(mc.annotation_reply).toEqual({ enabled: false });
    expect(p.datasetIds).toEqual(["ds-1", "ds-2"]);
    expect(p.warnings.some((w) => w.includes("user_input_form[1]"))).toBe(true);
  });

  it("keeps unknown model_config keys in the runtime copy", () => {
    expect(parseDsl(chatYaml("0.7.0", "  x_custom: 42\n")).modelConfig!.x_custom).toBe(42);
  });

  it("keeps dependencies", () => {
    const p = parseDsl(chatYaml("0.1.5", "dependencies:\n- type: marketplace\n  value: {marketplace_plugin_unique_identifier: 'langgenius/openai:0.0.1@abc'}\n"));
    expect(p.dependencies).toEqual([{ type: "marketplace", value: { marketplace_plugin_unique_identifier: "langgenius/openai:0.0.1@abc" } }]);
  });
});

describe("exportDsl", () => {
  const appOf = (p: ParsedDsl) => ({ ...p.app, mode: p.mode });

  it("writes Dify's layout: sorted top-level keys, quoted version, kind app", () => {
    const p = parseDsl(chatYaml());
    const text = exportDsl({ document: p.document, app: appOf(p) });
    const topKeys = text.split("\n").filter((l) => /^[a-z_]+:/.test(l)).map((l) => l.split(":")[0]);
    expect(topKeys).toEqual(["app", "dependencies", "kind", "model_config", "version"]);
    expect(text).toContain(`version: '${CURRENT_DSL_VERSION}'`);
    expect(text).toContain("kind: app");
    const doc = parse(text);
    expect(doc.version).toBe(CURRENT_DSL_VERSION);
    expect(doc.dependencies).toEqual([]);
  });

  it("round-trips a chat app, including unknown keys", () => {
    const src = `${chatYaml("0.1.5", "  x_model_key: {deep: [1, 2]}\n")}x_top_level: keep me\n`.replace(
      "  name: Test bot\n",
      "  name: Test bot\n  x_app_key: 7\n",
    );
    const p = parseDsl(src);
    const text = exportDsl({ document: p.document, app: appOf(p) });
    const q = parseDsl(text);
    expect(q.mode).toBe(p.mode);
    expect(q.app).toEqual(p.app);
    expect(q.modelConfig).toEqual(p.modelConfig);
    expect(q.document.x_top_level).toBe("keep me");
    expect((q.document.app as any).x_app_key).toBe(7);
    expect((q.document.model_config as any).x_model_key).toEqual({ deep: [1, 2] });
    expect(q.warnings).toEqual([]);
  });

  it("round-trips a workflow app, keeping notes and UI keys in the file", () => {
    const p = parseDsl(workflowYaml());
    const text = exportDsl({ document: p.document, app: appOf(p) });
    const q = parseDsl(text);
    expect(q.workflow).toEqual(p.workflow);
    expect(text).toContain("custom-note");
    expect(text).toContain("Array[String]");
    const wf = parse(text).workflow;
    expect(Object.keys(wf).sort()).toEqual(["conversation_variables", "environment_variables", "features", "graph", "rag_pipeline_variables"]);
  });

  it("applies the current app fields and drops the block of the other mode", () => {
    const p = parseDsl(`${chatYaml()}workflow: {graph: {}}\n`);
    const text = exportDsl({
      document: p.document,
      app: { ...appOf(p), name: "Renamed", icon_type: "image", icon: "file-id", description: "d" },
    });
    const doc = parse(text);
    expect(doc.app).toMatchObject({ name: "Renamed", icon_type: "image", icon: "file-id", description: "d", mode: "chat" });
    expect(doc.workflow).toBeUndefined();
  });

  it("quotes strings PyYAML would read as other types", () => {
    const p = parseDsl(`app: {mode: chat, name: 'yes'}\nmodel_config: {pre_prompt: 'on', opening_statement: '0755', suggested_questions: ['2024-01-01']}\n`);
    const q = parseDsl(exportDsl({ document: p.document, app: appOf(p) }));
    expect(q.app.name).toBe("yes");
    expect(q.modelConfig!.pre_prompt).toBe("on");
    expect(q.modelConfig!.opening_statement).toBe("0755");
    expect(q.modelConfig!.suggested_questions).toEqual(["2024-01-01"]);
  });

  it("blanks secret environment variables and strips credential ids unless includeSecret", () => {
    const p = parseDsl(`app: {mode: workflow}
workflow:
  graph:
    nodes:
    - {id: s, data: {type: start}}
    - {id: t, data: {type: tool, provider_type: builtin, provider_id: time, tool_name: now, credential_id: cred-1}}
  environment_variables:
  - {name: key, value: s3cret, value_type: secret}
`);
    const plain = parse(exportDsl({ document: p.document, app: appOf(p) }));
    expect(plain.workflow.environment_variables[0].value).toBe("");
    expect(plain.workflow.graph.nodes[1].data.credential_id).toBeUndefined();
    const full = parse(exportDsl({ document: p.document, app: appOf(p), includeSecret: true }));
    expect(full.workflow.environment_variables[0].value).toBe("s3cret");
    expect(full.workflow.graph.nodes[1].data.credential_id).toBe("cred-1");
    // the stored document is not modified
    expect(((p.document.workflow as any).environment_variables[0] as any).value).toBe("s3cret");
  });

  it("exports a replacement config and a chosen version", () => {
    const p = parseDsl(chatYaml());
    const text = exportDsl({ document: p.document, app: appOf(p), modelConfig: { ...p.modelConfig!, pre_prompt: "new" }, version: "0.3.1" });
    const q = parseDsl(text);
    expect(q.version).toBe("0.3.1");
    expect(q.modelConfig!.pre_prompt).toBe("new");
  });
});

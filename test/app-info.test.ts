// Unit tests of the /info, /parameters, /meta, /site builders and of inputs validation
// (apps spec §12, §5.5). Pure: no database, no server.
import { describe, it, expect } from "vitest";
import { parseDsl } from "../src/modules/apps/dsl.js";
import {
  DEFAULT_API_TOOL_ICON,
  InputValidationError,
  buildInfo,
  buildMeta,
  buildParameters,
  buildSite,
  formVariables,
  pyRepr,
  userInputFormFromGraph,
  validateInputs,
} from "../src/modules/apps/app-info.js";

const LIMITS = { image: 11, video: 101, audio: 51, file: 16, workflowFileUploadLimit: 7 };

const PARAMETER_KEYS = [
  "opening_statement",
  "suggested_questions",
  "suggested_questions_after_answer",
  "speech_to_text",
  "text_to_speech",
  "retriever_resource",
  "annotation_reply",
  "more_like_this",
  "user_input_form",
  "sensitive_word_avoidance",
  "file_upload",
  "system_parameters",
];

const startVariables = [
  { variable: "name", label: "Name", type: "text-input", required: true, max_length: 48, options: [], default: "" },
  { variable: "bio", label: "Bio", type: "paragraph", required: false, max_length: 1000 },
  { variable: "lang", label: "Language", type: "select", required: true, options: ["en", "fr"], default: "en" },
  { variable: "n", label: "N", type: "number", required: false },
  { variable: "ok", label: "OK", type: "checkbox", required: false, default: false },
  { variable: "doc", label: "Doc", type: "file", required: false, allowed_file_types: ["document"], allowed_file_upload_methods: ["local_file"] },
  { variable: "docs", label: "Docs", type: "file-list", required: false, max_length: 2, allowed_file_types: ["image"] },
  { variable: "meta", label: "Meta", type: "json_object", required: false, hide: true, json_schema: { type: "object" } },
];
const graph = {
  nodes: [
    { id: "start", data: { type: "start", title: "Start", variables: startVariables } },
    { id: "t1", data: { type: "tool", provider_type: "builtin", provider_id: "langgenius/time/time", tool_name: "current_time" } },
    { id: "t2", data: { type: "tool", provider_type: "api", provider_id: "0d6a3c1e-0000-4000-8000-000000000000", tool_name: "weather" } },
    { id: "t3", data: { type: "tool", provider_type: "workflow", provider_id: "x", tool_name: "sub_flow" } },
    { id: "end", data: { type: "end", outputs: [] } },
  ],
  edges: [],
};

describe("buildInfo (§12.1)", () => {
  it("returns name, description, tags, mode, author_name in order", () => {
    const info = buildInfo({ name: "A", description: "d", mode: "chat", author_name: "Ann" }, ["t1", "t2"]);
    expect(Object.keys(info)).toEqual(["name", "description", "tags", "mode", "author_name"]);
    expect(info).toEqual({ name: "A", description: "d", tags: ["t1", "t2"], mode: "chat", author_name: "Ann" });
    expect(buildInfo({ name: "A", description: "", mode: "workflow" }, []).author_name).toBeNull();
  });
});

describe("buildParameters (§12.2)", () => {
  it("basic mode: key order and Dify defaults for an empty model config", () => {
    const p = buildParameters("chat", {}, LIMITS);
    expect(Object.keys(p)).toEqual(PARAMETER_KEYS);
    expect(p).toEqual({
      opening_statement: null,
      suggested_questions: [],
      suggested_questions_after_answer: { enabled: false },
      speech_to_text: { enabled: false },
      text_to_speech: { enabled: false },
      // AppModelConfig.to_dict reads an unset retriever_resource as enabled.
      retriever_resource: { enabled: true },
      annotation_reply: { enabled: false },
      more_like_this: { enabled: false },
      user_input_form: [],
      sensitive_word_avoidance: { enabled: false, type: "", configs: [] },
      file_upload: { image: { enabled: false, number_limits: 3, detail: "high", transfer_methods: ["remote_url", "local_file"] } },
      system_parameters: {
        image_file_size_limit: 11,
        video_file_size_limit: 101,
        audio_file_size_limit: 51,
        file_size_limit: 16,
        workflow_file_upload_limit: 7,
      },
    });
    expect(Object.keys(p.system_parameters)).toEqual([
      "image_file_size_limit",
      "video_file_size_limit",
      "audio_file_size_limit",
      "file_size_limit",
      "workflow_file_upload_limit",
    ]);
  });

  it("uses Dify's default limits when none are given", () => {
    expect(buildParameters("completion", {}).system_parameters).toEqual({
      image_file_size_limit: 10,
      video_file_size_limit: 100,
      audio_file_size_limit: 50,
      file_size_limit: 15,
      workflow_file_upload_limit: 10,
    });
  });

  it("basic mode: passes feature objects through verbatim and keeps the old-structure form", () => {
    const parsed = parseDsl(`app: {mode: chat}
version: '0.7.0'
model_config:
  opening_statement: Hello
  suggested_questions: [a, b]
  text_to_speech: {enabled: true, voice: v, language: en, autoPlay: disabled, extra: 1}
  retriever_resource: {enabled: false}
  user_input_form:
  - text-input: {variable: name, label: Name, required: true, max_length: 48}
  - select: {variable: lang, label: Language, options: [en, fr]}
`);
    const p = buildParameters(parsed.mode, parsed.modelConfig!, LIMITS);
    expect(p.opening_statement).toBe("Hello");
    expect(p.suggested_questions).toEqual(["a", "b"]);
    expect(p.text_to_speech).toEqual({ enabled: true, voice: "v", language: "en", autoPlay: "disabled", extra: 1 });
    expect(p.retriever_resource).toEqual({ enabled: false });
    expect(p.user_input_form).toEqual([
      { "text-input": { variable: "name", label: "Name", required: true, max_length: 48 } },
      { select: { variable: "lang", label: "Language", options: ["en", "fr"] } },
    ]);
  });

  it("basic mode: annotation_reply comes from the app setting", () => {
    const p = buildParameters("chat", {}, LIMITS, { annotationReply: { enabled: true, id: "x", score_threshold: 0.9 } });
    expect(p.annotation_reply).toEqual({ enabled: true, id: "x", score_threshold: 0.9 });
  });

  it("graph mode: user_input_form is the start node's variables in the old structure", () => {
    const p = buildParameters("workflow", { graph, features: {} }, LIMITS);
    expect(Object.keys(p)).toEqual(PARAMETER_KEYS);
    expect(p.user_input_form).toEqual(startVariables.map((v) => ({ [v.type]: v })));
    expect(p.user_input_form.map((f) => Object.keys(f)[0])).toEqual([
      "text-input",
      "paragraph",
      "select",
      "number",
      "checkbox",
      "file",
      "file-list",
      "json_object",
    ]);
    // graph-mode defaults are those of get_parameters_from_feature_dict
    expect(p.opening_statement).toBeNull();
    expect(p.retriever_resource).toEqual({ enabled: false });
    expect(p.sensitive_word_avoidance).toEqual({ enabled: false, type: "", configs: [] });
    expect(p.file_upload).toEqual({
      image: { enabled: false, number_limits: 3, detail: "high", transfer_methods: ["remote_url", "local_file"] },
    });
  });

  it("graph mode: features pass through, legacy enabled image upload is converted", () => {
    const features = {
      opening_statement: "Welcome",
      suggested_questions: ["q1"],
      sensitive_word_avoidance: { enabled: false },
      file_upload: { image: { enabled: true, number_limits: 5, transfer_methods: ["remote_url"] } },
    };
    const p = buildParameters("advanced-chat", { graph, features }, LIMITS);
    expect(p.opening_statement).toBe("Welcome");
    expect(p.suggested_questions).toEqual(["q1"]);
    expect(p.sensitive_word_avoidance).toEqual({ enabled: false });
    expect(p.file_upload).toEqual({
      enabled: true,
      number_limits: 5,
      allowed_file_upload_methods: ["remote_url"],
      allowed_file_types: ["image"],
      allowed_file_extensions: [],
    });
    // the caller's object is not modified
    expect(features.file_upload.image.enabled).toBe(true);
  });

  it("accepts the stored-config form {mode, modelConfig, workflow}", () => {
    const p = buildParameters({ mode: "workflow", modelConfig: null, workflow: { graph, features: {} } }, LIMITS);
    expect(p.user_input_form).toHaveLength(startVariables.length);
    expect(buildParameters({ mode: "chat", modelConfig: { opening_statement: "x" } }).opening_statement).toBe("x");
  });

  it("a graph without a start node has an empty form; variables without a type are skipped", () => {
    expect(userInputFormFromGraph({ nodes: [{ id: "e", data: { type: "end" } }] })).toEqual([]);
    expect(userInputFormFromGraph(undefined)).toEqual([]);
    expect(userInputFormFromGraph({ nodes: [{ id: "s", data: { type: "start", variables: [{ variable: "x" }, { variable: "y", type: "number" }] } }] })).toEqual([
      { number: { variable: "y", type: "number" } },
    ]);
  });
});

describe("buildMeta (§12.3)", () => {
  it("graph mode: builtin icons are console URLs, api tools get Dify's default, others none", () => {
    expect(buildMeta("workflow", { graph })).toEqual({
      tool_icons: {
        current_time: "/console/api/workspaces/current/tool-provider/builtin/langgenius/time/time/icon",
        weather: { background: "#252525", content: "😁" },
      },
    });
    expect(DEFAULT_API_TOOL_ICON).toEqual({ background: "#252525", content: "😁" });
  });

  it("uses consoleApiUrl and an API icon resolver when given", () => {
    const meta = buildMeta("advanced-chat", { graph }, {
      consoleApiUrl: "https://console.example",
      resolveApiToolIcon: (id) => (id.startsWith("0d6a") ? { background: "#000", content: "☀️" } : undefined),
    });
    expect(meta.tool_icons).toEqual({
      current_time: "https://console.example/console/api/workspaces/current/tool-provider/builtin/langgenius/time/time/icon",
      weather: { background: "#000", content: "☀️" },
    });
  });

  it("basic mode: agent_mode tools with at least four keys", () => {
    const config = {
      agent_mode: {
        enabled: true,
        tools: [
          { provider_type: "builtin", provider_id: "langgenius/searxng/searxng", tool_name: "search", enabled: true },
          { provider_type: "api", provider_id: "p1", tool_name: "crm", enabled: true },
          { dataset: { enabled: true, id: "d" } },
          { provider_type: "builtin", provider_id: "x", tool_name: "short" },
        ],
      },
    };
    expect(buildMeta("agent-chat", config).tool_icons).toEqual({
      search: "/console/api/workspaces/current/tool-provider/builtin/langgenius/searxng/searxng/icon",
      crm: { background: "#252525", content: "😁" },
    });
    expect(buildMeta({ mode: "agent-chat", modelConfig: config }).tool_icons).toHaveProperty("search");
  });

  it("no config / no tools → empty tool_icons", () => {
    expect(buildMeta("chat", null)).toEqual({ tool_icons: {} });
    expect(buildMeta("chat", {})).toEqual({ tool_icons: {} });
    expect(buildMeta("workflow", { graph: { nodes: [] } })).toEqual({ tool_icons: {} });
  });
});

describe("buildSite (§12.4)", () => {
  const app = { name: "My app", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5", use_icon_as_answer_icon: true };

  it("key order and the defaults of a freshly created site", () => {
    const site = buildSite({ ...app, site: {} });
    expect(Object.keys(site)).toEqual([
      "title",
      "chat_color_theme",
      "chat_color_theme_inverted",
      "icon_type",
      "icon",
      "icon_background",
      "description",
      "copyright",
      "privacy_policy",
      "custom_disclaimer",
      "default_language",
      "show_workflow_steps",
      "use_icon_as_answer_icon",
      "icon_url",
    ]);
    expect(site).toEqual({
      title: "My app",
      chat_color_theme: null,
      chat_color_theme_inverted: false,
      icon_type: "emoji",
      icon: "🤖",
      icon_background: "#FFEAD5",
      description: null,
      copyright: null,
      privacy_policy: null,
      custom_disclaimer: "",
      default_language: "en-US",
      show_workflow_steps: true,
      use_icon_as_answer_icon: true,
      icon_url: null,
    });
  });

  it("site settings override the defaults", () => {
    const site = buildSite({
      ...app,
      site: { title: "T", chat_color_theme: "#123456", copyright: "ACME", default_language: "fr-FR", show_workflow_steps: false, use_icon_as_answer_icon: false },
    });
    expect(site).toMatchObject({
      title: "T",
      chat_color_theme: "#123456",
      copyright: "ACME",
      default_language: "fr-FR",
      show_workflow_steps: false,
      use_icon_as_answer_icon: false,
    });
  });

  it("icon_url is a signed URL only for image icons", () => {
    const sign = (icon: string) => `https://files.example/${icon}?sig=1`;
    expect(buildSite({ ...app, icon_type: "image", icon: "file-1" }, { signIconUrl: sign }).icon_url).toBe("https://files.example/file-1?sig=1");
    expect(buildSite({ ...app, icon_type: "image", icon: "file-1" }).icon_url).toBeNull();
    expect(buildSite({ ...app, icon_type: "link", icon: "https://x/i.png" }, { signIconUrl: sign }).icon_url).toBeNull();
  });
});

describe("validateInputs (§5.5)", () => {
  const oldForm = startVariables.map((v) => ({ [v.type]: v }));
  const ok = { name: "Ann", lang: "fr" };
  const fails = (inputs: Record<string, unknown>, message: string, form: unknown = oldForm) => {
    let err: unknown;
    try {
      validateInputs(form, inputs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputValidationError);
    expect((err as Error).message).toBe(message);
  };

  it("returns every declared variable, applies defaults and drops undeclared keys", () => {
    expect(validateInputs(oldForm, { ...ok, extra: "dropped" })).toEqual({
      name: "Ann",
      bio: null,
      lang: "fr",
      n: null,
      ok: false,
      doc: null,
      docs: null,
      meta: null,
    });
  });

  it("accepts start-node variables (new structure) too", () => {
    expect(validateInputs(startVariables, ok)).toMatchObject({ name: "Ann", lang: "fr" });
    expect(formVariables(startVariables).map((v) => v.variable)).toEqual(startVariables.map((v) => v.variable));
  });

  it("rule 1: required", () => {
    fails({ lang: "en" }, "name is required in input form");
    fails({ name: null, lang: "en" }, "name is required in input form");
  });

  it("rule 1: the default of an optional variable is validated too", () => {
    const form = [{ select: { variable: "s", label: "S", options: ["a"], default: "zz" } }];
    fails({}, "s in input form must be one of the following: ['a']", form);
  });

  it("rule 2: text-input, paragraph and select must be strings", () => {
    fails({ ...ok, name: 5 }, "(type 'text-input') name in input form must be a string");
    fails({ ...ok, bio: true }, "(type 'paragraph') bio in input form must be a string");
    fails({ ...ok, lang: ["en"] }, "(type 'select') lang in input form must be a string");
  });

  it("rule 2: max_length of text (counted in characters)", () => {
    fails({ ...ok, name: "x".repeat(49) }, "name in input form must be less than 48 characters");
    expect(validateInputs(oldForm, { ...ok, name: "😀".repeat(48) }).name).toBe("😀".repeat(48));
  });

  it("rule 2: select options", () => {
    fails({ ...ok, lang: "de" }, "lang in input form must be one of the following: ['en', 'fr']");
  });

  it("rule 2: number parsing", () => {
    expect(validateInputs(oldForm, { ...ok, n: 3 }).n).toBe(3);
    expect(validateInputs(oldForm, { ...ok, n: "3" }).n).toBe(3);
    expect(validateInputs(oldForm, { ...ok, n: " 3.5 " }).n).toBe(3.5);
    expect(validateInputs(oldForm, { ...ok, n: "" }).n).toBeNull();
    fails({ ...ok, n: "abc" }, "n in input form must be a valid number");
    fails({ ...ok, n: "1e5" }, "n in input form must be a valid number");
    fails({ ...ok, n: { a: 1 } }, "n in input form must be a valid number");
  });

  it("rule 2: checkbox conversion", () => {
    for (const [v, want] of [
      ["true", true],
      ["YES", true],
      ["on", true],
      ["1", true],
      ["false", false],
      ["No", false],
      ["off", false],
      ["0", false],
      [1, true],
      [0, false],
      [true, true],
    ] as const) {
      expect(validateInputs(oldForm, { ...ok, ok: v }).ok).toBe(want);
    }
  });

  it("rule 2: json_object must be a dict", () => {
    expect(validateInputs(oldForm, { ...ok, meta: { a: 1 } }).meta).toEqual({ a: 1 });
    fails({ ...ok, meta: "text" }, "meta in input form must be a dict");
    fails({ ...ok, meta: [1] }, "meta in input form must be a dict");
  });

  it("rule 2: file and file-list", () => {
    const f = { type: "document", transfer_method: "remote_url", url: "https://x/a.pdf" };
    expect(validateInputs(oldForm, { ...ok, doc: f }).doc).toEqual(f);
    expect(validateInputs(oldForm, { ...ok, doc: "", docs: "" })).toMatchObject({ doc: null, docs: null });
    fails({ ...ok, doc: "x" }, "doc in input form must be a file");
    fails({ ...ok, docs: f }, "docs in input form must be a list of files");
    fails({ ...ok, docs: ["a"] }, "docs in input form must be a list of files");
    fails({ ...ok, docs: [f, f, f] }, "docs in input form must be less than 2 files");
    expect(validateInputs(oldForm, { ...ok, docs: [] }).docs).toEqual([]);
  });

  it("rule 3: NUL characters are stripped", () => {
    expect(validateInputs(oldForm, { ...ok, name: "A\u0000nn" }).name).toBe("Ann");
  });

  it("rule 4: objects for other variable types", () => {
    fails({ ...ok, ok: { a: 1 } }, "Invalid input type for ['ok']");
    fails({ ...ok, ok: [{ a: 1 }] }, "Invalid input type for ['ok']");
  });

  it("external_data_tool entries are not inputs; non-object inputs count as empty", () => {
    const form = [{ external_data_tool: { variable: "w", type: "api", config: {} } }, { "text-input": { variable: "a", label: "A" } }];
    expect(validateInputs(form, { w: "x", a: "y" })).toEqual({ a: "y" });
    expect(validateInputs(form, null)).toEqual({ a: null });
  });

  it("InputValidationError is an Error with its own name", () => {
    const e = new InputValidationError("m");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("InputValidationError");
  });

  it("pyRepr renders lists like Python", () => {
    expect(pyRepr(["a", "it's", 1, true, null])).toBe(`['a', "it's", 1, True, None]`);
  });
});

// Dify app DSL (the `kind: app` YAML export) — parsing, normalisation and export.
//
// Pure functions: no database, no Fastify, no logging. The importer/exporter services call these
// and persist the result (App.dsl keeps `document`, AppModelConfig keeps `modelConfig`, Workflow
// keeps `workflow`).
//
// Spec: shared/spec/dsl-and-workflow.md §1 (file format, import rules, legacy shapes), §2.1–2.2
// (basic-mode `model_config`), and Dify's `api/services/app_dsl_service.py`,
// `api/services/dsl_version.py`, `api/models/model.py` (AppModelConfig.from_model_config_dict /
// to_dict), `api/models/workflow.py` (Workflow.features), `api/factories/variable_factory.py`.
//
// Design decision (brief + spec §1.1 "SHOULD keep the original document"): `document` is the
// imported mapping with only top-level fixes (version, kind, app defaults) so that an export
// round-trips every UI-only and unknown key; the runtime copies (`modelConfig`, `workflow`) are
// normalised (§1.9 legacy shapes, §2.1 defaults) and never written back into `document`.

import { createHash } from "node:crypto";
import { Document, parseDocument, Scalar, type ScalarTag, type Tags } from "yaml";

// ---------------------------------------------------------------------------------------------
// Public constants and types

export class DslError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DslError";
  }
}

/** The DSL version this server writes and claims to understand (Dify 1.16, spec §1.8). */
export const CURRENT_DSL_VERSION = "0.7.0";

/** Every `CURRENT_DSL_VERSION` Dify has shipped, oldest first (spec §1.8). */
export const KNOWN_DSL_VERSIONS = [
  "0.1.0",
  "0.1.1",
  "0.1.2",
  "0.1.3",
  "0.1.4",
  "0.1.5",
  "0.2.0",
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "0.5.0",
  "0.6.0",
  "0.7.0",
] as const;

/** Dify refuses DSL content over 10 MB (`DSL_MAX_SIZE` in app_dsl_service.py, spec §1.1 rule 1). */
export const DSL_MAX_SIZE = 10 * 1024 * 1024;

export const APP_MODES = ["completion", "chat", "agent-chat", "advanced-chat", "workflow"] as const;
export type AppMode = (typeof APP_MODES)[number];

/** Graph modes are configured by `workflow`, the others by `model_config` (spec §1.1 rule 5). */
export const isGraphMode = (mode: string): mode is "workflow" | "advanced-chat" =>
  mode === "workflow" || mode === "advanced-chat";

export const isAppMode = (mode: unknown): mode is AppMode =>
  typeof mode === "string" && (APP_MODES as readonly string[]).includes(mode);

export type JsonObject = Record<string, unknown>;

export type IconType = "emoji" | "image" | "link";

export interface DslAppInfo {
  name: string;
  description: string;
  icon_type: IconType;
  icon: string;
  icon_background: string;
  use_icon_as_answer_icon: boolean;
}

export interface WorkflowGraph {
  nodes: JsonObject[];
  edges: JsonObject[];
  [key: string]: unknown;
}

export interface ParsedWorkflow {
  graph: WorkflowGraph;
  features: JsonObject;
  environment_variables: JsonObject[];
  conversation_variables: JsonObject[];
}

export interface ParsedDsl {
  /** The DSL version string as imported ("0.1.0" when the file had none). */
  version: string;
  mode: AppMode;
  app: DslAppInfo;
  /** Normalised `model_config` (AppModelConfig.to_dict shape) for completion/chat/agent-chat. */
  modelConfig: JsonObject | null;
  /** Normalised workflow block for workflow/advanced-chat. */
  workflow: ParsedWorkflow | null;
  dependencies: unknown[];
  /** The whole document incl. unknown keys (top level fixed up), kept for round-trip export. */
  document: JsonObject;
  warnings: string[];
  /** Knowledge dataset ids referenced by the app (opaque: may be encrypted ids from another workspace, §1.7). */
  datasetIds: string[];
}

// ---------------------------------------------------------------------------------------------
// Small helpers

export const isObj = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Python truthiness, because Dify's checks are `if not data.get(...)`. */
function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObj(v)) return Object.keys(v).length > 0;
  return true;
}

/** Python's `type(x)` name, for the "Invalid version type" message Dify produces. */
function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return "NoneType";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "bigint") return "int";
  if (typeof v === "string") return "str";
  if (Array.isArray(v)) return "list";
  if (v instanceof Date) return "datetime.date";
  return "dict";
}

const clone = <T>(v: T): T => structuredClone(v);

// ---------------------------------------------------------------------------------------------
// Versions: PEP 440 parsing/comparison as Dify does with `packaging.version` (spec §1.1 rule 7)

interface Pep440 {
  epoch: number;
  release: number[];
  pre: [number, number] | null; // [0=a,1=b,2=rc, n]
  post: number | null;
  dev: number | null;
}

// packaging's VERSION_PATTERN (canonical forms and the permitted spellings), case-insensitive.
const PEP440_RE =
  /^\s*v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?(\d+)?)?(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?(?:[-_.]?(dev)[-_.]?(\d+)?)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$/i;

export function parseDslVersion(v: string): Pep440 | null {
  const m = PEP440_RE.exec(v);
  if (!m) return null;
  const [, epoch, release, preL, preN, postN1, postL, postN2, devL, devN] = m;
  let pre: [number, number] | null = null;
  if (preL) {
    const l = preL.toLowerCase();
    const rank = l === "a" || l === "alpha" ? 0 : l === "b" || l === "beta" ? 1 : 2;
    pre = [rank, preN ? Number(preN) : 0];
  }
  let post: number | null = null;
  if (postN1 !== undefined) post = Number(postN1);
  else if (postL) post = Number(postN2 ?? 0);
  return {
    epoch: epoch ? Number(epoch) : 0,
    release: release!.split(".").map(Number),
    pre,
    post,
    dev: devL ? Number(devN ?? 0) : null,
  };
}

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** packaging.version ordering: epoch, release (trailing zeros ignored), pre, post, dev. */
function comparePep440(a: Pep440, b: Pep440): number {
  let c = cmpNum(a.epoch, b.epoch);
  if (c) return c;
  const n = Math.max(a.release.length, b.release.length);
  for (let i = 0; i < n; i++) {
    c = cmpNum(a.release[i] ?? 0, b.release[i] ?? 0);
    if (c) return c;
  }
  // pre: a dev-only final release sorts before its pre-releases; no pre sorts after them.
  const preKey = (x: Pep440): number[] =>
    x.pre ? [0, ...x.pre] : x.post === null && x.dev !== null ? [-1, 0, 0] : [1, 0, 0];
  const pa = preKey(a);
  const pb = preKey(b);
  for (let i = 0; i < 3; i++) {
    c = cmpNum(pa[i]!, pb[i]!);
    if (c) return c;
  }
  c = cmpNum(a.post ?? -1, b.post ?? -1);
  if (c) return c;
  return cmpNum(a.dev ?? Number.POSITIVE_INFINITY, b.dev ?? Number.POSITIVE_INFINITY);
}

/** Compare two DSL versions (PEP 440). Throws DslError when either is unparsable. */
export function compareDslVersions(a: string, b: string): number {
  const pa = parseDslVersion(a);
  const pb = parseDslVersion(b);
  if (!pa) throw new DslError(`Invalid DSL version: ${a}`);
  if (!pb) throw new DslError(`Invalid DSL version: ${b}`);
  return comparePep440(pa, pb);
}

/**
 * Dify's `check_version_compatibility` mapped onto this server (spec §1.1 rule 7):
 * unparsable → error; newer major → error (Dify: PENDING, the user must confirm — we cannot know
 * the shapes); newer within the same major → accepted with a warning (Dify: PENDING);
 * older major/minor → accepted with a warning (Dify: PENDING / COMPLETED_WITH_WARNINGS);
 * otherwise no warning. There is no migration step: old shapes are tolerated at run time (§1.9).
 */
function checkVersion(version: string, warnings: string[]): void {
  const imported = parseDslVersion(version);
  if (!imported) throw new DslError(`Invalid DSL version: ${version}`);
  const current = parseDslVersion(CURRENT_DSL_VERSION)!;
  const iMajor = imported.release[0] ?? 0;
  const cMajor = current.release[0] ?? 0;
  if (comparePep440(imported, current) > 0) {
    if (iMajor > cMajor || imported.epoch > current.epoch) {
      throw new DslError(
        `Unsupported DSL version ${version}: newer than ${CURRENT_DSL_VERSION} (the newest supported version)`,
      );
    }
    warnings.push(
      `DSL version ${version} is newer than the supported version ${CURRENT_DSL_VERSION}; unknown features may be ignored`,
    );
    return;
  }
  if (iMajor < cMajor || (imported.release[1] ?? 0) < (current.release[1] ?? 0)) {
    warnings.push(
      `DSL version ${version} is older than ${CURRENT_DSL_VERSION}; imported as-is (Dify reports completed-with-warnings)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// YAML reading/writing

// PyYAML's `safe_load` is YAML 1.1: yes/no/on/off are booleans, 0755 is octal, `0.2` a float.
// We read and write with PyYAML's own implicit resolvers (yaml/resolver.py) so that values — and
// the "version must be a string" rule — come out as Dify sees them. They differ from the `yaml`
// package's 1.1 schema: PyYAML has no y/n booleans, and its floats need a dot (`e1`, `1e5` are
// strings) with a signed exponent. Unquoted timestamps stay strings when reading (PyYAML would
// build datetime objects that Dify could not store either); when writing, the timestamp tag is
// kept so that date-like strings get quoted. Duplicate keys are allowed (last wins), as in PyYAML.
const PY_BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const PY_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PY_INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const PY_FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** Base-60 "1:20:30" → 4830, as PyYAML's construct_yaml_int/float. */
const sexagesimal = (digits: string, parse: (s: string) => number): number =>
  digits.split(":").reduce((acc, part) => acc * 60 + parse(part), 0);

const pyBoolTag: ScalarTag = {
  identify: (v) => typeof v === "boolean",
  default: true,
  tag: "tag:yaml.org,2002:bool",
  test: PY_BOOL,
  resolve: (s) => PY_TRUE.test(s),
  stringify: ({ value }) => (value ? "true" : "false"),
};

const pyIntTag: ScalarTag = {
  identify: (v) => typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v)),
  default: true,
  tag: "tag:yaml.org,2002:int",
  test: PY_INT,
  resolve: (src) => {
    let s = src.replace(/_/g, "");
    let sign = 1;
    if (s[0] === "-" || s[0] === "+") {
      if (s[0] === "-") sign = -1;
      s = s.slice(1);
    }
    if (s === "0") return 0;
    if (s.startsWith("0b")) return sign * Number.parseInt(s.slice(2), 2);
    if (s.startsWith("0x")) return sign * Number.parseInt(s.slice(2), 16);
    if (s.startsWith("0")) return sign * Number.parseInt(s, 8);
    if (s.includes(":")) return sign * sexagesimal(s, (p) => Number.parseInt(p, 10));
    return sign * Number(s);
  },
  // Large integers must not come out in exponent form (PyYAML would read a string).
  stringify: ({ value }) => (typeof value === "number" && Math.abs(value) >= 1e21 ? BigInt(value).toString() : String(value)),
};

const pyFloatTag: ScalarTag = {
  identify: (v) => typeof v === "number" && !Number.isInteger(v),
  default: true,
  tag: "tag:yaml.org,2002:float",
  test: PY_FLOAT,
  resolve: (src) => {
    let s = src.replace(/_/g, "").toLowerCase();
    let sign = 1;
    if (s[0] === "-" || s[0] === "+") {
      if (s[0] === "-") sign = -1;
      s = s.slice(1);
    }
    if (s === ".inf") return sign * Number.POSITIVE_INFINITY;
    if (s === ".nan") return Number.NaN;
    if (s.includes(":")) return sign * sexagesimal(s, Number.parseFloat);
    return sign * Number(s);
  },
  // Written so that PyYAML reads a float back: a dot before any exponent, a signed exponent.
  stringify: ({ value }) => {
    const n = Number(value);
    if (Number.isNaN(n)) return ".nan";
    if (!Number.isFinite(n)) return n > 0 ? ".inf" : "-.inf";
    const [mant, exp] = String(n).split("e");
    if (exp === undefined) return mant!;
    return `${mant!.includes(".") ? mant : `${mant}.0`}e${exp.startsWith("-") || exp.startsWith("+") ? exp : `+${exp}`}`;
  },
};

const PY_REPLACED = new Set(["tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"]);
const TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp";

function pyyamlTags(keepTimestamp: boolean): (tags: Tags) => Tags {
  return (tags) => [
    ...tags.filter((t) => {
      const id = typeof t === "string" ? `tag:yaml.org,2002:${t}` : t.tag;
      return !PY_REPLACED.has(id) && (keepTimestamp || id !== TIMESTAMP_TAG);
    }),
    pyBoolTag,
    pyIntTag,
    pyFloatTag,
  ];
}

function readYaml(text: string): unknown {
  let doc;
  try {
    doc = parseDocument(text, {
      version: "1.1",
      uniqueKeys: false,
      // "error": problems are collected on the document (nothing is printed). "silent" would
      // also swallow the multiple-documents error.
      logLevel: "error",
      customTags: pyyamlTags(false),
    });
  } catch (e) {
    throw new DslError(`Invalid YAML: ${firstLine(e)}`);
  }
  const err = doc.errors[0];
  if (err?.code === "MULTIPLE_DOCS") throw new DslError("Invalid YAML: expected a single document in the stream");
  if (err) throw new DslError(`Invalid YAML: ${firstLine(err)}`);
  // PyYAML's safe_load refuses tags it cannot construct (e.g. !!python/object); so do we.
  const badTag = doc.warnings.find((w) => w.code === "TAG_RESOLVE_FAILED");
  if (badTag) throw new DslError(`Invalid YAML: ${firstLine(badTag)}`);
  try {
    // Alias expansion is bounded (billion-laughs guard); yaml's default limit is 100.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new DslError(`Invalid YAML: ${firstLine(e)}`);
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split("\n")[0] ?? "").replace(/:$/, "").trim();
}

// ---------------------------------------------------------------------------------------------
// Provider ids (spec §1.6, §1.9): bare names are pre-plugin ids; Dify maps them with
// GenericProviderID → `langgenius/<name>/<name>`, plus two renames (ModelProviderID: google is the
// `gemini` plugin; ToolProviderID: a few tool plugins carry a `_tool` suffix).

const BARE_PROVIDER = /^[a-z0-9_-]+$/;
const TOOL_PLUGIN_RENAMES = new Set(["jina", "siliconflow", "stepfun", "gitee_ai"]);

export function normaliseModelProvider(provider: unknown): unknown {
  if (typeof provider !== "string" || !BARE_PROVIDER.test(provider)) return provider;
  return provider === "google" ? "langgenius/gemini/google" : `langgenius/${provider}/${provider}`;
}

export function normaliseToolProvider(provider: unknown): unknown {
  if (typeof provider !== "string" || !BARE_PROVIDER.test(provider)) return provider;
  return TOOL_PLUGIN_RENAMES.has(provider)
    ? `langgenius/${provider}_tool/${provider}`
    : `langgenius/${provider}/${provider}`;
}

/** Only builtin (plugin) tools have provider ids of that form; api/workflow/mcp ids are UUIDs. */
const hasPluginToolId = (providerType: unknown): boolean =>
  providerType === "builtin" || providerType === "plugin" || providerType === undefined;

function normaliseModelSelector(model: unknown): void {
  if (isObj(model) && "provider" in model) model.provider = normaliseModelProvider(model.provider);
}

// ---------------------------------------------------------------------------------------------
// Basic modes: model_config (spec §2.1)

const DEFAULT_FILE_UPLOAD = (): JsonObject => ({
  image: { enabled: false, number_limits: 3, detail: "high", transfer_methods: ["remote_url", "local_file"] },
});

const objOr = (v: unknown, def: () => JsonObject): JsonObject => (isObj(v) && pyTruthy(v) ? v : def());

/**
 * Normalise a basic-mode `model_config` the way Dify stores and reloads it
 * (`AppModelConfig.from_model_config_dict` then `to_dict`): falsy feature blocks become their
 * defaults, so every key is present. Idempotent; unknown keys are kept after the known ones.
 * Input is not mutated.
 */
export function normaliseModelConfig(raw: JsonObject, warnings: string[] = []): JsonObject {
  const src = clone(raw);
  const out: JsonObject = {};

  // Key order = AppModelConfig.to_dict.
  out.opening_statement = typeof src.opening_statement === "string" ? src.opening_statement : null;
  out.suggested_questions = Array.isArray(src.suggested_questions) ? src.suggested_questions : [];
  out.suggested_questions_after_answer = objOr(src.suggested_questions_after_answer, () => ({ enabled: false }));
  out.speech_to_text = objOr(src.speech_to_text, () => ({ enabled: false }));
  out.text_to_speech = objOr(src.text_to_speech, () => ({ enabled: false }));
  // Dify quirk: an unset retriever_resource reads back as enabled (AppModelConfig.retriever_resource_dict).
  out.retriever_resource = objOr(src.retriever_resource, () => ({ enabled: true }));
  out.annotation_reply = objOr(src.annotation_reply, () => ({ enabled: false }));
  out.more_like_this = objOr(src.more_like_this, () => ({ enabled: false }));
  out.sensitive_word_avoidance = objOr(src.sensitive_word_avoidance, () => ({ enabled: false, type: "", configs: [] }));
  out.external_data_tools = Array.isArray(src.external_data_tools) ? src.external_data_tools : [];

  const model: JsonObject = isObj(src.model) ? src.model : {};
  if (!isObj(model.completion_params)) model.completion_params = {};
  normaliseModelSelector(model);
  out.model = model;

  out.user_input_form = normaliseUserInputForm(src.user_input_form, warnings);
  out.dataset_query_variable = typeof src.dataset_query_variable === "string" ? src.dataset_query_variable : "";
  out.pre_prompt = typeof src.pre_prompt === "string" ? src.pre_prompt : "";
  out.agent_mode = normaliseAgentMode(src.agent_mode);

  if (src.prompt_type === undefined || src.prompt_type === null || src.prompt_type === "simple") out.prompt_type = "simple";
  else if (src.prompt_type === "advanced") out.prompt_type = "advanced";
  else {
    warnings.push(`Unknown model_config.prompt_type ${JSON.stringify(src.prompt_type)}; using "simple"`);
    out.prompt_type = "simple";
  }
  out.chat_prompt_config = objOr(src.chat_prompt_config, () => ({}));
  out.completion_prompt_config = objOr(src.completion_prompt_config, () => ({}));
  out.dataset_configs = normaliseDatasetConfigs(src.dataset_configs);
  out.file_upload = objOr(src.file_upload, DEFAULT_FILE_UPLOAD);

  for (const [k, v] of Object.entries(src)) if (!(k in out)) out[k] = v;
  return out;
}

/** `user_input_form` entries are one-key mappings `{<control type>: {...}}` (spec §2.2). */
function normaliseUserInputForm(v: unknown, warnings: string[]): JsonObject[] {
  if (!Array.isArray(v)) return [];
  const out: JsonObject[] = [];
  v.forEach((entry, i) => {
    const keys = isObj(entry) ? Object.keys(entry) : [];
    if (!isObj(entry) || keys.length === 0 || !isObj(entry[keys[0]!])) {
      warnings.push(`model_config.user_input_form[${i}] is not a {<type>: {...}} mapping and was ignored`);
      return;
    }
    out.push(entry);
  });
  return out;
}

function normaliseAgentMode(v: unknown): JsonObject {
  if (!isObj(v) || !pyTruthy(v)) return { enabled: false, strategy: null, tools: [], prompt: null };
  const am = v;
  if (!Array.isArray(am.tools)) am.tools = [];
  for (const tool of am.tools as unknown[]) {
    // "Current standard" tools have ≥4 keys; 1-key entries ({dataset: {...}}) are legacy (§2.9).
    if (isObj(tool) && Object.keys(tool).length >= 4 && hasPluginToolId(tool.provider_type)) {
      tool.provider_id = normaliseToolProvider(tool.provider_id);
    }
  }
  return am;
}

function normaliseDatasetConfigs(v: unknown): JsonObject {
  // AppModelConfig.dataset_configs_dict: unset → multiple; set but without retrieval_model → the
  // very old single ("router") strategy (spec §2.7). Dify would also drop the other keys in that
  // case; we keep them — they carry no meaning for single retrieval but make export lossless.
  if (!isObj(v) || !pyTruthy(v)) return { retrieval_model: "multiple" };
  const dc = v;
  if (!("retrieval_model" in dc)) dc.retrieval_model = "single";
  if (isObj(dc.reranking_model) && "reranking_provider_name" in dc.reranking_model) {
    dc.reranking_model.reranking_provider_name = normaliseModelProvider(dc.reranking_model.reranking_provider_name);
  }
  const vs = isObj(dc.weights) ? dc.weights.vector_setting : undefined;
  if (isObj(vs) && "embedding_provider_name" in vs) vs.embedding_provider_name = normaliseModelProvider(vs.embedding_provider_name);
  normaliseModelSelector(dc.metadata_model_config);
  return dc;
}

function datasetIdsFromModelConfig(mc: JsonObject): string[] {
  const ids: string[] = [];
  // DatasetConfigManager.convert: dataset_configs.datasets.datasets[].dataset {enabled, id} …
  const dc = mc.dataset_configs;
  const list = isObj(dc) && isObj(dc.datasets) ? dc.datasets.datasets : undefined;
  if (Array.isArray(list)) {
    for (const item of list) {
      const d = isObj(item) ? item.dataset : undefined;
      if (isObj(d) && d.enabled === true && typeof d.id === "string" && d.id) ids.push(d.id);
    }
  }
  // … and the legacy agent_mode.tools entries {dataset: {enabled, id}} (spec §2.7). Dify only
  // reads these when agent_mode.enabled; we list them regardless, because the id list exists to
  // let an operator map every referenced dataset.
  const am = mc.agent_mode;
  if (isObj(am) && Array.isArray(am.tools)) {
    for (const tool of am.tools) {
      const d = isObj(tool) && Object.keys(tool).length === 1 ? tool.dataset : undefined;
      if (isObj(d) && d.enabled === true && typeof d.id === "string" && d.id) ids.push(d.id);
    }
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Graph modes: workflow block (spec §1.3–1.5, §1.9, §3.1)

/** Node types the runtime knows (spec §4); anything else is reported as a warning. */
export const KNOWN_NODE_TYPES = new Set([
  "start",
  "end",
  "answer",
  "llm",
  "knowledge-retrieval",
  "question-classifier",
  "if-else",
  "code",
  "template-transform",
  "http-request",
  "variable-aggregator",
  "variable-assigner",
  "assigner",
  "iteration",
  "iteration-start",
  "loop",
  "loop-start",
  "loop-end",
  "parameter-extractor",
  "tool",
  "document-extractor",
  "list-operator",
  "agent",
]);

const isNote = (node: JsonObject): boolean =>
  node.type === "custom-note" || (isObj(node.data) && node.data.type === "");

/**
 * Workflow.features getter (api/models/workflow.py): the pre-0.1.3 `file_upload.image` block,
 * when enabled, is rewritten into the newer top-level file_upload keys. Dify serves the result
 * from /parameters, so we store it that way. Idempotent (the `image` key is removed).
 */
export function normaliseFeatures(v: unknown): JsonObject {
  const features: JsonObject = isObj(v) ? clone(v) : {};
  const fu = features.file_upload;
  if (isObj(fu) && isObj(fu.image) && pyTruthy(fu.image.enabled)) {
    const image = fu.image;
    const n = Number.parseInt(String(image.number_limits ?? 3), 10);
    fu.enabled = true;
    fu.number_limits = Number.isFinite(n) ? n : 3;
    fu.allowed_file_upload_methods = image.transfer_methods ?? ["remote_url", "local_file"];
    fu.allowed_file_types = fu.allowed_file_types ?? ["image"];
    fu.allowed_file_extensions = fu.allowed_file_extensions ?? [];
    delete fu.image;
  }
  return features;
}

function normaliseNodeData(data: JsonObject): void {
  switch (data.type) {
    case "llm":
      normaliseModelSelector(data.model);
      // LLM `structured_output_enabled` is the alias of `structured_output_switch_on` (§1.9).
      if ("structured_output_enabled" in data && !("structured_output_switch_on" in data)) {
        data.structured_output_switch_on = data.structured_output_enabled;
      }
      break;
    case "question-classifier":
      normaliseModelSelector(data.model);
      break;
    case "parameter-extractor":
      normaliseModelSelector(data.model);
      // Legacy parameter types bool/select → boolean/string (§1.9, §4.16).
      if (Array.isArray(data.parameters)) {
        for (const p of data.parameters) {
          if (!isObj(p)) continue;
          if (p.type === "bool") p.type = "boolean";
          else if (p.type === "select") p.type = "string";
        }
      }
      break;
    case "knowledge-retrieval": {
      if (isObj(data.single_retrieval_config)) normaliseModelSelector(data.single_retrieval_config.model);
      const mrc = data.multiple_retrieval_config;
      if (isObj(mrc)) {
        normaliseModelSelector(mrc.reranking_model);
        const vs = isObj(mrc.weights) ? mrc.weights.vector_setting : undefined;
        if (isObj(vs) && "embedding_provider_name" in vs) vs.embedding_provider_name = normaliseModelProvider(vs.embedding_provider_name);
      }
      normaliseModelSelector(data.metadata_model_config);
      break;
    }
    case "tool":
      if (hasPluginToolId(data.provider_type)) data.provider_id = normaliseToolProvider(data.provider_id);
      break;
    case "agent": {
      const params = data.agent_parameters;
      if (isObj(params) && isObj(params.model)) normaliseModelSelector(params.model.value);
      break;
    }
    case "end":
      // End output `value_type: Array[String]` → lower case (§1.9).
      if (Array.isArray(data.outputs)) {
        for (const o of data.outputs) {
          if (isObj(o) && typeof o.value_type === "string") o.value_type = o.value_type.toLowerCase();
        }
      }
      break;
    case "http-request": {
      // HTTP `body.data` as a plain string → one text item; falsy → [] (graphon HttpRequestNodeBody).
      const body = data.body;
      if (isObj(body) && "data" in body) {
        if (!pyTruthy(body.data)) body.data = [];
        else if (typeof body.data === "string") body.data = [{ key: "", type: "text", value: body.data }];
      }
      break;
    }
    default:
      break;
  }
}

function normaliseGraph(raw: unknown, mode: AppMode, warnings: string[]): WorkflowGraph {
  if (raw !== undefined && raw !== null && !isObj(raw)) throw new DslError("Invalid workflow graph: must be a mapping");
  const graph: JsonObject = isObj(raw) ? clone(raw) : {};
  const nodesRaw = graph.nodes ?? [];
  const edgesRaw = graph.edges ?? [];
  if (!Array.isArray(nodesRaw)) throw new DslError("Invalid workflow graph: nodes must be a list");
  if (!Array.isArray(edgesRaw)) throw new DslError("Invalid workflow graph: edges must be a list");

  const nodes: JsonObject[] = [];
  const dropped = new Set<string>();
  const ids = new Set<string>();
  nodesRaw.forEach((node: unknown, i: number) => {
    if (!isObj(node)) throw new DslError(`Invalid workflow graph: node #${i + 1} is not a mapping`);
    if (typeof node.id === "number") node.id = String(node.id);
    if (typeof node.id !== "string" || node.id === "") throw new DslError(`Invalid workflow graph: node #${i + 1} has no id`);
    // Sticky notes are UI only and are dropped before validation (§1.9, §4.21).
    if (isNote(node)) {
      dropped.add(node.id);
      return;
    }
    if (!isObj(node.data)) throw new DslError(`Invalid workflow graph: node ${node.id} has no data`);
    if (typeof node.data.type !== "string") throw new DslError(`Invalid workflow graph: node ${node.id} has no data.type`);
    if (ids.has(node.id)) throw new DslError(`Invalid workflow graph: duplicate node id ${node.id}`);
    ids.add(node.id);
    for (const k of ["iteration_id", "loop_id"] as const) if (typeof node.data[k] === "number") node.data[k] = String(node.data[k]);
    if (typeof node.parentId === "number") node.parentId = String(node.parentId);
    if (!KNOWN_NODE_TYPES.has(node.data.type)) {
      warnings.push(`Node ${node.id} has unsupported type "${node.data.type}"`);
    }
    normaliseNodeData(node.data);
    nodes.push(node);
  });

  const edges: JsonObject[] = [];
  edgesRaw.forEach((edge: unknown, i: number) => {
    if (!isObj(edge)) throw new DslError(`Invalid workflow graph: edge #${i + 1} is not a mapping`);
    for (const k of ["source", "target"] as const) if (typeof edge[k] === "number") edge[k] = String(edge[k]);
    if (typeof edge.source !== "string" || typeof edge.target !== "string") {
      throw new DslError(`Invalid workflow graph: edge #${i + 1} needs a source and a target`);
    }
    if (dropped.has(edge.source) || dropped.has(edge.target)) return;
    edges.push(edge);
  });

  const starts = nodes.filter((n) => isObj(n.data) && n.data.type === "start" && !n.parentId);
  if (starts.length === 0) warnings.push(`The ${mode} graph has no start node`);
  else if (starts.length > 1) warnings.push(`The ${mode} graph has ${starts.length} start nodes; the first one is used`);
  for (const start of starts.slice(0, 1)) {
    const vars = (start.data as JsonObject).variables;
    if (vars !== undefined && !Array.isArray(vars)) {
      throw new DslError("Invalid start node: variables must be a list");
    }
    (vars ?? []).forEach((v: unknown, i: number) => {
      if (!isObj(v) || typeof v.variable !== "string" || typeof v.type !== "string") {
        warnings.push(`Start variable #${i + 1} has no variable name or type and will be ignored`);
      }
    });
  }

  return { ...graph, nodes, edges };
}

// Variable declarations (api/factories/variable_factory.py, spec §1.5).
const MAX_VARIABLE_SIZE = 200 * 1024;
const VALUE_TYPE_CHECKS: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === "string",
  secret: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  object: (v) => isObj(v),
  "array[string]": (v) => Array.isArray(v) && v.every((x) => typeof x === "string"),
  "array[number]": (v) => Array.isArray(v) && v.every((x) => typeof x === "number"),
  "array[object]": (v) => Array.isArray(v) && v.every((x) => isObj(x)),
  "array[boolean]": (v) => Array.isArray(v) && v.every((x) => typeof x === "boolean"),
};

/** Stable uuid-shaped id for a declaration without one (Dify would mint a random uuid4). */
function stableVariableId(namespace: string, name: string): string {
  const h = createHash("sha256").update(`servify:${namespace}:${name}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function normaliseVariables(raw: unknown, namespace: "env" | "conversation"): JsonObject[] {
  const label = namespace === "env" ? "environment variable" : "conversation variable";
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new DslError(`Invalid ${label}s: must be a list`);
  return raw.map((v: unknown, i: number) => {
    if (!isObj(v)) throw new DslError(`Invalid ${label} #${i + 1}: must be a mapping`);
    const name = v.name;
    if (!pyTruthy(name) || typeof name !== "string") throw new DslError(`Invalid ${label} #${i + 1}: missing name`);
    const fail = (why: string) => new DslError(`Invalid ${label} ${name}: ${why}`);
    const valueType = v.value_type;
    if (valueType === undefined || valueType === null) throw fail("missing value type");
    if (v.value === undefined || v.value === null) throw fail("missing value");
    const check = typeof valueType === "string" ? VALUE_TYPE_CHECKS[valueType] : undefined;
    if (!check) throw fail(`not supported value type ${String(valueType)}`);
    if (!check(v.value)) throw fail(`value does not match value_type ${valueType}`);
    if (Buffer.byteLength(JSON.stringify(v.value), "utf8") > MAX_VARIABLE_SIZE) {
      throw fail(`variable size exceeds limit ${MAX_VARIABLE_SIZE}`);
    }
    const selector = Array.isArray(v.selector) && v.selector.length >= 2 ? v.selector : [namespace, name];
    return {
      ...v,
      id: typeof v.id === "string" && v.id ? v.id : stableVariableId(namespace, name),
      name,
      description: typeof v.description === "string" ? v.description : "",
      value_type: valueType,
      value: v.value,
      selector,
    };
  });
}

function normaliseWorkflow(raw: JsonObject, mode: AppMode, warnings: string[]): ParsedWorkflow {
  return {
    graph: normaliseGraph(raw.graph, mode, warnings),
    features: normaliseFeatures(raw.features),
    environment_variables: normaliseVariables(raw.environment_variables, "env"),
    conversation_variables: normaliseVariables(raw.conversation_variables, "conversation"),
  };
}

function datasetIdsFromGraph(graph: WorkflowGraph): string[] {
  const ids: string[] = [];
  for (const node of graph.nodes) {
    const data = node.data;
    if (isObj(data) && data.type === "knowledge-retrieval" && Array.isArray(data.dataset_ids)) {
      for (const id of data.dataset_ids) if (typeof id === "string" && id) ids.push(id);
    }
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// parseDsl

function normaliseApp(app: JsonObject): DslAppInfo {
  // Defaults of app_dsl_service._create_or_update_app (spec §1.1 rule 6).
  const str = (v: unknown): string | undefined =>
    typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
  const iconType = app.icon_type;
  return {
    name: str(app.name) ?? "",
    description: str(app.description) ?? "",
    icon_type: iconType === "image" || iconType === "link" || iconType === "emoji" ? iconType : "emoji",
    icon: str(app.icon) ?? "",
    icon_background: str(app.icon_background) ?? "#FFFFFF",
    use_icon_as_answer_icon: app.use_icon_as_answer_icon === true,
  };
}

/**
 * Parse and validate a Dify app DSL (YAML or JSON). Throws DslError with a precise message when
 * Dify would refuse the file (spec §1.1); returns the normalised runtime config otherwise.
 */
export function parseDsl(text: string): ParsedDsl {
  if (typeof text !== "string") throw new DslError("DSL content must be a string");
  if (Buffer.byteLength(text, "utf8") > DSL_MAX_SIZE) throw new DslError("File size exceeds the limit of 10MB");
  const data = readYaml(text);
  if (!isObj(data)) throw new DslError("Invalid YAML: content must be a mapping");

  const warnings: string[] = [];
  const document = clone(data);

  // Rule 2: missing (falsy) version → 0.1.0; anything else must be a string (`0.2` is a float).
  if (!pyTruthy(document.version)) document.version = "0.1.0";
  if (typeof document.version !== "string") {
    throw new DslError(`Invalid version type, expected str, got <class '${pyTypeName(document.version)}'>`);
  }
  const version = document.version;
  checkVersion(version, warnings);
  // Rule 3: kind is forced to app.
  document.kind = "app";

  // Rule 4: the app block and its mode.
  const appRaw = document.app;
  if (!pyTruthy(appRaw)) throw new DslError("Missing app data in YAML content");
  if (!isObj(appRaw)) throw new DslError("Invalid app data: must be a mapping");
  const mode = appRaw.mode;
  if (mode === undefined || mode === null || mode === "") throw new DslError("Missing app mode");
  if (mode === "agent" || mode === "channel") {
    throw new DslError(`Unsupported app mode: ${mode} (only completion, chat, agent-chat, advanced-chat and workflow apps are supported)`);
  }
  if (!isAppMode(mode)) throw new DslError(`Invalid app mode: ${String(mode)}`);
  const app = normaliseApp(appRaw);

  // Rule 5: the configuration block of the mode is required; the other one is ignored.
  let modelConfig: JsonObject | null = null;
  let workflow: ParsedWorkflow | null = null;
  let datasetIds: string[];
  if (isGraphMode(mode)) {
    const wf = document.workflow;
    if (!isObj(wf) || !pyTruthy(wf)) throw new DslError(`Missing workflow data for ${mode} mode`);
    workflow = normaliseWorkflow(wf, mode, warnings);
    datasetIds = datasetIdsFromGraph(workflow.graph);
  } else {
    const mc = document.model_config;
    if (!isObj(mc) || !pyTruthy(mc)) throw new DslError(`Missing model_config for ${mode} mode`);
    modelConfig = normaliseModelConfig(mc, warnings);
    // Dify's import does not read `annotation_reply` from the file: it is a per-app setting
    // (AppAnnotationSetting) that starts disabled; the annotation-reply API turns it on.
    modelConfig.annotation_reply = { enabled: false };
    datasetIds = datasetIdsFromModelConfig(modelConfig);
  }

  let dependencies: unknown[] = [];
  if (Array.isArray(document.dependencies)) dependencies = clone(document.dependencies);
  else if (document.dependencies !== undefined && document.dependencies !== null) {
    warnings.push("dependencies is not a list and was ignored");
  }

  return {
    version,
    mode,
    app,
    modelConfig,
    workflow,
    dependencies,
    document,
    warnings,
    datasetIds: [...new Set(datasetIds)],
  };
}

// ---------------------------------------------------------------------------------------------
// exportDsl

export interface ExportAppFields {
  name: string;
  mode: AppMode | string;
  icon: string | null;
  icon_type: string | null;
  icon_background: string | null;
  description: string | null;
  use_icon_as_answer_icon: boolean;
}

export interface ExportDslInput {
  /** The stored document (ParsedDsl.document). */
  document: JsonObject;
  /** Current app fields; they replace the document's `app` values (unknown app keys are kept). */
  app: ExportAppFields;
  /** Replacement config blocks, when the stored config changed after import. */
  modelConfig?: JsonObject | null;
  workflow?: JsonObject | null;
  /** Keep secret environment variable values and credential ids (Dify's "include secret"). Default false. */
  includeSecret?: boolean;
  /** Version written to the file. Default CURRENT_DSL_VERSION (Dify always writes its own). */
  version?: string;
}

const FILE_VARIABLE_TYPES = new Set(["file", "file-list"]);
const LOCAL_FILE_ID_KEYS = ["upload_file_id", "uploadedId"];

/** File-typed start variables lose defaults that point at workspace-local uploads (§1.7). */
function sanitizeFileDefault(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(sanitizeFileDefault).filter((x) => x !== undefined);
    return items.length ? items : undefined;
  }
  if (!isObj(value)) return value;
  const method = value.transfer_method ?? value.transferMethod;
  if (method === "local_file" || LOCAL_FILE_ID_KEYS.some((k) => k in value)) return undefined;
  return value;
}

function prepareWorkflowForExport(wf: JsonObject, includeSecret: boolean): void {
  const graph = wf.graph;
  const nodes = isObj(graph) && Array.isArray(graph.nodes) ? graph.nodes : [];
  for (const node of nodes) {
    const data = isObj(node) ? node.data : undefined;
    if (!isObj(data)) continue;
    if (Array.isArray(data.variables)) {
      for (const v of data.variables) {
        if (!isObj(v) || !FILE_VARIABLE_TYPES.has(v.type as string) || !("default" in v)) continue;
        const d = sanitizeFileDefault(v.default);
        if (d === undefined) delete v.default;
        else v.default = d;
      }
    }
    if (includeSecret) continue;
    // credential_id is workspace-local: removed from tool nodes and agent-node tools (§1.7).
    if (data.type === "tool") delete data.credential_id;
    if (data.type === "agent") {
      const tools = isObj(data.agent_parameters) && isObj(data.agent_parameters.tools) ? data.agent_parameters.tools.value : undefined;
      if (Array.isArray(tools)) for (const t of tools) if (isObj(t)) delete t.credential_id;
    }
  }
  if (!includeSecret && Array.isArray(wf.environment_variables)) {
    for (const v of wf.environment_variables) if (isObj(v) && v.value_type === "secret") v.value = "";
  }
}

/**
 * Write a DSL document the way Dify's exporter does (PyYAML `dump`: keys sorted, block style,
 * `app`/`dependencies`/`kind`/`model_config` or `workflow`/`version`), keeping every unknown key
 * of the stored document. Importing the result gives back an equivalent app.
 */
export function exportDsl(input: ExportDslInput): string {
  const doc: JsonObject = clone(input.document);
  const mode = input.app.mode;
  const includeSecret = input.includeSecret === true;

  const appBlock: JsonObject = isObj(doc.app) ? doc.app : {};
  doc.app = {
    ...appBlock,
    name: input.app.name,
    mode,
    icon: input.app.icon ?? "",
    icon_type: input.app.icon_type ?? "emoji",
    icon_background: input.app.icon_background ?? "#FFFFFF",
    description: input.app.description ?? "",
    use_icon_as_answer_icon: input.app.use_icon_as_answer_icon,
  };
  doc.kind = "app";
  doc.version = input.version ?? CURRENT_DSL_VERSION;
  if (!Array.isArray(doc.dependencies)) doc.dependencies = [];

  if (isGraphMode(mode)) {
    delete doc.model_config;
    const wf = input.workflow ? clone(input.workflow) : isObj(doc.workflow) ? doc.workflow : {};
    // Workflow.to_dict always writes these keys; older files may lack them.
    if (!isObj(wf.graph)) wf.graph = { edges: [], nodes: [] };
    if (!isObj(wf.features)) wf.features = {};
    if (!Array.isArray(wf.environment_variables)) wf.environment_variables = [];
    if (!Array.isArray(wf.conversation_variables)) wf.conversation_variables = [];
    if (!Array.isArray(wf.rag_pipeline_variables)) wf.rag_pipeline_variables = [];
    prepareWorkflowForExport(wf, includeSecret);
    doc.workflow = wf;
  } else {
    delete doc.workflow;
    const mc = input.modelConfig ? clone(input.modelConfig) : isObj(doc.model_config) ? doc.model_config : {};
    // Dify always strips credential_id from agent_mode.tools in model_config exports.
    const am = mc.agent_mode;
    if (isObj(am) && Array.isArray(am.tools)) for (const t of am.tools) if (isObj(t)) delete t.credential_id;
    doc.model_config = mc;
  }

  // Stringify with the YAML 1.1 schema so that strings PyYAML would read as something else
  // ('yes', 'on', '0755', '2024-01-01', …) are quoted, and sort keys like PyYAML.
  const out = new Document(doc, {
    version: "1.1",
    customTags: pyyamlTags(true),
    sortMapEntries: true,
    aliasDuplicateObjects: false,
  });
  const v = out.get("version", true);
  if (v instanceof Scalar) v.type = Scalar.QUOTE_SINGLE;
  return out.toString({ indentSeq: false, lineWidth: 0 });
}

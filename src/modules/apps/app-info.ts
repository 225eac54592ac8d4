// Builders for the app information endpoints (apps spec §12: GET /info, /parameters, /meta,
// /site) and the request `inputs` validation shared by every generation call (apps spec §5.5,
// dsl spec §2.2). Pure: the HTTP layer loads the rows and maps InputValidationError to
// 400 invalid_param.
//
// Dify sources mirrored: `get_parameters_from_feature_dict` + the `Parameters`/`Site` response
// models (api/controllers/common/fields.py), `Workflow.user_input_form(to_old_structure=True)`,
// `AppService.get_app_meta`, `BaseAppGenerator._prepare_user_inputs` / `_validate_inputs`.

import { isGraphMode, isObj, normaliseFeatures, normaliseModelConfig, type JsonObject } from "./dsl.js";

// ---------------------------------------------------------------------------------------------
// GET /info (apps spec §12.1)

export interface InfoAppFields {
  name: string;
  description: string | null;
  mode: string;
  author_name?: string | null;
}

export interface AppInfoResponse {
  name: string;
  description: string | null;
  tags: string[];
  mode: string;
  author_name: string | null;
}

export function buildInfo(app: InfoAppFields, tags: string[]): AppInfoResponse {
  return {
    name: app.name,
    description: app.description,
    tags: [...tags],
    mode: app.mode,
    author_name: app.author_name ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// GET /parameters (apps spec §12.2)

export interface UploadLimits {
  /** MB */ image: number;
  /** MB */ video: number;
  /** MB */ audio: number;
  /** MB */ file: number;
  /** files per workflow run */ workflowFileUploadLimit: number;
}

/** Dify's defaults (UPLOAD_*_FILE_SIZE_LIMIT, WORKFLOW_FILE_UPLOAD_LIMIT). */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { image: 10, video: 100, audio: 50, file: 15, workflowFileUploadLimit: 10 };

export type OldStructureFormItem = Record<string, JsonObject>;

export interface AppParameters {
  opening_statement: string | null;
  suggested_questions: string[];
  suggested_questions_after_answer: JsonObject;
  speech_to_text: JsonObject;
  text_to_speech: JsonObject;
  retriever_resource: JsonObject;
  annotation_reply: JsonObject;
  more_like_this: JsonObject;
  user_input_form: OldStructureFormItem[];
  sensitive_word_avoidance: JsonObject;
  file_upload: JsonObject;
  system_parameters: {
    image_file_size_limit: number;
    video_file_size_limit: number;
    audio_file_size_limit: number;
    file_size_limit: number;
    workflow_file_upload_limit: number;
  };
}

/** Graph-app config: the stored workflow (ParsedDsl.workflow); only `graph` and `features` are read. */
export interface GraphConfig {
  graph?: unknown;
  features?: unknown;
}

/** What the app service returns for an app: its mode plus the active config block. */
export interface StoredAppConfig {
  mode: string;
  modelConfig?: JsonObject | null;
  workflow?: GraphConfig | null;
}

export interface ParametersOptions {
  /**
   * The app's annotation-reply setting (Dify reads it from AppAnnotationSetting, not from the
   * model config): `{enabled: true, id, score_threshold, embedding_model}` or `{enabled: false}`.
   * Only used for basic modes (graph apps take it from the workflow features, as Dify does).
   */
  annotationReply?: JsonObject;
}

/**
 * The start node's `variables` in Dify's "old structure": each variable becomes
 * `{<variable.type>: <variable>}` with the variable object passed through verbatim
 * (Workflow.user_input_form(to_old_structure=True)). The first node whose data.type is `start`
 * is used; variables without a string `type` are skipped (Dify would fail with a KeyError).
 */
export function userInputFormFromGraph(graph: unknown): OldStructureFormItem[] {
  const nodes = isObj(graph) && Array.isArray(graph.nodes) ? graph.nodes : [];
  const start = nodes.find((n: unknown) => isObj(n) && isObj(n.data) && n.data.type === "start") as JsonObject | undefined;
  const vars = start && isObj(start.data) && Array.isArray(start.data.variables) ? start.data.variables : [];
  const form: OldStructureFormItem[] = [];
  for (const v of vars) {
    if (isObj(v) && typeof v.type === "string") form.push({ [v.type]: v });
  }
  return form;
}

// `features_dict.get(key, default)`: a present key is passed through verbatim. Dify then
// validates the result with pydantic (`Parameters`), which would 500 on e.g. a null object; we
// substitute the default instead (the only deviation).
function feature(features: JsonObject, key: string, def: () => JsonObject): JsonObject {
  const v = features[key];
  return isObj(v) ? v : def();
}

function parametersFromFeatures(features: JsonObject, userInputForm: OldStructureFormItem[], limits: UploadLimits): AppParameters {
  const opening = features.opening_statement;
  const questions = features.suggested_questions;
  return {
    opening_statement: typeof opening === "string" ? opening : null,
    suggested_questions: Array.isArray(questions) ? questions.filter((q): q is string => typeof q === "string") : [],
    suggested_questions_after_answer: feature(features, "suggested_questions_after_answer", () => ({ enabled: false })),
    speech_to_text: feature(features, "speech_to_text", () => ({ enabled: false })),
    text_to_speech: feature(features, "text_to_speech", () => ({ enabled: false })),
    retriever_resource: feature(features, "retriever_resource", () => ({ enabled: false })),
    annotation_reply: feature(features, "annotation_reply", () => ({ enabled: false })),
    more_like_this: feature(features, "more_like_this", () => ({ enabled: false })),
    user_input_form: userInputForm,
    sensitive_word_avoidance: feature(features, "sensitive_word_avoidance", () => ({ enabled: false, type: "", configs: [] })),
    file_upload: feature(features, "file_upload", () => ({
      image: { enabled: false, number_limits: 3, detail: "high", transfer_methods: ["remote_url", "local_file"] },
    })),
    system_parameters: {
      image_file_size_limit: limits.image,
      video_file_size_limit: limits.video,
      audio_file_size_limit: limits.audio,
      file_size_limit: limits.file,
      workflow_file_upload_limit: limits.workflowFileUploadLimit,
    },
  };
}

/**
 * GET /parameters body, keys in Dify's order (apps spec §12.2).
 * - workflow / advanced-chat: `config` is the stored workflow ({graph, features}); the features
 *   are read through Dify's legacy `file_upload.image` conversion, the form comes from the start
 *   node (old structure).
 * - completion / chat / agent-chat: `config` is the model config, read as AppModelConfig.to_dict
 *   would return it (so e.g. an unset retriever_resource is `{enabled: true}`, Dify's quirk); the
 *   form is `user_input_form` verbatim.
 * Also callable as `buildParameters({mode, modelConfig, workflow}, limits)`.
 */
export function buildParameters(mode: string, config: JsonObject | GraphConfig, limits?: UploadLimits, opts?: ParametersOptions): AppParameters;
export function buildParameters(stored: StoredAppConfig, limits?: UploadLimits, opts?: ParametersOptions): AppParameters;
export function buildParameters(
  a: string | StoredAppConfig,
  b?: JsonObject | GraphConfig | UploadLimits,
  c?: UploadLimits | ParametersOptions,
  d?: ParametersOptions,
): AppParameters {
  let mode: string;
  let config: JsonObject;
  let limits: UploadLimits;
  let opts: ParametersOptions;
  if (typeof a === "string") {
    mode = a;
    config = (b ?? {}) as JsonObject;
    limits = (c as UploadLimits | undefined) ?? DEFAULT_UPLOAD_LIMITS;
    opts = d ?? {};
  } else {
    mode = a.mode;
    config = ((isGraphMode(mode) ? a.workflow : a.modelConfig) ?? {}) as JsonObject;
    limits = (b as UploadLimits | undefined) ?? DEFAULT_UPLOAD_LIMITS;
    opts = (c as ParametersOptions | undefined) ?? {};
  }

  if (isGraphMode(mode)) {
    return parametersFromFeatures(normaliseFeatures(config.features), userInputFormFromGraph(config.graph), limits);
  }
  const mc = normaliseModelConfig(config);
  if (opts.annotationReply) mc.annotation_reply = opts.annotationReply;
  const form = (mc.user_input_form as unknown[]).filter(isObj) as OldStructureFormItem[];
  return parametersFromFeatures(mc, form, limits);
}

// ---------------------------------------------------------------------------------------------
// GET /meta (apps spec §12.3, AppService.get_app_meta)

/** Dify's fallback icon for API-based tools whose provider cannot be loaded. */
export const DEFAULT_API_TOOL_ICON = { background: "#252525", content: "\u{1F601}" } as const;

export interface MetaOptions {
  /**
   * Dify prefixes builtin tool icons with CONSOLE_API_URL (empty by default, giving a relative
   * `/console/api/...` path). Servify has no console; callers may point this at a host that does.
   */
  consoleApiUrl?: string;
  /** Icon of an API-based tool provider (its stored icon JSON); undefined → DEFAULT_API_TOOL_ICON. */
  resolveApiToolIcon?: (providerId: string) => unknown;
}

export interface AppMetaResponse {
  tool_icons: Record<string, unknown>;
}

/**
 * `{"tool_icons": {<tool_name>: <icon>}}` for the tools of agent_mode (basic modes) or of every
 * `tool` node (graph modes, containers included). As in Dify, only entries with ≥4 keys count;
 * `builtin` (which includes plugin tools in the DSL) → `<consoleApiUrl>/console/api/workspaces/
 * current/tool-provider/builtin/<provider_id>/icon`; `api` → the provider's icon, or Dify's
 * default 😁 on #252525 when it cannot be resolved (always, unless `resolveApiToolIcon` is given).
 * Other provider types (workflow, mcp, …) get no entry — Dify emits none either, and clients
 * fall back to their generic tool icon.
 * Also callable as `buildMeta({mode, modelConfig, workflow}, opts)`.
 */
export function buildMeta(mode: string, config: JsonObject | GraphConfig | null | undefined, opts?: MetaOptions): AppMetaResponse;
export function buildMeta(stored: StoredAppConfig, opts?: MetaOptions): AppMetaResponse;
export function buildMeta(
  a: string | StoredAppConfig,
  b?: JsonObject | GraphConfig | MetaOptions | null,
  c?: MetaOptions,
): AppMetaResponse {
  let mode: string;
  let config: JsonObject | null | undefined;
  let opts: MetaOptions;
  if (typeof a === "string") {
    mode = a;
    config = b as JsonObject | null | undefined;
    opts = c ?? {};
  } else {
    mode = a.mode;
    config = (isGraphMode(mode) ? a.workflow : a.modelConfig) as JsonObject | null | undefined;
    opts = (b as MetaOptions | undefined) ?? {};
  }

  const meta: AppMetaResponse = { tool_icons: {} };
  if (!config) return meta;
  let tools: unknown[] = [];
  if (isGraphMode(mode)) {
    const nodes = isObj(config.graph) && Array.isArray(config.graph.nodes) ? config.graph.nodes : [];
    for (const node of nodes) {
      const data = isObj(node) ? node.data : undefined;
      if (isObj(data) && data.type === "tool") {
        tools.push({ provider_type: data.provider_type, provider_id: data.provider_id, tool_name: data.tool_name, tool_parameters: {} });
      }
    }
  } else {
    const am = config.agent_mode;
    tools = isObj(am) && Array.isArray(am.tools) ? am.tools : [];
  }

  const prefix = `${opts.consoleApiUrl ?? ""}/console/api/workspaces/current/tool-provider/builtin/`;
  for (const tool of tools) {
    if (!isObj(tool) || Object.keys(tool).length < 4) continue;
    const toolName = typeof tool.tool_name === "string" ? tool.tool_name : "";
    const providerId = typeof tool.provider_id === "string" ? tool.provider_id : "";
    if (tool.provider_type === "builtin") {
      meta.tool_icons[toolName] = `${prefix}${providerId}/icon`;
    } else if (tool.provider_type === "api") {
      const icon = opts.resolveApiToolIcon?.(providerId);
      meta.tool_icons[toolName] = icon ?? { ...DEFAULT_API_TOOL_ICON };
    }
  }
  return meta;
}

// ---------------------------------------------------------------------------------------------
// GET /site (apps spec §12.4)

export interface SiteSettings {
  title?: string | null;
  chat_color_theme?: string | null;
  chat_color_theme_inverted?: boolean | null;
  icon_type?: string | null;
  icon?: string | null;
  icon_background?: string | null;
  description?: string | null;
  copyright?: string | null;
  privacy_policy?: string | null;
  custom_disclaimer?: string | null;
  default_language?: string | null;
  show_workflow_steps?: boolean | null;
  use_icon_as_answer_icon?: boolean | null;
}

export interface SiteAppFields {
  name: string;
  icon_type?: string | null;
  icon?: string | null;
  icon_background?: string | null;
  use_icon_as_answer_icon?: boolean | null;
  /** App.site JSON column: values set by the operator; absent keys take Dify's defaults. */
  site?: unknown;
}

export interface SiteResponse {
  title: string;
  chat_color_theme: string | null;
  chat_color_theme_inverted: boolean;
  icon_type: string | null;
  icon: string | null;
  icon_background: string | null;
  description: string | null;
  copyright: string | null;
  privacy_policy: string | null;
  custom_disclaimer: string | null;
  default_language: string;
  show_workflow_steps: boolean;
  use_icon_as_answer_icon: boolean;
  icon_url: string | null;
}

export interface SiteOptions {
  /** Signed URL of an uploaded icon (icon_type "image"); without it icon_url is null. */
  signIconUrl?: (icon: string) => string | null;
}

/**
 * GET /site body, keys in Dify's order with `icon_url` last. Defaults are those of the Site row
 * Dify creates with the app (create_site_record_when_app_created + model defaults): title = app
 * name, icon fields copied from the app, description/copyright/privacy_policy/chat_color_theme
 * null, custom_disclaimer "", default_language "en-US" (the creating account's language),
 * chat_color_theme_inverted false, show_workflow_steps true. `use_icon_as_answer_icon` falls back
 * to the app's flag (Dify's site row starts false; the app flag is what the DSL carries).
 */
export function buildSite(app: SiteAppFields, opts: SiteOptions = {}): SiteResponse {
  const s: SiteSettings = isObj(app.site) ? (app.site as SiteSettings) : {};
  const str = (v: unknown, def: string | null): string | null => (typeof v === "string" ? v : def);
  const bool = (v: unknown, def: boolean): boolean => (typeof v === "boolean" ? v : def);
  const iconType = str(s.icon_type, app.icon_type ?? null);
  const icon = str(s.icon, app.icon ?? null);
  return {
    title: str(s.title, app.name) ?? app.name,
    chat_color_theme: str(s.chat_color_theme, null),
    chat_color_theme_inverted: bool(s.chat_color_theme_inverted, false),
    icon_type: iconType,
    icon,
    icon_background: str(s.icon_background, app.icon_background ?? null),
    description: str(s.description, null),
    copyright: str(s.copyright, null),
    privacy_policy: str(s.privacy_policy, null),
    custom_disclaimer: str(s.custom_disclaimer, ""),
    default_language: str(s.default_language, "en-US") ?? "en-US",
    show_workflow_steps: bool(s.show_workflow_steps, true),
    use_icon_as_answer_icon: bool(s.use_icon_as_answer_icon, app.use_icon_as_answer_icon === true),
    icon_url: iconType === "image" && icon ? (opts.signIconUrl?.(icon) ?? null) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// inputs validation (apps spec §5.5, dsl spec §2.2)

/** Dify's ValueError texts; the HTTP layer maps this to 400 invalid_param with `message`. */
export class InputValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputValidationError";
  }
}

export interface InputVariable {
  variable: string;
  type: string;
  label: string;
  required: boolean;
  max_length: number | null;
  options: unknown[];
  default: unknown;
  allowed_file_types?: unknown;
  allowed_file_extensions?: unknown;
  allowed_file_upload_methods?: unknown;
  json_schema?: unknown;
  [key: string]: unknown;
}

const VALIDATED_TYPES = new Set(["text-input", "paragraph", "select", "number", "checkbox", "json_object", "file", "file-list"]);

/**
 * Declared input variables from a form in either shape: Dify's old structure
 * (`[{"text-input": {...}}]`, as served by /parameters and stored in model_config) or start-node
 * variables (`[{variable, type, ...}]`). `external_data_tool` entries are filled by their tool,
 * not by the caller, so they are not input variables (BasicVariablesConfigManager).
 */
export function formVariables(form: unknown): InputVariable[] {
  if (!Array.isArray(form)) return [];
  const out: InputVariable[] = [];
  for (const entry of form) {
    if (!isObj(entry)) continue;
    let type: unknown;
    let body: JsonObject;
    const keys = Object.keys(entry);
    if (keys.length === 1 && isObj(entry[keys[0]!])) {
      type = keys[0];
      body = entry[keys[0]!] as JsonObject;
    } else {
      type = entry.type;
      body = entry;
    }
    if (typeof type !== "string" || typeof body.variable !== "string" || !body.variable) continue;
    if (type === "external_data_tool") continue;
    const maxLength = typeof body.max_length === "number" ? body.max_length : null;
    out.push({
      ...body,
      variable: body.variable,
      type,
      label: typeof body.label === "string" ? body.label : body.variable,
      // pydantic's lax bool: true / "true" / 1 count as true.
      required: body.required === true || body.required === "true" || body.required === 1,
      max_length: maxLength,
      options: Array.isArray(body.options) ? body.options : [],
      default: body.default ?? null,
    });
  }
  return out;
}

/** Python `repr` of the values that appear in Dify's messages (lists of strings, mostly). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") {
    const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
    let s = "";
    for (const ch of v) {
      const cp = ch.codePointAt(0)!;
      if (ch === "\\") s += "\\\\";
      else if (ch === quote) s += `\\${quote}`;
      else if (ch === "\n") s += "\\n";
      else if (ch === "\r") s += "\\r";
      else if (ch === "\t") s += "\\t";
      else if (cp < 0x20 || cp === 0x7f) s += `\\x${cp.toString(16).padStart(2, "0")}`;
      else s += ch;
    }
    return `${quote}${s}${quote}`;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (isObj(v)) return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
  return String(v);
}

const pyLen = (s: string): number => [...s].length; // code points, like Python's len(str)

// int()/float() of a string (Python accepts surrounding whitespace, a sign and `_` between digits).
const PY_INT = /^[+-]?\d+(?:_\d+)*$/;
const PY_FLOAT = /^[+-]?(?:(?:\d+(?:_\d+)*)?\.\d+(?:_\d+)*|\d+(?:_\d+)*\.?)(?:[eE][+-]?\d+(?:_\d+)*)?$/;

function validateOne(v: InputVariable, input: unknown): unknown {
  let value = input;
  if (value === undefined || value === null) {
    if (v.required) throw new InputValidationError(`${v.variable} is required in input form`);
    // Use the default and validate it like a supplied value.
    value = v.default;
    if (value === undefined || value === null) return null;
  }
  // Optional file inputs: "" (the web form's placeholder) counts as unset.
  if ((v.type === "file" || v.type === "file-list") && !v.required && value === "") return null;

  if ((v.type === "text-input" || v.type === "select" || v.type === "paragraph") && typeof value !== "string") {
    throw new InputValidationError(`(type '${v.type}') ${v.variable} in input form must be a string`);
  }

  if (v.type === "number") {
    if (typeof value === "number" || typeof value === "boolean") return value; // Python: bool is an int
    if (typeof value === "string") {
      const t = value.trim();
      if (!t) return null;
      const ok = t.includes(".") ? PY_FLOAT.test(t) : PY_INT.test(t);
      const n = ok ? Number(t.replace(/_/g, "")) : Number.NaN;
      if (!ok || Number.isNaN(n)) throw new InputValidationError(`${v.variable} in input form must be a valid number`);
      return n;
    }
    // Dify raises a TypeError here (a 500); the spec asks for the number message instead.
    throw new InputValidationError(`${v.variable} in input form must be a valid number`);
  }

  switch (v.type) {
    case "select":
      if (!v.options.includes(value)) {
        throw new InputValidationError(`${v.variable} in input form must be one of the following: ${pyRepr(v.options)}`);
      }
      break;
    case "text-input":
    case "paragraph":
      if (v.max_length && pyLen(value as string) > v.max_length) {
        throw new InputValidationError(`${v.variable} in input form must be less than ${v.max_length} characters`);
      }
      break;
    case "file":
      if (!isObj(value)) throw new InputValidationError(`${v.variable} in input form must be a file`);
      break;
    case "file-list":
      if (!Array.isArray(value) || !value.every(isObj)) {
        throw new InputValidationError(`${v.variable} in input form must be a list of files`);
      }
      if (v.max_length && value.length > v.max_length) {
        throw new InputValidationError(`${v.variable} in input form must be less than ${v.max_length} files`);
      }
      break;
    case "checkbox":
      if (typeof value === "string") {
        const s = value.trim().toLowerCase();
        if (["true", "1", "yes", "on"].includes(s)) value = true;
        else if (["false", "0", "no", "off"].includes(s)) value = false;
      } else if (typeof value === "number") {
        if (value === 1) value = true;
        else if (value === 0) value = false;
      }
      break;
    case "json_object":
      if (pyTruthyValue(value) && !isObj(value)) throw new InputValidationError(`${v.variable} in input form must be a dict`);
      break;
    default:
      // Unknown control types: Dify asserts; we pass the value through unvalidated.
      break;
  }
  return value;
}

function pyTruthyValue(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObj(v)) return Object.keys(v).length > 0;
  return true;
}

/** NUL characters are stripped from (top-level) string values (`_sanitize_value`). */
const sanitize = (v: unknown): unknown => (typeof v === "string" ? v.replace(/\u0000/g, "") : v);

/**
 * Validate and convert request `inputs` against the app's input form (apps spec §5.5): every
 * declared variable gets a key (null when absent and without default); undeclared keys are
 * dropped; the first failing variable (in form order) throws InputValidationError with Dify's
 * message. File mappings are returned as given — turning them into files (type/extension/method
 * checks, upload ownership) is the file service's job.
 */
export function validateInputs(form: unknown, inputs: unknown): Record<string, unknown> {
  const vars = formVariables(form);
  const given: JsonObject = isObj(inputs) ? inputs : {};
  const out: Record<string, unknown> = {};
  for (const v of vars) {
    const raw = Object.prototype.hasOwnProperty.call(given, v.variable) ? given[v.variable] : undefined;
    out[v.variable] = sanitize(VALIDATED_TYPES.has(v.type) || raw === undefined || raw === null ? validateOne(v, raw) : raw);
  }
  const byName = new Map(vars.map((v) => [v.variable, v]));
  // Objects are only allowed for file and json_object variables, lists of objects only for file-list.
  const badDict = Object.entries(out)
    .filter(([k, val]) => isObj(val) && !["file", "json_object"].includes(byName.get(k)!.type))
    .map(([k]) => k);
  if (badDict.length) throw new InputValidationError(`Invalid input type for ${pyRepr(badDict)}`);
  const badList = Object.entries(out)
    .filter(([k, val]) => Array.isArray(val) && val.some(isObj) && byName.get(k)!.type !== "file-list")
    .map(([k]) => k);
  if (badList.length) throw new InputValidationError(`Invalid input type for ${pyRepr(badList)}`);
  return out;
}

// Request models of the knowledge API, validated the way pydantic v2 (lax mode) does, because the
// endpoints decorated with Dify's `model_validate` answer 422 `unprocessable_entity` whose message
// is the JSON text of pydantic's error list `[{"type", "loc", "msg"}]` (datasets spec §1.2 rule 4):
// clients that show the message show pydantic's wording, so types and messages are pydantic's.
import { Errors, type DifyError } from "../../lib/errors.js";
import { pyJson } from "../../lib/pyjson.js";

export interface PyError {
  type: string;
  loc: Array<string | number>;
  msg: string;
}

export type Loc = Array<string | number>;

/** Collects errors while coercing values; each reader returns undefined after recording one. */
export class PyValidator {
  readonly errors: PyError[] = [];

  add(type: string, loc: Loc, msg: string): undefined {
    this.errors.push({ type, loc, msg });
    return undefined;
  }

  missing(loc: Loc): undefined {
    return this.add("missing", loc, "Field required");
  }

  str(v: unknown, loc: Loc, opts: { min?: number; max?: number } = {}): string | undefined {
    if (typeof v !== "string") return this.add("string_type", loc, "Input should be a valid string");
    const n = [...v].length;
    const plural = (k: number) => (k === 1 ? "character" : "characters");
    if (opts.min !== undefined && n < opts.min) return this.add("string_too_short", loc, `String should have at least ${opts.min} ${plural(opts.min)}`);
    if (opts.max !== undefined && n > opts.max) return this.add("string_too_long", loc, `String should have at most ${opts.max} ${plural(opts.max)}`);
    return v;
  }

  /** `Literal[...]` (type literal_error) or a str Enum (type enum): same message. */
  choice<T extends string>(v: unknown, loc: Loc, values: readonly T[], type: "literal_error" | "enum" = "literal_error"): T | undefined {
    if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
    const quoted = values.map((x) => `'${x}'`);
    const text = quoted.length > 1 ? `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}` : quoted[0];
    return this.add(type, loc, `Input should be ${text}`);
  }

  bool(v: unknown, loc: Loc): boolean | undefined {
    if (typeof v === "boolean") return v;
    if (v === 0 || v === 1) return v === 1;
    if (typeof v === "string") {
      const s = v.toLowerCase();
      if (["1", "on", "t", "true", "y", "yes"].includes(s)) return true;
      if (["0", "off", "f", "false", "n", "no"].includes(s)) return false;
      return this.add("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input");
    }
    return this.add("bool_type", loc, "Input should be a valid boolean");
  }

  int(v: unknown, loc: Loc): number | undefined {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) return this.add("finite_number", loc, "Input should be a finite number");
      if (!Number.isInteger(v)) return this.add("int_from_float", loc, "Input should be a valid integer, got a number with a fractional part");
      return v;
    }
    if (typeof v === "string") {
      const s = v.trim();
      if (/^[+-]?\d+$/.test(s)) return Number(s);
      return this.add("int_parsing", loc, "Input should be a valid integer, unable to parse string as an integer");
    }
    return this.add("int_type", loc, "Input should be a valid integer");
  }

  float(v: unknown, loc: Loc): number | undefined {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") return v;
    if (typeof v === "string") {
      const s = v.trim();
      if (s !== "" && Number.isFinite(Number(s))) return Number(s);
      return this.add("float_parsing", loc, "Input should be a valid number, unable to parse string as a number");
    }
    return this.add("float_type", loc, "Input should be a valid number");
  }

  list(v: unknown, loc: Loc): unknown[] | undefined {
    if (Array.isArray(v)) return v;
    return this.add("list_type", loc, "Input should be a valid list");
  }

  /** A nested model (`model_type`) or a plain `dict` (`dict_type`). */
  obj(v: unknown, loc: Loc, model?: string): Record<string, unknown> | undefined {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    if (model) return this.add("model_type", loc, `Input should be a valid dictionary or instance of ${model}`);
    return this.add("dict_type", loc, "Input should be a valid dictionary");
  }

  get ok(): boolean {
    return this.errors.length === 0;
  }

  /** Handlers that call `Model.model_validate` themselves: a ValidationError is a ValueError,
   * i.e. 400 invalid_param with pydantic's text (§1.2 rule 3), in the project's short form
   * (http/validation.ts formatValidationError). */
  toInvalidParam(model: string): DifyError {
    const n = this.errors.length;
    const lines = [`${n} validation error${n === 1 ? "" : "s"} for ${model}`];
    for (const e of this.errors) {
      lines.push(e.loc.length ? e.loc.join(".") : model);
      lines.push(`  ${e.msg}`);
    }
    return Errors.invalidParam(lines.join("\n"));
  }

  /** 422 with the error list as JSON text in json.dumps style (§1.2 rule 4). */
  toError(): DifyError {
    return Errors.unprocessableEntity(pyJson(this.errors));
  }
}

// ---- shared sub-models (datasets spec §3.2)

export const SEARCH_METHODS = ["semantic_search", "full_text_search", "hybrid_search", "keyword_search"] as const;
export const PERMISSIONS = ["only_me", "all_team_members", "partial_members"] as const;
export const INDEXING_TECHNIQUES = ["high_quality", "economy"] as const;

export interface RetrievalModelInput {
  search_method: string;
  reranking_enable: boolean;
  reranking_model: { reranking_provider_name: string | null; reranking_model_name: string | null } | null;
  reranking_mode: string | null;
  top_k: number;
  score_threshold_enabled: boolean;
  score_threshold: number | null;
  weights: {
    weight_type: string | null;
    vector_setting: { vector_weight: number; embedding_provider_name: string; embedding_model_name: string } | null;
    keyword_setting: { keyword_weight: number } | null;
  } | null;
  metadata_filtering_conditions: Record<string, unknown> | null;
}

const has = (o: Record<string, unknown>, k: string) => Object.hasOwn(o, k);

/** `str | None = None`. */
function optStr(v: PyValidator, o: Record<string, unknown>, k: string, loc: Loc, opts: { min?: number; max?: number } = {}): string | null {
  if (!has(o, k) || o[k] === null) return null;
  return v.str(o[k], [...loc, k], opts) ?? null;
}

function required<T>(v: PyValidator, o: Record<string, unknown>, k: string, loc: Loc, read: (x: unknown, l: Loc) => T | undefined): T | undefined {
  if (!has(o, k)) return v.missing([...loc, k]);
  return read(o[k], [...loc, k]);
}

/** `RetrievalModel` (all of search_method, reranking_enable, top_k, score_threshold_enabled
 * required), returned in `model_dump()` key order as Dify stores it. */
export function readRetrievalModel(v: PyValidator, raw: unknown, loc: Loc): RetrievalModelInput | undefined {
  const o = v.obj(raw, loc, "RetrievalModel");
  if (!o) return undefined;
  const n = v.errors.length;
  const search_method = required(v, o, "search_method", loc, (x, l) => v.choice(x, l, SEARCH_METHODS, "enum"));
  const reranking_enable = required(v, o, "reranking_enable", loc, (x, l) => v.bool(x, l));
  let reranking_model: RetrievalModelInput["reranking_model"] = null;
  if (has(o, "reranking_model") && o.reranking_model !== null) {
    const r = v.obj(o.reranking_model, [...loc, "reranking_model"], "RerankingModel");
    if (r) {
      reranking_model = {
        reranking_provider_name: optStr(v, r, "reranking_provider_name", [...loc, "reranking_model"]),
        reranking_model_name: optStr(v, r, "reranking_model_name", [...loc, "reranking_model"]),
      };
    }
  }
  const reranking_mode = optStr(v, o, "reranking_mode", loc);
  const top_k = required(v, o, "top_k", loc, (x, l) => v.int(x, l));
  const score_threshold_enabled = required(v, o, "score_threshold_enabled", loc, (x, l) => v.bool(x, l));
  const score_threshold = has(o, "score_threshold") && o.score_threshold !== null ? (v.float(o.score_threshold, [...loc, "score_threshold"]) ?? null) : null;
  let weights: RetrievalModelInput["weights"] = null;
  if (has(o, "weights") && o.weights !== null) {
    const wl = [...loc, "weights"];
    const w = v.obj(o.weights, wl, "WeightModel");
    if (w) {
      const weight_type = has(w, "weight_type") && w.weight_type !== null ? (v.choice(w.weight_type, [...wl, "weight_type"], ["semantic_first", "keyword_first", "customized"]) ?? null) : null;
      let vector_setting: NonNullable<RetrievalModelInput["weights"]>["vector_setting"] = null;
      if (has(w, "vector_setting") && w.vector_setting !== null) {
        const vl = [...wl, "vector_setting"];
        const vs = v.obj(w.vector_setting, vl, "VectorSetting");
        if (vs) {
          const vector_weight = required(v, vs, "vector_weight", vl, (x, l) => v.float(x, l));
          const embedding_provider_name = required(v, vs, "embedding_provider_name", vl, (x, l) => v.str(x, l));
          const embedding_model_name = required(v, vs, "embedding_model_name", vl, (x, l) => v.str(x, l));
          if (vector_weight !== undefined && embedding_provider_name !== undefined && embedding_model_name !== undefined) {
            vector_setting = { vector_weight, embedding_provider_name, embedding_model_name };
          }
        }
      }
      let keyword_setting: NonNullable<RetrievalModelInput["weights"]>["keyword_setting"] = null;
      if (has(w, "keyword_setting") && w.keyword_setting !== null) {
        const kl = [...wl, "keyword_setting"];
        const ks = v.obj(w.keyword_setting, kl, "KeywordSetting");
        if (ks) {
          const keyword_weight = required(v, ks, "keyword_weight", kl, (x, l) => v.float(x, l));
          if (keyword_weight !== undefined) keyword_setting = { keyword_weight };
        }
      }
      weights = { weight_type, vector_setting, keyword_setting };
    }
  }
  // Only honoured by retrieval (§3.2); stored as given.
  let metadata_filtering_conditions: Record<string, unknown> | null = null;
  if (has(o, "metadata_filtering_conditions") && o.metadata_filtering_conditions !== null) {
    metadata_filtering_conditions = v.obj(o.metadata_filtering_conditions, [...loc, "metadata_filtering_conditions"], "MetadataFilteringCondition") ?? null;
  }
  if (v.errors.length > n) return undefined;
  return {
    search_method: search_method!,
    reranking_enable: reranking_enable!,
    reranking_model,
    reranking_mode,
    top_k: top_k!,
    score_threshold_enabled: score_threshold_enabled!,
    score_threshold,
    weights,
    metadata_filtering_conditions,
  };
}

export interface SummaryIndexSettingInput {
  enable: boolean | null;
  model_name: string | null;
  model_provider_name: string | null;
  summary_prompt: string | null;
}

export function readSummaryIndexSetting(v: PyValidator, raw: unknown, loc: Loc): SummaryIndexSettingInput | null {
  if (raw === null || raw === undefined) return null;
  const o = v.obj(raw, loc, "SummaryIndexSetting");
  if (!o) return null;
  return {
    enable: has(o, "enable") && o.enable !== null ? (v.bool(o.enable, [...loc, "enable"]) ?? null) : null,
    model_name: optStr(v, o, "model_name", loc),
    model_provider_name: optStr(v, o, "model_provider_name", loc),
    summary_prompt: optStr(v, o, "summary_prompt", loc),
  };
}

export { optStr, required, has };

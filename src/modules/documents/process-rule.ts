// Process rules (datasets spec §3.10, §5.2): the request form, Dify's synchronous validation
// (`DocumentService.process_rule_args_validate`) and the stored automatic / default rules.
// Range checks (50 ≤ max_tokens ≤ 4000, overlap ≤ size) are NOT done here: Dify leaves them to the
// worker, which fails the document asynchronously (§5.2, §15.1).
import { z } from "zod";
import { Errors } from "../../lib/errors.js";
import { pydanticText } from "./validate.js";

export type ProcessRuleMode = "automatic" | "custom" | "hierarchical";

export interface StoredSegmentation {
  separator: string;
  max_tokens: number;
  chunk_overlap: number;
}

export interface StoredRules {
  pre_processing_rules: Array<{ id: string; enabled: boolean }>;
  segmentation: StoredSegmentation | null;
  parent_mode: "full-doc" | "paragraph" | null;
  subchunk_segmentation: StoredSegmentation | null;
}

/** What a document gets: the mode plus the rules to store (null rules = the automatic ones). */
export interface ValidatedProcessRule {
  mode: ProcessRuleMode;
  rules: StoredRules | null;
}

const PRE_PROCESSING = [
  { id: "remove_extra_spaces", enabled: true },
  { id: "remove_urls_emails", enabled: false },
];

/** `DatasetProcessRule.AUTOMATIC_RULES` — stored whenever mode=automatic (§3.10: key `delimiter`). */
export const AUTOMATIC_RULES = {
  pre_processing_rules: PRE_PROCESSING,
  segmentation: { delimiter: "\n", max_tokens: 500, chunk_overlap: 50 },
};

/** Reported as `dataset_process_rule` when the dataset has no rule yet (§3.10, §5.7). */
export const DEFAULT_PROCESS_RULE = {
  mode: "custom",
  rules: {
    pre_processing_rules: PRE_PROCESSING,
    segmentation: { delimiter: "\n", max_tokens: 1024, chunk_overlap: 50 },
  },
};

// pydantic's models (`Segmentation`, `Rule`, `ProcessRule` in knowledge_entities.py): unknown keys
// are ignored, defaults as Dify's.
const segmentation = z.object({
  separator: z.string().default("\n"),
  max_tokens: z.number().int(),
  chunk_overlap: z.number().int().default(0),
});
const processRuleSchema = z.object({
  mode: z.enum(["automatic", "custom", "hierarchical"]),
  rules: z
    .object({
      pre_processing_rules: z.array(z.object({ id: z.string(), enabled: z.boolean() })).nullish(),
      segmentation: segmentation.nullish(),
      parent_mode: z.enum(["full-doc", "paragraph"]).nullish(),
      subchunk_segmentation: segmentation.nullish(),
    })
    .nullish(),
});

/** Validates a request's `process_rule` (§5.2). Every failure is 400 invalid_param. */
export function validateProcessRule(input: unknown, model = "KnowledgeConfig"): ValidatedProcessRule {
  const r = processRuleSchema.safeParse(input);
  if (!r.success) {
    throw Errors.invalidParam(pydanticText(r.error, model, ["process_rule"]));
  }
  const { mode, rules } = r.data;
  if (mode === "automatic") return { mode, rules: null };
  if (!rules) throw Errors.invalidParam("Process rule rules is required");
  if (rules.pre_processing_rules === null || rules.pre_processing_rules === undefined) {
    throw Errors.invalidParam("Process rule pre_processing_rules is required");
  }
  // Duplicates by id collapse, last one wins, first position kept (a Python dict keyed by id).
  const byId = new Map<string, { id: string; enabled: boolean }>();
  for (const p of rules.pre_processing_rules) {
    if (!p.id) throw Errors.invalidParam("Process rule pre_processing_rules id is required");
    byId.set(p.id, { id: p.id, enabled: p.enabled });
  }
  let parentMode = rules.parent_mode ?? null;
  if (mode === "hierarchical" && !parentMode) parentMode = "paragraph";
  if (!rules.segmentation) throw Errors.invalidParam("Process rule segmentation is required");
  if (!rules.segmentation.separator) throw Errors.invalidParam("Process rule segmentation separator is required");
  const fullDoc = mode === "hierarchical" && parentMode === "full-doc";
  if (!rules.segmentation.max_tokens && !fullDoc) throw Errors.invalidParam("Process rule segmentation max_tokens is required");
  return {
    mode,
    rules: {
      pre_processing_rules: [...byId.values()],
      segmentation: { ...rules.segmentation },
      parent_mode: parentMode,
      subchunk_segmentation: rules.subchunk_segmentation ? { ...rules.subchunk_segmentation } : null,
    },
  };
}

/** The JSON stored in `dataset_process_rules.rules` for a validated rule. */
export function storedRules(rule: ValidatedProcessRule): unknown {
  return rule.rules ?? AUTOMATIC_RULES;
}

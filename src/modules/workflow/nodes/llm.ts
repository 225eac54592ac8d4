// The `llm` node (dsl-and-workflow §4.4; graphon `nodes/llm/node.py`, `llm_utils.py`,
// `reasoning.py`). Builds the prompt from the chat message list or the completion template
// (basic `{{#…#}}` or jinja2 editions), `{{#context#}}`, conversation memory and vision files,
// streams the model's text as chunks on `[node, "text"]`, and records Dify's inputs / process_data
// / outputs / metadata (§5.4).
import type { ChatMessage, DifyUsage, ModelConfig } from "../../models/index.js";
import { renderJinja2 as renderJinja2Raw } from "../jinja.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult } from "../types.js";
import {
  appendFileParts,
  asRec,
  asSelector,
  asStr,
  callModel,
  failed,
  fetchFiles,
  filesToParts,
  finalizeMessages,
  historyBudget,
  historyText,
  loadHistory,
  modelTraits,
  nodeUsage,
  readMemory,
  readModel,
  renderWithFiles,
  savedPrompts,
  templateSelectors,
  usageFrom,
  usageMetadata,
  type Rec,
} from "./llm-common.js";

const CONTEXT_PLACEHOLDER = "{{#context#}}";

/** jinja2 editions render with the shared Jinja2-compatible renderer (../jinja.ts); errors fail the node. */
function renderJinja2(source: string, variables: Record<string, unknown>): string {
  if (!source) return "";
  try {
    return renderJinja2Raw(source, variables);
  } catch (err) {
    throw new NodeError(`Failed to render jinja2 template: ${(err as Error).message}`, "TemplateRenderError");
  }
}

interface TemplateMessage {
  role: "system" | "user" | "assistant";
  text: string;
  editionType: "basic" | "jinja2";
  jinja2Text: string;
}

/** graphon `_transform_chat_messages`: a jinja2 message with jinja2_text uses it as its text. */
function readTemplate(raw: unknown): { kind: "chat"; messages: TemplateMessage[] } | { kind: "completion"; message: TemplateMessage } {
  const one = (m: Rec, role: TemplateMessage["role"]): TemplateMessage => {
    const editionType = m.edition_type === "jinja2" ? "jinja2" : "basic";
    const jinja2Text = asStr(m.jinja2_text);
    return { role, text: editionType === "jinja2" && jinja2Text ? jinja2Text : asStr(m.text), editionType, jinja2Text };
  };
  if (Array.isArray(raw)) {
    return {
      kind: "chat",
      messages: raw.map((m) => {
        const r = asRec(m);
        const role = r.role === "system" || r.role === "assistant" ? r.role : "user";
        return one(r, role);
      }),
    };
  }
  return { kind: "completion", message: one(asRec(raw), "user") };
}

/**
 * §4.4 step 4 (graphon `_fetch_context`): a string is the context; an array is folded — string
 * items + "\n", object items need `content` (summary first when present) — and trimmed.
 */
function readContext(ctx: NodeContext, data: Rec): string | null {
  const c = asRec(data.context);
  const selector = asSelector(c.variable_selector);
  if (c.enabled !== true || !selector) return null;
  const v = ctx.pool.get(selector);
  if (typeof v === "string") return v;
  if (!Array.isArray(v)) return null;
  let out = "";
  for (const item of v) {
    if (typeof item === "string") {
      out += `${item}\n`;
      continue;
    }
    const rec = asRec(item);
    if (!("content" in rec)) throw new NodeError(`Invalid context structure: ${JSON.stringify(item)}`, "InvalidContextStructureError");
    if (rec.summary) out += `${ctx.pool.toText(rec.summary)}\n`;
    out += `${ctx.pool.toText(rec.content)}\n`;
  }
  return out.trim();
}

/** §4.4 step 2 (graphon `_fetch_inputs`): every reference must resolve; values go to `inputs`. */
function requireVariables(ctx: NodeContext, templates: string[], inputs: Rec, skipNone: boolean): void {
  for (const t of templates) {
    for (const { key, selector } of templateSelectors(t)) {
      const v = ctx.pool.get(selector);
      if (v === undefined) throw new NodeError(`Variable ${key} not found`, "VariableNotFoundError");
      if (skipNone && v === null) continue;
      inputs[key] = v ?? "";
    }
  }
}

/** Jinja2 variables (`prompt_config.jinja2_variables`): raw values for rendering, required to exist. */
function jinjaVariables(ctx: NodeContext, data: Rec, inputs: Rec): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const raw of (asRec(data.prompt_config).jinja2_variables as unknown[] | undefined) ?? []) {
    const r = asRec(raw);
    const name = asStr(r.variable);
    const selector = asSelector(r.value_selector);
    if (!name || !selector) continue;
    const v = ctx.pool.get(selector);
    if (v === undefined) throw new NodeError(`Variable ${name} not found`, "VariableNotFoundError");
    vars[name] = v ?? "";
    inputs[name] = typeof v === "string" ? v : ctx.pool.toText(v);
  }
  return vars;
}

// ------------------------------------------------------------------ reasoning (§4.4 step 8)

const THINK_BLOCK = /<think(?:\s[^<>]{0,512})?>([\s\S]*?)<\/think>/gi;
const THINK_TRAILING = /<think(?:\s[^<>]{0,512})?>((?:(?!<\/think>)[\s\S])*)$/i;

/** graphon `split_reasoning` for `separated`: text without think blocks, and their contents. */
export function splitReasoning(text: string): { text: string; reasoning: string } {
  const parts: string[] = [];
  for (const m of text.matchAll(THINK_BLOCK)) if (m[1]!.trim()) parts.push(m[1]!.trim());
  let clean = text.replace(THINK_BLOCK, "");
  const trailing = THINK_TRAILING.exec(clean);
  if (trailing) {
    if (trailing[1]!.trim()) parts.push(trailing[1]!.trim());
    clean = clean.slice(0, trailing.index);
  }
  return { text: clean.replace(/\n\s*\n/g, "\n\n").trim(), reasoning: parts.join("\n") };
}

/**
 * graphon `ThinkStreamFilter`: drops `<think>…</think>` from streamed text in `separated` mode,
 * holding back only a trailing fragment that could still grow into a tag.
 */
export class ThinkStreamFilter {
  private inside = false;
  private hold = "";
  private seenClean = false;

  feed(piece: string): string {
    let work = this.hold + piece;
    this.hold = "";
    let out = "";
    while (work) {
      if (!this.inside) {
        const m = /<think(?:\s[^<>]{0,512})?>/i.exec(work);
        if (m) {
          out += work.slice(0, m.index);
          this.inside = true;
          work = work.slice(m.index + m[0].length);
          continue;
        }
        const keep = openSuffix(work);
        out += work.slice(0, work.length - keep);
        this.hold = keep ? work.slice(-keep) : "";
        work = "";
      } else {
        const idx = work.toLowerCase().indexOf("</think>");
        if (idx >= 0) {
          this.inside = false;
          work = work.slice(idx + 8);
          continue;
        }
        let keep = 0;
        for (let k = Math.min(work.length, 7); k > 0; k--) {
          if ("</think>".startsWith(work.slice(-k).toLowerCase())) {
            keep = k;
            break;
          }
        }
        this.hold = keep ? work.slice(-keep) : "";
        work = "";
      }
    }
    return this.stripLeading(out);
  }

  finish(): string {
    const rest = this.hold;
    this.hold = "";
    return this.inside ? "" : this.stripLeading(rest);
  }

  private stripLeading(s: string): string {
    if (this.seenClean || !s) return s;
    const t = s.trimStart();
    if (t) this.seenClean = true;
    return t;
  }
}

function openSuffix(work: string): number {
  const lt = work.lastIndexOf("<");
  if (lt < 0) return 0;
  const tail = work.slice(lt);
  const lower = tail.toLowerCase();
  if (tail.includes(">")) return 0;
  if (tail.length <= 6) return "<think".startsWith(lower) ? tail.length : 0;
  return lower.startsWith("<think") && /\s/.test(tail[6]!) && tail.length <= 519 ? tail.length : 0;
}

// ------------------------------------------------------------------ structured output (§4.4 step 9)

function readSchema(data: Rec): Rec | null {
  const enabled = data.structured_output_enabled === true || data.structured_output_switch_on === true;
  if (!enabled) return null;
  let schema: unknown = asRec(data.structured_output).schema;
  if (typeof schema === "string") {
    try {
      schema = JSON.parse(schema);
    } catch {
      throw new NodeError("structured_output_schema is not valid JSON format", "LLMNodeError");
    }
  }
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
    throw new NodeError("structured_output_schema must be a JSON object", "LLMNodeError");
  }
  return schema as Rec;
}

/** Dify's structured-output prompt for models without native JSON-schema mode (completion mode here). */
function structuredOutputInstruction(schema: Rec): string {
  return (
    "You should always follow the instructions and output a valid JSON object.\n" +
    "The structure of the JSON object you can found in the instructions, use {\"answer\": \"$your_answer\"} as the default structure\n" +
    "if you are not sure about the structure.\n\n" +
    `<instructions>\n${JSON.stringify(schema)}\n</instructions>\n`
  );
}

/** The model's reply as an object: think blocks and code fences removed, first JSON object parsed. */
function parseStructured(text: string): Rec {
  let s = text.replace(THINK_BLOCK, "").trim();
  const fence = /```(?:json|JSON)?\s*([\s\S]*?)```/.exec(s);
  if (fence) s = fence[1]!.trim();
  const start = s.indexOf("{");
  const end = s.lastIndexOf("}");
  try {
    const parsed: unknown = JSON.parse(start >= 0 && end > start ? s.slice(start, end + 1) : s);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Rec;
  } catch {
    /* fall through */
  }
  throw new NodeError(`Failed to parse structured output (stage=result, path=$): ${text}`, "LLMNodeError");
}

// ------------------------------------------------------------------ the node

async function buildChatMessages(
  ctx: NodeContext,
  messages: TemplateMessage[],
  context: string,
  jinjaVars: Record<string, unknown>,
  detail: "low" | "high",
): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    if (m.editionType === "jinja2") {
      out.push({ role: m.role, content: [{ type: "text", text: renderJinja2(m.jinja2Text, jinjaVars) }] });
      continue;
    }
    const { text, files } = renderWithFiles(ctx, m.text.replaceAll(CONTEXT_PLACEHOLDER, context));
    if (text) out.push({ role: m.role, content: [{ type: "text", text }] });
    const parts = await filesToParts(ctx, files, detail);
    if (parts.length) out.push({ role: m.role, content: parts });
  }
  return out;
}

export const llmNode: NodeImplementation = {
  types: ["llm"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as Rec;
    const inputs: Rec = {};
    const processData: Rec = {};
    let usage: DifyUsage | null = null;
    try {
      const model = readModel(ctx, data);
      const template = readTemplate(data.prompt_template);
      const memory = readMemory(data);

      requireVariables(ctx, template.kind === "chat" ? template.messages.map((m) => m.text) : [template.message.text], inputs, false);
      if (memory?.queryTemplate) requireVariables(ctx, [memory.queryTemplate], inputs, true);
      const jinjaVars = jinjaVariables(ctx, data, inputs);

      const vision = asRec(data.vision);
      const visionEnabled = vision.enabled === true;
      const visionConfigs = asRec(vision.configs);
      const detail: "low" | "high" = visionConfigs.detail === "low" ? "low" : "high";
      const files = visionEnabled ? fetchFiles(ctx, asSelector(visionConfigs.variable_selector)) : [];
      if (files.length) inputs["#files#"] = files;

      const context = readContext(ctx, data);
      if (context) inputs["#context#"] = context;
      inputs.model_provider = model.provider ?? "";
      inputs.model_name = model.name;

      const schema = readSchema(data);
      // Memory needs a conversation (advanced-chat); the query message only needs the config
      // (graphon `_resolve_memory_query`: the template, else the text of sys.query).
      const history = memory ? await loadHistory(ctx, { windowSize: memory.windowSize, budget: historyBudget(ctx, model) }) : [];
      const query = memory ? memory.queryTemplate || ctx.pool.toText(ctx.pool.get(["sys", "query"])) : "";
      const traits = modelTraits(ctx, model);

      let messages: ChatMessage[];
      let prompt: string | undefined;
      if (template.kind === "chat") {
        messages = await buildChatMessages(ctx, template.messages, context ?? "", jinjaVars, detail);
        messages.push(...history);
        if (query) {
          const q = await buildChatMessages(ctx, [{ role: "user", text: query, editionType: "basic", jinja2Text: "" }], "", {}, detail);
          messages.push(...q);
        }
        appendFileParts(messages, await filesToParts(ctx, files, detail));
        if (schema && model.mode === "completion") messages.unshift({ role: "system", content: structuredOutputInstruction(schema) });
        messages = finalizeMessages(messages, traits.vision);
      } else {
        const m = template.message;
        let text =
          m.editionType === "jinja2" ? renderJinja2(m.jinja2Text, jinjaVars) : renderWithFiles(ctx, m.text.replaceAll(CONTEXT_PLACEHOLDER, context ?? "")).text;
        let memoryText = "";
        if (memory && ctx.run.conversationId) {
          if (!memory.rolePrefix) throw new NodeError("Memory role prefix is required for completion model.", "MemoryRolePrefixRequiredError");
          memoryText = historyText(history, memory.rolePrefix.user, memory.rolePrefix.assistant);
        }
        // graphon `_prepend_or_replace_histories` runs with or without memory: "#histories#" is
        // replaced, otherwise the (possibly empty) history and "\n" are put in front.
        text = text.includes("#histories#") ? text.replaceAll("#histories#", memoryText) : `${memoryText}\n${text}`;
        if (query) text = `${ctx.pool.renderTemplate(query)}\n${text}`;
        if (schema) text = `${structuredOutputInstruction(schema)}\n${text}`;
        if (!text.trim()) finalizeMessages([], traits.vision);
        prompt = text;
        messages = [{ role: "user", content: text }];
      }

      const callModelConfig: ModelConfig =
        schema && model.mode === "chat"
          ? { ...model, completion_params: { ...model.completion_params, response_format: "json_schema", json_schema: JSON.stringify(schema) } }
          : model;

      const separated = data.reasoning_format === "separated";
      const filter = separated ? new ThinkStreamFilter() : null;
      const emit = async (delta: string) => {
        const piece = filter ? filter.feed(delta) : delta;
        if (piece) await ctx.emitChunk({ selector: [node.id, "text"], text: piece });
      };
      const result = await callModel(
        ctx,
        { model: callModelConfig, messages: prompt !== undefined ? [] : messages, ...(prompt !== undefined ? { prompt } : {}) },
        emit,
      );
      if (filter) {
        const rest = filter.finish();
        if (rest) await ctx.emitChunk({ selector: [node.id, "text"], text: rest });
      }
      usage = usageFrom(ctx, model, result.done);
      // A stop aborts the stream quietly (models returns what arrived); the engine owns the
      // stopped state, the node just does not claim success.
      if (ctx.signal.aborted) throw new NodeError("Workflow execution was stopped.", "WorkflowStoppedError");

      const { text, reasoning } = separated ? splitReasoning(result.text) : { text: result.text, reasoning: "" };
      const outputs: Rec = { text, reasoning_content: reasoning, usage, finish_reason: result.done.finishReason };
      if (schema) outputs.structured_output = parseStructured(result.text);

      Object.assign(processData, {
        model_mode: model.mode,
        prompts: savedPrompts(model.mode, messages, prompt),
        usage,
        finish_reason: result.done.finishReason,
        model_provider: model.provider ?? "",
        model_name: model.name,
      });
      return {
        status: "succeeded",
        inputs,
        process_data: processData,
        outputs,
        metadata: usageMetadata(usage),
        usage: nodeUsage(usage),
      };
    } catch (err) {
      ctx.services.logger.debug({ nodeId: node.id, err: (err as Error).message }, "llm node failed");
      return failed(err, { inputs, process_data: processData, ...(usage ? { usage: nodeUsage(usage) } : {}) });
    }
  },
};


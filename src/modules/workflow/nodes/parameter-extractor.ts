// The `parameter-extractor` node (dsl-and-workflow §4.16; graphon
// `nodes/parameter_extractor/{parameter_extractor_node,prompts,entities}.py`). Prompt texts are
// Dify's, verbatim after Python's `str.format`. Function-calling mode is used for chat-mode models
// when `reasoning_mode` is `function_call` (OpenAI-compatible chat models take tools); otherwise
// the prompt mode asks for JSON in the text. Validation problems never fail the node: they set
// `__is_success: 0` and `__reason`; only a failed model call does.
import { randomUUID } from "node:crypto";

import { pyJson } from "../../../lib/pyjson.js";
import type { ChatMessage, DifyUsage, ToolCall, ToolDefinition } from "../../models/index.js";
import { isFile, pyRepr, segmentType } from "../variable-pool.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult } from "../types.js";
import {
  appendFileParts,
  asRec,
  asSelector,
  asStr,
  callModel,
  fetchFiles,
  filesToParts,
  finalizeMessages,
  firstJsonObject,
  historyBudget,
  historyText,
  loadHistory,
  modelTraits,
  nodeUsage,
  readMemory,
  readModel,
  savedPrompts,
  usageFrom,
  usageMetadata,
  type Rec,
} from "./llm-common.js";

export const FUNCTION_CALLING_EXTRACTOR_NAME = "extract_parameters";

const fcSystemPrompt = (histories: string, instruction: string) =>
  "You are a helpful assistant tasked with extracting structured information based on specific criteria provided. Follow the guidelines below to ensure consistency and accuracy.\n" +
  "### Task\n" +
  `Always call the \`${FUNCTION_CALLING_EXTRACTOR_NAME}\` function with the correct parameters. Ensure that the information extraction is contextual and aligns with the provided criteria.\n` +
  "### Memory\n" +
  "Here is the chat history between the human and assistant, provided within <histories> tags:\n" +
  "<histories>\n" +
  `${histories}\n` +
  "</histories>\n" +
  "### Instructions:\n" +
  "Some additional information is provided below. Always adhere to these instructions as closely as possible:\n" +
  "<instruction>\n" +
  `${instruction}\n` +
  "</instruction>\n" +
  "Steps:\n" +
  "1. Review the chat history provided within the <histories> tags.\n" +
  "2. Extract the relevant information based on the criteria given, output multiple values if there is multiple relevant information that match the criteria in the given text.\n" +
  "3. Generate a well-formatted output using the defined functions and arguments.\n" +
  `4. Use the \`${FUNCTION_CALLING_EXTRACTOR_NAME}\` function to create structured outputs with appropriate parameters.\n` +
  "5. Do not include any XML tags in your output.\n" +
  "### Example\n" +
  "To illustrate, if the task involves extracting a user's name and their request, your function call might look like this: Ensure your output follows a similar structure to examples.\n" +
  "### Final Output\n" +
  "Produce well-formatted function calls in json without XML tags, as shown in the example.";

const fcUserTemplate = (content: string, structure: string) =>
  `extract structured information from context inside <context></context> XML tags by calling the function ${FUNCTION_CALLING_EXTRACTOR_NAME} with the correct parameters with structure inside <structure></structure> XML tags.\n` +
  `<context>\n${content}\n</context>\n\n<structure>\n${structure}\n</structure>`;

const EXAMPLES = [
  {
    query: "What is the weather today in SF?",
    schema: {
      type: "object",
      properties: { location: { type: "string", description: "The location to get the weather information", required: true } },
      required: ["location"],
    },
    fcText: "I need always call the function with the correct parameters. In this case, I need to call the function with the location parameter.",
    answer: { location: "San Francisco" },
  },
  {
    query: "I want to eat some apple pie.",
    schema: {
      type: "object",
      properties: { food: { type: "string", description: "The food to eat", required: true } },
      required: ["food"],
    },
    fcText: "I need always call the function with the correct parameters. In this case, I need to call the function with the food parameter.",
    answer: { food: "apple pie" },
  },
];

const completionPrompt = (instruction: string, structure: string, histories: string, text: string) =>
  "### Instructions:\n" +
  "Some extra information are provided below, I should always follow the instructions as possible as I can.\n" +
  "<instructions>\n" +
  `${instruction}\n` +
  "</instructions>\n\n" +
  "### Extract parameter Workflow\n" +
  "I need to extract the following information from the input text. The <information to be extracted> tag specifies the 'type', 'description' and 'required' of the information to be extracted.\n" +
  "<information to be extracted>\n" +
  `${structure}\n` +
  "</information to be extracted>\n\n" +
  "Step 1: Carefully read the input and understand the structure of the expected output.\n" +
  "Step 2: Extract relevant parameters from the provided text based on the name and description of object.\n" +
  "Step 3: Structure the extracted parameters to JSON object as specified in <structure>.\n" +
  "Step 4: Ensure that the JSON object is properly formatted and valid. The output should not contain any XML tags. Only the JSON object should be outputted.\n\n" +
  "### Memory\n" +
  "Here are the chat histories between human and assistant, inside <histories></histories> XML tags.\n" +
  "<histories>\n" +
  `${histories}\n` +
  "</histories>\n\n" +
  "### Structure\n" +
  "Here is the structure of the expected output, I should always follow the output structure.\n" +
  // `{{γγγ` / `}}γγγ` in Dify's template, removed after formatting.
  "\n" +
  "  'properties1': 'relevant text extracted from input',\n" +
  "  'properties2': 'relevant text extracted from input',\n" +
  "\n\n" +
  "### Input Text\n" +
  "Inside <text></text> XML tags, there is a text that I should extract parameters and convert to a JSON object.\n" +
  "<text>\n" +
  `${text}\n` +
  "</text>\n\n" +
  "### Answer\n" +
  "I should always output a valid JSON object. Output nothing other than the JSON object.\n" +
  "```JSON";

const chatSystemPrompt = (histories: string, instruction: string) =>
  "You should always follow the instructions and output a valid JSON object.\n" +
  "The structure of the JSON object you can found in the instructions.\n\n" +
  "### Memory\n" +
  "Here are the chat histories between human and assistant, inside <histories></histories> XML tags.\n" +
  "<histories>\n" +
  `${histories}\n` +
  "</histories>\n\n" +
  "### Instructions:\n" +
  "Some extra information are provided below, you should always follow the instructions as possible as I can.\n" +
  "<instructions>\n" +
  `${instruction}\n` +
  "</instructions>";

const chatUserTemplate = (structure: string, text: string) =>
  "### Structure\n" +
  "Here is the structure of the JSON object, you should always follow the structure.\n" +
  "<structure>\n" +
  `${structure}\n` +
  "</structure>\n\n" +
  "### Text to be converted to JSON\n" +
  "Inside <text></text> XML tags, there is a text that you should convert to a JSON object.\n" +
  "<text>\n" +
  `${text}\n` +
  "</text>";

// ------------------------------------------------------------------ parameters

type ParamType = "string" | "number" | "boolean" | "array[string]" | "array[number]" | "array[object]" | "array[boolean]";

interface Param {
  name: string;
  type: ParamType;
  options: string[] | null;
  description: string;
  required: boolean;
}

const VALID_TYPES = new Set(["string", "number", "boolean", "array[string]", "array[number]", "array[object]", "array[boolean]"]);

/** graphon `ParameterConfig`: legacy `bool` → boolean, `select` → string with `options` as enum. */
function readParams(raw: unknown): Param[] {
  return ((raw as unknown[] | undefined) ?? []).map((p) => {
    const r = asRec(p);
    const name = asStr(r.name);
    if (!name) throw new NodeError("Parameter name is required", "ParameterExtractorNodeError");
    if (name === "__reason" || name === "__is_success") {
      throw new NodeError("Invalid parameter name, __reason and __is_success are reserved", "ParameterExtractorNodeError");
    }
    const t = asStr(r.type);
    const type = (t === "bool" ? "boolean" : t === "select" ? "string" : t) as ParamType;
    if (!VALID_TYPES.has(type)) throw new NodeError(`type ${t} is not allowd to use in Parameter Extractor node.`, "ParameterExtractorNodeError");
    const options = Array.isArray(r.options) ? r.options.map(String) : null;
    return { name, type, options, description: asStr(r.description), required: r.required === true };
  });
}

/** `get_parameter_json_schema` (key order as Dify builds it). */
function jsonSchema(params: Param[]): Rec {
  const properties: Rec = {};
  const required: string[] = [];
  for (const p of params) {
    const s: Rec = { description: p.description };
    if (p.type.startsWith("array[")) {
      s.type = "array";
      s.items = { type: p.type.slice(6, -1) };
    } else s.type = p.type;
    if (p.options && p.options.length) s.enum = p.options;
    properties[p.name] = s;
    if (p.required) required.push(p.name);
  }
  return { type: "object", properties, required };
}

const isNumber = (v: unknown) => typeof v === "number";
const elementOk: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === "string",
  number: isNumber,
  boolean: (v) => typeof v === "boolean",
  object: (v) => !!v && typeof v === "object" && !Array.isArray(v) && !isFile(v),
};

function typeValid(type: ParamType, v: unknown): boolean {
  if (type.startsWith("array[")) return Array.isArray(v) && v.every(elementOk[type.slice(6, -1)]!);
  return elementOk[type]!(v);
}

/** `_validate_result`: the first problem found, as Dify words it; null when valid. */
function validate(params: Param[], result: Rec): string | null {
  if (params.length !== Object.keys(result).length) return "Invalid number of parameters";
  for (const p of params) {
    if (p.required && !(p.name in result)) return `Parameter ${p.name} is required`;
    const v = result[p.name];
    if (!typeValid(p.type, v)) {
      const pyType = v === null || v === undefined ? "NoneType" : typeof v === "string" ? "str" : typeof v === "boolean" ? "bool" : typeof v === "number" ? (Number.isInteger(v) ? "int" : "float") : Array.isArray(v) ? "list" : "dict";
      return `Invalid value for parameter ${p.name}, expected segment type: ${p.type}, actual_type: ${segmentType(v ?? null)}, python_type: <class '${pyType}'>, value: ${typeof v === "string" ? v : pyRepr(v ?? null)}`;
    }
    if (p.type === "string" && p.options && p.options.length && !p.options.includes(v as string)) return `Invalid \`select\` value for parameter ${p.name}`;
  }
  return null;
}

const UNSET = Symbol("unset");

/** `_transform_number`: bools → 0/1, numeric strings → int or float ("." decides), else unset. */
function toNumber(v: unknown): number | typeof UNSET {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const s = v.trim();
    if (s.includes(".") ? /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) : /^[+-]?\d+(_\d+)*$/.test(s)) return Number(s.replaceAll("_", ""));
  }
  return UNSET;
}

/** `_transform_result`: coerced values, zero values for missing/invalid ones. */
function transform(params: Param[], result: Rec): Rec {
  const out: Rec = {};
  for (const p of params) {
    const v = p.name in result ? result[p.name] : UNSET;
    let t: unknown = UNSET;
    if (v !== UNSET) {
      if (p.type.startsWith("array[")) {
        if (Array.isArray(v)) {
          const el = p.type.slice(6, -1);
          t = v
            .map((x) => (el === "number" ? toNumber(x) : elementOk[el]!(x) ? x : UNSET))
            .filter((x) => x !== UNSET);
        }
      } else if (p.type === "number") t = toNumber(v);
      else if (p.type === "boolean") t = typeof v === "boolean" ? v : typeof v === "number" && Number.isInteger(v) ? v !== 0 : UNSET;
      else t = typeof v === "string" ? v : UNSET;
    }
    out[p.name] = t !== UNSET ? t : p.type.startsWith("array[") ? [] : p.type === "number" ? 0 : p.type === "boolean" ? false : "";
  }
  return out;
}

/** `_generate_default_result`: zero values for scalar parameters only (arrays are left out). */
function defaults(params: Param[]): Rec {
  const out: Rec = {};
  for (const p of params) {
    if (p.type === "number") out[p.name] = 0;
    else if (p.type === "boolean") out[p.name] = false;
    else if (p.type === "string") out[p.name] = "";
  }
  return out;
}

// ------------------------------------------------------------------ the node

export const parameterExtractorNode: NodeImplementation = {
  types: ["parameter-extractor"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as Rec;
    const selector = asSelector(data.query);
    const rawQuery = selector ? ctx.pool.get(selector) : undefined;
    const query = rawQuery === undefined ? "" : ctx.pool.toText(rawQuery);
    const inputs: Rec = { query };
    const processData: Rec = {};
    let params: Param[];
    let messages: ChatMessage[];
    let prompt: string | undefined;
    let tools: ToolDefinition[] = [];
    let model: ReturnType<typeof readModel>;
    try {
      params = readParams(data.parameters);
      model = readModel(ctx, data);
      const vision = asRec(data.vision);
      const configs = asRec(vision.configs);
      const detail: "low" | "high" = configs.detail === "low" ? "low" : "high";
      const files = vision.enabled === true ? fetchFiles(ctx, asSelector(configs.variable_selector)) : [];
      Object.assign(inputs, {
        files,
        parameters: params.map((p) => ({ name: p.name, type: p.type, options: p.options, description: p.description, required: p.required })),
        instruction: typeof data.instruction === "string" ? data.instruction : null,
        model_provider: model.provider ?? "",
        model_name: model.name,
      });

      const instruction = ctx.pool.renderTemplate(asStr(data.instruction));
      const memory = readMemory(data);
      const histories = memory
        ? historyText(await loadHistory(ctx, { windowSize: memory.rawWindowSize, budget: historyBudget(ctx, model) }))
        : "";
      const schema = jsonSchema(params);
      // Prompt texts pass through the basic-template step (graphon `fetch_prompt_messages`).
      const render = (t: string) => ctx.pool.renderTemplate(t.replaceAll("{{#context#}}", ""));
      const text = (t: string): ChatMessage["content"] => [{ type: "text", text: render(t) }];
      const useTools = data.reasoning_mode !== "prompt" && model.mode === "chat";

      if (model.mode === "completion" && !useTools) {
        prompt = render(completionPrompt(instruction, pyJson(schema), histories, query));
        messages = [{ role: "user", content: prompt }];
      } else {
        const system = useTools ? fcSystemPrompt(histories, instruction) : chatSystemPrompt(histories, instruction);
        const user = useTools ? fcUserTemplate(query, pyJson(schema)) : chatUserTemplate(pyJson(schema), query);
        messages = [
          { role: "system", content: text(system) },
          { role: "user", content: text(user) },
        ];
        appendFileParts(messages, await filesToParts(ctx, files, detail));
        messages = finalizeMessages(messages, modelTraits(ctx, model).vision);
        // The few-shot exchange goes right before the last user message.
        const examples: ChatMessage[] = [];
        for (const ex of EXAMPLES) {
          if (useTools) {
            const id = randomUUID().replaceAll("-", "");
            examples.push(
              { role: "user", content: ex.query },
              { role: "assistant", content: ex.fcText, tool_calls: [{ id, name: FUNCTION_CALLING_EXTRACTOR_NAME, arguments: pyJson(ex.answer) }] },
              { role: "tool", content: "Great! You have called the function with the correct parameters.", tool_call_id: id },
              { role: "assistant", content: "I have extracted the parameters, let's move on." },
            );
          } else {
            examples.push({ role: "user", content: chatUserTemplate(pyJson(ex.schema), ex.query) }, { role: "assistant", content: pyJson(ex.answer) });
          }
        }
        let lastUser = -1;
        messages.forEach((m, i) => {
          if (m.role === "user") lastUser = i;
        });
        messages = lastUser < 0 ? [...examples, ...messages] : [...messages.slice(0, lastUser), ...examples, ...messages.slice(lastUser)];
        if (useTools) tools = [{ name: FUNCTION_CALLING_EXTRACTOR_NAME, description: "Extract parameters from the natural language text", parameters: schema }];
      }
      Object.assign(processData, {
        model_mode: model.mode,
        prompts: savedPrompts(model.mode, messages, prompt),
        usage: null,
        function: tools[0] ?? {},
        tool_call: null,
        model_provider: model.provider ?? "",
        model_name: model.name,
      });
    } catch (err) {
      const e = err as { message?: string; errorType?: string };
      return { status: "failed", inputs, error: e.message ?? String(err), errorType: e.errorType ?? "ParameterExtractorNodeError" };
    }

    let usage: DifyUsage;
    let llmText: string;
    let toolCall: ToolCall | null;
    try {
      const result = await callModel(ctx, {
        model,
        messages: prompt !== undefined ? [] : messages,
        ...(prompt !== undefined ? { prompt } : {}),
        ...(tools.length ? { tools } : {}),
      });
      ctx.signal.throwIfAborted();
      usage = usageFrom(ctx, model, result.done);
      llmText = result.text;
      toolCall = result.toolCalls[0] ?? null;
      processData.usage = usage;
      processData.tool_call = toolCall ? { id: toolCall.id, type: "function", function: { name: toolCall.name, arguments: toolCall.arguments } } : null;
      processData.llm_text = llmText;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      ctx.services.logger.warn({ nodeId: node.id, err: message }, "parameter extractor model call failed");
      return {
        status: "failed",
        inputs,
        process_data: processData,
        outputs: { __is_success: 0, __reason: "Failed to invoke model", __error: message },
        error: message,
        errorType: (err as { code?: string }).code ?? (err as Error).name ?? "Error",
        metadata: {},
      };
    }

    let error: string | null = null;
    let result: Rec | null;
    if (toolCall) result = toolCall.arguments ? firstJsonObject(toolCall.arguments) : null;
    else {
      result = firstJsonObject(llmText);
      if (!result) {
        result = defaults(params);
        error = "Failed to extract result from function call or text response, using empty result.";
      }
    }
    error = validate(params, result ?? {}) ?? error;

    return {
      status: "succeeded",
      inputs,
      process_data: processData,
      outputs: { __is_success: error ? 0 : 1, __reason: error, __usage: usage, ...transform(params, result ?? {}) },
      metadata: usageMetadata(usage),
      usage: nodeUsage(usage),
    };
  },
};

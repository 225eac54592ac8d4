// The `question-classifier` node (dsl-and-workflow §4.6; graphon
// `nodes/question_classifier/question_classifier_node.py`, Dify `template_prompts.py`). Prompt
// texts are Dify's, verbatim (Python `str.format` already applied: `{{` → `{`), so the model sees
// exactly what it sees under Dify. The chosen class id is the outgoing edge handle.
import type { ChatMessage, DifyUsage } from "../../models/index.js";
import type { GraphNode, NodeContext, NodeImplementation, NodeResult } from "../types.js";
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
  parseJsonMarkdown,
  readMemory,
  readModel,
  savedPrompts,
  usageFrom,
  usageMetadata,
  type Rec,
} from "./llm-common.js";

export const QUESTION_CLASSIFIER_SYSTEM_PROMPT = `
    ### Job Description',
    You are a text classification engine that analyzes text data and assigns categories based on user input or automatically determined categories.
    ### Task
    Your task is to assign one categories ONLY to the input text and only one category may be assigned returned in the output.Additionally, you need to extract the key words from the text that are related to the classification.
    ### Format
    The input text is in the variable input_text.Categories are specified as a category list with two filed category_id and category_name in the variable categories .Classification instructions may be included to improve the classification accuracy.
    ### Constraint
    DO NOT include anything other than the JSON array in your response.
    ### Memory
    Here is the chat histories between human and assistant, inside <histories></histories> XML tags.
    <histories>
    {histories}
    </histories>
`;

export const QUESTION_CLASSIFIER_USER_PROMPT_1 = `
    { "input_text": ["I recently had a great experience with your company. The service was prompt and the staff was very friendly."],
    "categories": [{"category_id":"f5660049-284f-41a7-b301-fd24176a711c","category_name":"Customer Service"},{"category_id":"8d007d06-f2c9-4be5-8ff6-cd4381c13c60","category_name":"Satisfaction"},{"category_id":"5fbbbb18-9843-466d-9b8e-b9bfbb9482c8","category_name":"Sales"},{"category_id":"23623c75-7184-4a2e-8226-466c2e4631e4","category_name":"Product"}],
    "classification_instructions": ["classify the text based on the feedback provided by customer"]}
`;

export const QUESTION_CLASSIFIER_ASSISTANT_PROMPT_1 = `
\`\`\`json
    {"keywords": ["recently", "great experience", "company", "service", "prompt", "staff", "friendly"],
    "category_id": "f5660049-284f-41a7-b301-fd24176a711c",
    "category_name": "Customer Service"}
\`\`\`
`;

export const QUESTION_CLASSIFIER_USER_PROMPT_2 = `
    {"input_text": ["bad service, slow to bring the food"],
    "categories": [{"category_id":"80fb86a0-4454-4bf5-924c-f253fdd83c02","category_name":"Food Quality"},{"category_id":"f6ff5bc3-aca0-4e4a-8627-e760d0aca78f","category_name":"Experience"},{"category_id":"cc771f63-74e7-4c61-882e-3eda9d8ba5d7","category_name":"Price"}],
    "classification_instructions": []}
`;

export const QUESTION_CLASSIFIER_ASSISTANT_PROMPT_2 = `
\`\`\`json
    {"keywords": ["bad service", "slow", "food", "tip", "terrible", "waitresses"],
    "category_id": "f6ff5bc3-aca0-4e4a-8627-e760d0aca78f",
    "category_name": "Experience"}
\`\`\`
`;

const userPrompt3 = (input: string, categories: string, instructions: string) => `
    '{"input_text": ["${input}"],',
    '"categories": ${categories}, ',
    '"classification_instructions": ["${instructions}"]}'
`;

const completionPrompt = (histories: string, input: string, categories: string, instructions: string) => `
### Job Description
You are a text classification engine that analyzes text data and assigns categories based on user input or automatically determined categories.
### Task
Your task is to assign one categories ONLY to the input text and only one category may be assigned returned in the output.  Additionally, you need to extract the key words from the text that are related to the classification.
### Format
The input text is in the variable input_text. Categories are specified as a category list  with two filed category_id and category_name in the variable categories. Classification instructions may be included to improve the classification accuracy.
### Constraint 
DO NOT include anything other than the JSON array in your response.
### Example
Here is the chat example between human and assistant, inside <example></example> XML tags.
<example>
User:{"input_text": ["I recently had a great experience with your company. The service was prompt and the staff was very friendly."], "categories": [{"category_id":"f5660049-284f-41a7-b301-fd24176a711c","category_name":"Customer Service"},{"category_id":"8d007d06-f2c9-4be5-8ff6-cd4381c13c60","category_name":"Satisfaction"},{"category_id":"5fbbbb18-9843-466d-9b8e-b9bfbb9482c8","category_name":"Sales"},{"category_id":"23623c75-7184-4a2e-8226-466c2e4631e4","category_name":"Product"}], "classification_instructions": ["classify the text based on the feedback provided by customer"]}
Assistant:{"keywords": ["recently", "great experience", "company", "service", "prompt", "staff", "friendly"],"category_id": "f5660049-284f-41a7-b301-fd24176a711c","category_name": "Customer Service"}
User:{"input_text": ["bad service, slow to bring the food"], "categories": [{"category_id":"80fb86a0-4454-4bf5-924c-f253fdd83c02","category_name":"Food Quality"},{"category_id":"f6ff5bc3-aca0-4e4a-8627-e760d0aca78f","category_name":"Experience"},{"category_id":"cc771f63-74e7-4c61-882e-3eda9d8ba5d7","category_name":"Price"}], "classification_instructions": []}
Assistant:{"keywords": ["bad service", "slow", "food", "tip", "terrible", "waitresses"],"category_id": "f6ff5bc3-aca0-4e4a-8627-e760d0aca78f","category_name": "Experience"}
</example> 
### Memory
Here is the chat histories between human and assistant, inside <histories></histories> XML tags.
<histories>
${histories}
</histories>
### User Input
{"input_text" : ["${input}"], "categories" : ${categories},"classification_instruction" : ["${instructions}"]}
### Assistant Output
`;

/** Python `json.dumps(obj, ensure_ascii=False)` for the categories list (", " and ": " separators). */
function pyDumpsCategories(categories: { category_id: string; category_name: string }[]): string {
  return `[${categories.map((c) => `{"category_id": ${JSON.stringify(c.category_id)}, "category_name": ${JSON.stringify(c.category_name)}}`).join(", ")}]`;
}

/** Dify `_strip_think_tags`. */
const stripThink = (s: string) => (s.includes("<think>") ? s.replace(/<think[^>]*>[\s\S]*?<\/think>/gi, "") : s);

export const questionClassifierNode: NodeImplementation = {
  types: ["question-classifier"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as Rec;
    const selector = asSelector(data.query_variable_selector);
    const raw = selector ? ctx.pool.get(selector) : undefined;
    const query = raw === undefined || raw === null ? null : raw;
    const inputs: Rec = { query };
    let usage: DifyUsage | null = null;
    try {
      const model = readModel(ctx, data);
      inputs.model_provider = model.provider ?? "";
      inputs.model_name = model.name;
      const instruction = ctx.pool.renderTemplate(asStr(data.instruction));
      const classes = ((data.classes as unknown[] | undefined) ?? []).map((c) => {
        const r = asRec(c);
        return { id: String(r.id ?? ""), name: asStr(r.name) };
      });
      if (classes.length === 0) throw new Error("No classes configured.");
      const categories = pyDumpsCategories(classes.map((c) => ({ category_id: c.id, category_name: c.name })));
      const input = typeof query === "string" ? query : query === null ? "" : ctx.pool.toText(query);

      const memory = readMemory(data);
      const history = memory ? await loadHistory(ctx, { windowSize: memory.rawWindowSize, budget: historyBudget(ctx, model) }) : [];
      const histories = historyText(history);

      const vision = asRec(data.vision);
      const configs = asRec(vision.configs);
      const detail: "low" | "high" = configs.detail === "low" ? "low" : "high";
      const files = vision.enabled === true ? fetchFiles(ctx, asSelector(configs.variable_selector)) : [];

      let messages: ChatMessage[];
      let prompt: string | undefined;
      if (model.mode === "completion") {
        prompt = completionPrompt(histories, input, categories, instruction);
        messages = [{ role: "user", content: prompt }];
      } else {
        const text = (t: string): ChatMessage["content"] => [{ type: "text", text: t }];
        messages = [
          { role: "system", content: text(QUESTION_CLASSIFIER_SYSTEM_PROMPT.replace("{histories}", histories)) },
          { role: "user", content: text(QUESTION_CLASSIFIER_USER_PROMPT_1) },
          { role: "assistant", content: text(QUESTION_CLASSIFIER_ASSISTANT_PROMPT_1) },
          { role: "user", content: text(QUESTION_CLASSIFIER_USER_PROMPT_2) },
          { role: "assistant", content: text(QUESTION_CLASSIFIER_ASSISTANT_PROMPT_2) },
          { role: "user", content: text(userPrompt3(input, categories, instruction)) },
        ];
        appendFileParts(messages, await filesToParts(ctx, files, detail));
        messages = finalizeMessages(messages, modelTraits(ctx, model).vision);
      }

      const result = await callModel(ctx, { model, messages: prompt !== undefined ? [] : messages, ...(prompt !== undefined ? { prompt } : {}) });
      usage = usageFrom(ctx, model, result.done);
      ctx.signal.throwIfAborted();

      // §4.6 steps 1–4: unparsable JSON fails; an unknown or missing category_id picks the first class.
      const parsed = parseJsonMarkdown(stripThink(result.text));
      let chosen = classes[0]!;
      if ("category_name" in parsed && "category_id" in parsed) {
        chosen = classes.find((c) => c.id === parsed.category_id) ?? chosen;
      }
      const className = ctx.pool.renderTemplate(chosen.name);

      return {
        status: "succeeded",
        inputs,
        process_data: {
          model_mode: model.mode,
          prompts: savedPrompts(model.mode, messages, prompt),
          usage,
          finish_reason: result.done.finishReason,
          model_provider: model.provider ?? "",
          model_name: model.name,
        },
        outputs: { class_name: className, class_id: chosen.id, usage },
        edgeSourceHandle: chosen.id,
        metadata: usageMetadata(usage),
        usage: nodeUsage(usage),
      };
    } catch (err) {
      return failed(err, { inputs, metadata: usageMetadata(usage), ...(usage ? { usage: nodeUsage(usage) } : {}) });
    }
  },
};

// `answer` (dsl-and-workflow §4.3): the template rendered with markdown rendering (§3.4.2),
// unresolved references kept as `node.var`; every referenced file value is collected into `files`.
import type { NodeImplementation } from "../types.js";
import { isFile, parseTemplate, renderMarkdown } from "../variable-pool.js";

export const answerNode: NodeImplementation = {
  types: ["answer"],
  async run(node, ctx) {
    const template = String(node.data.answer ?? "");
    const files: unknown[] = [];
    let answer = "";
    for (const seg of parseTemplate(template)) {
      if (seg.kind === "text") {
        answer += seg.text;
        continue;
      }
      const v = ctx.pool.get(seg.selector!);
      if (v === undefined) {
        answer += seg.text;
        continue;
      }
      answer += ctx.pool.toMarkdown ? ctx.pool.toMarkdown(v) : renderMarkdown(v);
      if (isFile(v)) files.push(v);
      else if (Array.isArray(v)) for (const x of v) if (isFile(x)) files.push(x);
    }
    return { status: "succeeded", inputs: {}, outputs: { answer, files } };
  },
};

// template-transform (dsl-and-workflow §4.9): Jinja2 over the declared aliases, bound to plain
// values (null when missing). `{{#…#}}` references are NOT resolved here. Render errors and output
// over the limit fail the node.
import { renderJinja2 } from "../jinja.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult } from "../types.js";

/** Dify's TEMPLATE_TRANSFORM_MAX_LENGTH (§3.10). */
export const TEMPLATE_TRANSFORM_MAX_LENGTH = 400_000;

interface VariableDecl {
  variable?: string;
  value_selector?: string[];
}

/** `{alias: value}` for a node's `variables` list (shared with jinja2 prompts); missing/falsy → null as Dify does. */
export function collectVariables(decls: unknown, ctx: NodeContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of Array.isArray(decls) ? (decls as VariableDecl[]) : []) {
    if (!d?.variable) continue;
    const v = Array.isArray(d.value_selector) ? ctx.pool.get(d.value_selector.map(String)) : undefined;
    out[d.variable] = v === undefined ? null : v;
  }
  return out;
}

export const templateTransformNode: NodeImplementation = {
  types: ["template-transform"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const variables = collectVariables(node.data.variables, ctx);
    const template = typeof node.data.template === "string" ? node.data.template : "";
    let output: string;
    try {
      output = renderJinja2(template, variables);
    } catch (e) {
      return { status: "failed", inputs: variables, error: e instanceof Error ? e.message : String(e), errorType: "TemplateTransformError" };
    }
    if (output.length > TEMPLATE_TRANSFORM_MAX_LENGTH) {
      throw new NodeError(`Output length exceeds ${TEMPLATE_TRANSFORM_MAX_LENGTH} characters`, "TemplateTransformError");
    }
    return { status: "succeeded", inputs: variables, outputs: { output } };
  },
};

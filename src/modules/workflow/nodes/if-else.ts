// if-else (dsl-and-workflow §4.7): cases are tested in order, the first true case's `case_id`
// is the selected handle, none → "false" (the ELSE port). The legacy shape (top-level
// `logical_operator` + `conditions`, §1.9) selects "true"/"false".
import { evaluateConditions, type Condition, type ConditionInput } from "../conditions.js";
import type { GraphNode, NodeContext, NodeImplementation, NodeResult } from "../types.js";

interface Case {
  case_id?: string;
  id?: string;
  logical_operator?: string;
  conditions?: Condition[];
}

export const ifElseNode: NodeImplementation = {
  types: ["if-else"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as GraphNode["data"] & { cases?: Case[] | null; conditions?: Condition[]; logical_operator?: string };
    const inputs: { conditions: ConditionInput[] } = { conditions: [] };
    const conditionResults: Record<string, unknown>[] = [];
    const processData = { condition_results: conditionResults };
    let finalResult = false;
    let selected = "false";
    try {
      if (Array.isArray(data.cases) && data.cases.length > 0) {
        for (const c of data.cases) {
          const r = evaluateConditions(c.conditions ?? [], c.logical_operator, ctx.pool);
          inputs.conditions = r.inputs; // Dify records the last evaluated case only
          finalResult = r.finalResult;
          conditionResults.push({ group: c, results: r.results, final_result: r.finalResult });
          if (r.finalResult) {
            selected = String(c.case_id ?? c.id ?? "true");
            break;
          }
        }
      } else {
        const r = evaluateConditions(data.conditions ?? [], data.logical_operator, ctx.pool);
        inputs.conditions = r.inputs;
        finalResult = r.finalResult;
        selected = r.finalResult ? "true" : "false";
        conditionResults.push({ group: "default", results: r.results, final_result: r.finalResult });
      }
    } catch (e) {
      return { status: "failed", inputs, process_data: processData, error: e instanceof Error ? e.message : String(e), errorType: "ConditionError" };
    }
    return {
      status: "succeeded",
      inputs,
      process_data: processData,
      outputs: { result: finalResult, selected_case_id: selected },
      edgeSourceHandle: selected,
    };
  },
};

// variable-aggregator (dsl-and-workflow §4.11), also served under its legacy type name
// `variable-assigner` (§1.9): the first selector, in list order, that exists in the pool wins —
// typically the output of whichever branch ran. Nothing found → empty outputs, not a failure.
import type { GraphNode, NodeContext, NodeImplementation, NodeResult } from "../types.js";

interface Group {
  group_name?: string;
  variables?: string[][];
}

interface AggregatorData {
  variables?: string[][];
  advanced_settings?: { group_enabled?: boolean; groups?: Group[] } | null;
}

const selectors = (v: unknown): string[][] => (Array.isArray(v) ? v.filter(Array.isArray).map((s: unknown[]) => s.map(String)) : []);

export const variableAggregatorNode: NodeImplementation = {
  types: ["variable-aggregator", "variable-assigner"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const data = node.data as GraphNode["data"] & AggregatorData;
    const inputs: Record<string, unknown> = {};
    const outputs: Record<string, unknown> = {};
    const firstFound = (list: string[][]): [string[], unknown] | null => {
      for (const sel of list) {
        const v = ctx.pool.get(sel);
        if (v !== undefined) return [sel, v];
      }
      return null;
    };
    if (!data.advanced_settings?.group_enabled) {
      const hit = firstFound(selectors(data.variables));
      if (hit) {
        outputs.output = hit[1];
        inputs[hit[0].slice(1).join(".")] = hit[1];
      }
    } else {
      // Grouped: `[agg, <group_name>, output]` downstream (§4.11).
      for (const g of data.advanced_settings.groups ?? []) {
        const hit = firstFound(selectors(g.variables));
        if (hit) {
          outputs[String(g.group_name ?? "")] = { output: hit[1] };
          inputs[hit[0].slice(1).join(".")] = hit[1];
        }
      }
    }
    return { status: "succeeded", inputs, outputs };
  },
};

// `end` (dsl-and-workflow §4.2): each output reads its selector; missing → null. Streaming of its
// values as text_chunk is the engine's response coordinator (§3.7).
import type { NodeImplementation } from "../types.js";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export const endNode: NodeImplementation = {
  types: ["end"],
  async run(node, ctx) {
    const outputs: Record<string, unknown> = {};
    for (const o of (Array.isArray(node.data.outputs) ? node.data.outputs : []).filter(isObj)) {
      const sel = Array.isArray(o.value_selector) ? o.value_selector.map(String) : [];
      const v = sel.length >= 2 ? ctx.pool.get(sel) : undefined;
      outputs[String(o.variable ?? "")] = v === undefined ? null : v;
    }
    return { status: "succeeded", inputs: { ...outputs }, outputs };
  },
};

// `start` (dsl-and-workflow §4.1): the user inputs were validated before the run and put at
// [start_id, variable]; the node checks json_object inputs and republishes the whole pool's
// sys/env/conversation values under dotted keys, so legacy `[start_id, "sys.query"]` selectors work.
import { NodeError, type NodeImplementation } from "../types.js";
import { VariablePoolImpl } from "../variable-pool.js";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export const startNode: NodeImplementation = {
  types: ["start"],
  async run(node, ctx) {
    const inputs: Record<string, unknown> = {};
    const pool = ctx.pool;
    const declared = (Array.isArray(node.data.variables) ? node.data.variables : []).filter(isObj);
    if (pool instanceof VariablePoolImpl) {
      for (const [k, v] of pool.entries(node.id)) if (!k.includes(".")) inputs[k] = v;
    } else {
      for (const v of declared) {
        const name = String(v.variable ?? "");
        const value = pool.get([node.id, name]);
        if (value !== undefined) inputs[name] = value;
      }
    }
    for (const v of declared) {
      if (v.type !== "json_object") continue;
      const name = String(v.variable ?? "");
      const value = inputs[name];
      if (value === undefined || value === null || value === "") {
        if (v.required === true) throw new NodeError(`${name} is required in input form`, "ValueError");
        continue;
      }
      // Form values may still be JSON text (the form validator keeps strings as given).
      let parsed = value;
      if (typeof value === "string") {
        try {
          parsed = JSON.parse(value);
        } catch {
          throw new NodeError(`${name} must be a JSON object`, "ValueError");
        }
      }
      if (!isObj(parsed)) throw new NodeError(`${name} must be a JSON object`, "ValueError");
      inputs[name] = parsed;
    }
    const flat = pool instanceof VariablePoolImpl ? pool.flattenNamespaces() : {};
    return { status: "succeeded", inputs, outputs: { ...inputs, ...flat } };
  },
};

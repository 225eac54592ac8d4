// The node registry: data.type → implementation (dsl-and-workflow §4). Each node file exports one
// NodeImplementation; add it here with one import and one list entry.
import type { NodeImplementation } from "../types.js";

const implementations: NodeImplementation[] = [];

const byType = new Map<string, NodeImplementation>();
for (const impl of implementations) for (const t of impl.types) byType.set(t, impl);

export function nodeImplementation(type: string): NodeImplementation | undefined {
  return byType.get(type);
}

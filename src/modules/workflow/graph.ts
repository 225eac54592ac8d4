// Graph parsing (dsl-and-workflow §3.1–§3.3): nodes without the UI-only custom-note, edges with
// their source handles, and the sub-graph reachable from a root (the start node, or a container's
// start_node_id for iteration/loop child runs).
import type { GraphNode } from "./types.js";

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** "source" by default; `success-branch` is read as `source` (§3.2). */
  handle: string;
}

export interface Graph {
  nodes: Map<string, GraphNode>;
  edges: GraphEdge[];
  outgoing: Map<string, GraphEdge[]>;
  incoming: Map<string, GraphEdge[]>;
}

export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GraphError";
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseGraph(raw: unknown): Graph {
  const g = isObj(raw) ? raw : {};
  const nodes = new Map<string, GraphNode>();
  for (const n of Array.isArray(g.nodes) ? g.nodes : []) {
    if (!isObj(n) || typeof n.id !== "string" || !isObj(n.data)) continue;
    // custom-note nodes are UI annotations (data.type ""), never executed (§3.1).
    if (n.type === "custom-note" || typeof n.data.type !== "string" || n.data.type === "") continue;
    nodes.set(n.id, {
      id: n.id,
      ...(typeof n.type === "string" ? { type: n.type } : {}),
      ...(typeof n.parentId === "string" ? { parentId: n.parentId } : {}),
      data: n.data as GraphNode["data"],
    });
  }
  const edges: GraphEdge[] = [];
  const outgoing = new Map<string, GraphEdge[]>();
  const incoming = new Map<string, GraphEdge[]>();
  let i = 0;
  for (const e of Array.isArray(g.edges) ? g.edges : []) {
    // Edges whose ends are not strings are ignored (§3.2).
    if (!isObj(e) || typeof e.source !== "string" || typeof e.target !== "string") continue;
    // An edge touching a note (or an unknown node) cannot run; notes are never connected in practice.
    if (!nodes.has(e.source) || !nodes.has(e.target)) throw new GraphError(`Edge references an unknown node: ${e.source} -> ${e.target}`);
    let handle = typeof e.sourceHandle === "string" && e.sourceHandle !== "" ? e.sourceHandle : "source";
    if (handle === "success-branch") handle = "source";
    const edge: GraphEdge = { id: typeof e.id === "string" ? e.id : `edge-${i}`, source: e.source, target: e.target, handle };
    i++;
    edges.push(edge);
    (outgoing.get(edge.source) ?? outgoing.set(edge.source, []).get(edge.source)!).push(edge);
    (incoming.get(edge.target) ?? incoming.set(edge.target, []).get(edge.target)!).push(edge);
  }
  return { nodes, edges, outgoing, incoming };
}

/** The node ids reachable from `root` along edges (a run never schedules anything else, §3.3, §3.6). */
export function reachableFrom(graph: Graph, root: string): Set<string> {
  const seen = new Set<string>([root]);
  const stack = [root];
  while (stack.length) {
    const id = stack.pop()!;
    for (const e of graph.outgoing.get(id) ?? []) {
      if (!seen.has(e.target)) {
        seen.add(e.target);
        stack.push(e.target);
      }
    }
  }
  return seen;
}

export function findStartNode(graph: Graph): GraphNode | undefined {
  // Only top-level start nodes root the run (a start node never sits inside a container).
  return [...graph.nodes.values()].find((n) => n.data.type === "start" && !n.data.iteration_id && !n.data.loop_id);
}

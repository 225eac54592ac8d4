// Citations of a graph run (apps spec §7.1, §7.3; dsl-and-workflow §1.4 `retriever_resource`):
// the knowledge-retrieval nodes' citations merged the way Dify's MessageCycleManager
// `handle_retriever_resources` merges each retriever-resources event into the task state —
// a later citation of a (dataset_id, document_id) pair already cited is dropped, then every kept
// citation is renumbered `position` 1..n in order.

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `features.retriever_resource.enabled === true` of a workflow's features object. */
export function citationsEnabled(features: unknown): boolean {
  return isObj(features) && isObj(features.retriever_resource) && features.retriever_resource.enabled === true;
}

/** Merges the per-node citation lists (in the order the nodes finished) into message_end's list. */
export function mergeCitations(batches: Record<string, unknown>[][]): Record<string, unknown>[] {
  const merged: Record<string, unknown>[] = [];
  const seen = new Set<string>();
  const keyOf = (r: Record<string, unknown>) => (r.dataset_id && r.document_id ? `${String(r.dataset_id)}\u0000${String(r.document_id)}` : null);
  for (const batch of batches) {
    for (const r of batch) {
      if (!isObj(r)) continue;
      const key = keyOf(r);
      if (key && seen.has(key)) continue;
      merged.push({ ...r });
      if (key) seen.add(key);
    }
  }
  merged.forEach((r, i) => {
    r.position = i + 1;
  });
  return merged;
}

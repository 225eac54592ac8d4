// The node registry: data.type → implementation (dsl-and-workflow §4). Each node file exports one
// NodeImplementation; add it here with one import and one list entry.
import type { NodeImplementation } from "../types.js";
import { answerNode } from "./answer.js";
import { endNode } from "./end.js";
import { startNode } from "./start.js";
import { assignerNode } from "./assigner.js";
import { documentExtractorNode } from "./document-extractor.js";
import { httpRequestNode } from "./http-request.js";
import { ifElseNode } from "./if-else.js";
import { listOperatorNode } from "./list-operator.js";
import { templateTransformNode } from "./template-transform.js";
import { variableAggregatorNode } from "./variable-aggregator.js";
import { llmNode } from "./llm.js";
import { questionClassifierNode } from "./question-classifier.js";
import { parameterExtractorNode } from "./parameter-extractor.js";
import { knowledgeRetrievalNode } from "./knowledge-retrieval.js";
import { codeNode } from "./code.js";

const implementations: NodeImplementation[] = [
  startNode,
  endNode,
  answerNode,
  ifElseNode,
  templateTransformNode,
  httpRequestNode,
  variableAggregatorNode,
  assignerNode,
  documentExtractorNode,
  listOperatorNode,
  llmNode,
  questionClassifierNode,
  parameterExtractorNode,
  knowledgeRetrievalNode,
  codeNode,
];

const byType = new Map<string, NodeImplementation>();
for (const impl of implementations) for (const t of impl.types) byType.set(t, impl);

export function nodeImplementation(type: string): NodeImplementation | undefined {
  return byType.get(type);
}

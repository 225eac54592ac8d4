// document-extractor (dsl-and-workflow §4.18): the text of a file or a file list. Extraction itself
// is a service (ctx.services.extractText, the knowledge-base extractors); without it the node fails
// with a clear message rather than producing empty text.
import { isFile } from "../variable-pool.js";
import { NodeError, type GraphNode, type NodeContext, type NodeImplementation, type NodeResult, type WorkflowFile } from "../types.js";

export const documentExtractorNode: NodeImplementation = {
  types: ["document-extractor"],
  async run(node: GraphNode, ctx: NodeContext): Promise<NodeResult> {
    const selector = Array.isArray(node.data.variable_selector) ? (node.data.variable_selector as unknown[]).map(String) : [];
    const value = ctx.pool.get(selector);
    const selText = `[${selector.map((s) => `'${s}'`).join(", ")}]`;
    if (value === undefined) throw new NodeError(`File variable not found for selector: ${selText}`, "DocumentExtractorError");
    const isList = Array.isArray(value);
    if (isList ? !value.every(isFile) : !isFile(value)) {
      throw new NodeError(value === null ? `Unsupported variable type: <class 'NoneType'>` : `Variable ${selText} is not an ArrayFileSegment`, "DocumentExtractorError");
    }
    const files = (isList ? value : [value]) as WorkflowFile[];
    const inputs = { variable_selector: selector };
    const processData = { documents: files };
    const extract = ctx.services.extractText;
    if (!extract && files.length > 0) {
      return { status: "failed", inputs, process_data: processData, error: "Document extraction is not available: no text extractor is configured", errorType: "DocumentExtractorError" };
    }
    try {
      const texts: string[] = [];
      for (const f of files) texts.push(await extract!(f));
      return { status: "succeeded", inputs, process_data: processData, outputs: { text: isList ? texts : texts[0]! } };
    } catch (e) {
      return { status: "failed", inputs, process_data: processData, error: e instanceof Error ? e.message : String(e), errorType: "DocumentExtractorError" };
    }
  },
};

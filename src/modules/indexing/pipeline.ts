// The document indexing pipeline (datasets spec §11): extract → clean → split → index one
// document, with the state machine and timestamps `indexing-status` reports (§11.1):
//   parsing   processing_started_at
//   splitting parsing_completed_at, word_count = Σ characters extracted
//   indexing  cleaning_completed_at = splitting_completed_at (same instant), word_count = Σ chunks;
//             segments inserted (status indexing, indexing_at, enabled=false)
//   completed tokens, completed_at, indexing_latency (load phase only), error = null;
//             segments completed + enabled
//   error     error, stopped_at
// Idempotent (§11.8): the document's previous segments, child chunks and vectors are deleted in
// the same transaction that inserts the new segments, under a per-document advisory lock, so a
// re-run or a retried job never leaves duplicates. Transient model errors are rethrown for the
// queue to retry (until the last attempt); anything else ends the document in `error`.
import { Prisma } from "../../generated/prisma/client.js";
import type { Config } from "../../config/index.js";
import { DifyError } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { PrismaClient } from "../../lib/prisma.js";
import type { Storage } from "../../lib/storage.js";
import { countTokens, isRetryableModelError, type Models } from "../models/index.js";
import { deleteEmbeddingsByDocument } from "../retrieval/vector-store.js";
import { cpLen } from "./clean.js";
import { ExtractionError, extractUnits } from "./extract/index.js";
import { indexSegments } from "./index-ops.js";
import {
  qaChunks,
  qaSourceChunks,
  qaSystemPrompt,
  parseQaPairs,
  transformHierarchical,
  transformParagraph,
  wordCount,
  type Chunk,
  type ProcessRule,
} from "./split.js";

export interface PipelineDeps {
  prisma: PrismaClient;
  models: Models;
  config: Config;
  logger: Logger;
  storage: Storage;
}

export interface PipelineJob {
  datasetId: string;
  documentId: string;
  action?: "index" | "reindex" | undefined;
}

export interface PipelineOptions {
  /** False while the queue will retry: transient model errors are then rethrown instead of stored. */
  lastAttempt?: boolean | undefined;
  /** Test hook: called after each state change (e.g. to simulate a worker killed mid-way). */
  onStep?: ((step: "parsing" | "splitting" | "indexing" | "completed") => void | Promise<void>) | undefined;
}

/** Test hook (in-process workers only): used when a run is given no `onStep`. */
export const indexingTestHooks: Pick<PipelineOptions, "onStep"> = {};

/** Wraps what a test hook threw: it escapes the pipeline's error handling, as a crashed worker would. */
class HookCrash extends Error {
  override readonly name = "HookCrash";
}

/** Ends the run quietly: the document was deleted or paused meanwhile (Dify's DocumentIsPausedError / DocumentIsDeletedPausedError). */
class Interrupted extends Error {
  override readonly name = "Interrupted";
}

/** Dify's default system model stand-in for Q&A generation (the tenant's default LLM in Dify, §11.5). */
const QA_FALLBACK_MODEL = { provider: "langgenius/openai/openai", name: "gpt-4o-mini" };
/** Dify generates Q&A for up to 10 chunks concurrently (§11.5). */
const QA_CONCURRENCY = 10;

const now = () => new Date();

function errorMessage(err: unknown): string {
  if (err instanceof DifyError) return err.message;
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export async function runIndexingPipeline(deps: PipelineDeps, job: PipelineJob, opts: PipelineOptions = {}): Promise<void> {
  const log = deps.logger.child({ documentId: job.documentId, datasetId: job.datasetId });
  const { prisma } = deps;
  const hook = opts.onStep ?? indexingTestHooks.onStep;
  const reached = async (s: Parameters<NonNullable<PipelineOptions["onStep"]>>[0]) => {
    try {
      await hook?.(s);
    } catch (err) {
      throw new HookCrash("test hook", { cause: err });
    }
  };

  /** Writes a step, unless the document is gone or paused (then the run stops). */
  const step = async (data: Prisma.DocumentUpdateManyMutationInput) => {
    const n = await prisma.document.updateMany({ where: { id: job.documentId, is_paused: false }, data });
    if (n.count === 0) throw new Interrupted("document deleted or paused");
  };

  try {
    const document = await prisma.document.findFirst({ where: { id: job.documentId, dataset_id: job.datasetId } });
    if (!document) {
      log.info("document no longer exists; nothing to index");
      return;
    }
    if (document.is_paused) {
      log.info("document is paused; indexing skipped");
      return;
    }
    const dataset = await prisma.dataset.findUnique({ where: { id: job.datasetId } });
    if (!dataset) return;

    if (job.action === "reindex") {
      await reindexExisting(deps, document.id, dataset.id);
      return;
    }

    // parsing
    await step({ indexing_status: "parsing", processing_started_at: now(), error: null, stopped_at: null });
    await reached("parsing");
    const rule = await loadRule(prisma, document.dataset_process_rule_id, dataset.id);
    const units = await loadUnits(deps, document);

    // splitting (Dify never persists `cleaning`, §11.1)
    await step({ indexing_status: "splitting", parsing_completed_at: now(), word_count: units.reduce((n, u) => n + cpLen(u), 0) });
    await reached("splitting");
    const split = { maxLength: deps.config.INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH };
    let chunks: Chunk[];
    if (document.doc_form === "hierarchical_model") chunks = transformHierarchical(units, rule, split);
    else if (document.doc_form === "qa_model") chunks = await generateQa(deps, qaSourceChunks(units, rule, split), document.doc_language ?? "English", log);
    else chunks = transformParagraph(units, rule, split);

    const highQuality = dataset.indexing_technique === "high_quality";
    const tokens = highQuality ? await Promise.all(chunks.map((c) => countTokens(c.content))) : chunks.map(() => 0);
    const segmentIds = await replaceSegments(deps, { document, chunks, tokens });
    await reached("indexing");

    // load: vectors / keywords + full text (§11.7)
    const started = performance.now();
    await indexSegments(deps, { datasetId: dataset.id, segmentIds });
    const latency = (performance.now() - started) / 1000;
    // By document, not by id list: a 100k-id list would exceed Postgres' parameter limit.
    await prisma.documentSegment.updateMany({ where: { document_id: document.id }, data: { enabled: true } });
    await step({
      indexing_status: "completed",
      tokens: tokens.reduce((a, b) => a + b, 0),
      completed_at: now(),
      indexing_latency: latency,
      error: null,
      stopped_at: null,
    });
    await reached("completed");
    log.info({ segments: segmentIds.length, latency }, "document indexed");
  } catch (err) {
    if (err instanceof HookCrash) throw err.cause;
    if (err instanceof Interrupted) {
      // A deleted document leaves no vectors behind (its rows cascade with it).
      const exists = await prisma.document.count({ where: { id: job.documentId } });
      if (!exists) await deleteEmbeddingsByDocument(prisma, job.documentId);
      log.info({ reason: err.message }, "indexing stopped");
      return;
    }
    if (isRetryableModelError(err) && opts.lastAttempt === false) {
      log.warn({ err }, "transient model error; the job will be retried");
      throw err;
    }
    log.warn({ err }, "indexing failed");
    await prisma.document.updateMany({
      where: { id: job.documentId },
      data: { indexing_status: "error", error: errorMessage(err), stopped_at: now() },
    });
  }
}

/** The document's rule; a missing rule row means the automatic rules (§5.2 "else a new automatic rule"). */
async function loadRule(prisma: PrismaClient, ruleId: string | null, datasetId: string): Promise<ProcessRule> {
  const row = ruleId
    ? await prisma.datasetProcessRule.findUnique({ where: { id: ruleId } })
    : await prisma.datasetProcessRule.findFirst({ where: { dataset_id: datasetId }, orderBy: { created_at: "desc" } });
  if (!row) return { mode: "automatic" };
  const mode = row.mode === "custom" || row.mode === "hierarchical" ? row.mode : "automatic";
  return { mode, rules: (row.rules ?? null) as ProcessRule["rules"] };
}

/**
 * The document's text units from its uploaded file (§11.2): `data_source_info.upload_file_id`
 * (or the `upload_file_id` column) → `upload_files` row → bytes in storage. Create-by-text stores
 * the text as a `.txt` upload, which extracts to exactly that text.
 */
async function loadUnits(deps: PipelineDeps, document: { data_source_info: unknown; upload_file_id: string | null }): Promise<string[]> {
  const info = (document.data_source_info ?? {}) as Record<string, unknown>;
  const fileId = typeof info.upload_file_id === "string" ? info.upload_file_id : document.upload_file_id;
  if (!fileId) throw new ExtractionError("Upload file id not found in document data source info.");
  const file = await deps.prisma.uploadFile.findUnique({ where: { id: fileId } });
  if (!file) throw new ExtractionError("UploadFile not found.");
  const data = await deps.storage.load(file.key);
  return extractUnits({ data, extension: file.extension, mimeType: file.mime_type, name: file.name });
}

/** Q&A generation (§11.5): each chunk → the LLM → Q/A pairs; failing chunks produce nothing. */
async function generateQa(deps: PipelineDeps, sources: string[], language: string, log: Logger): Promise<Chunk[]> {
  const model = deps.models.systemModel(QA_FALLBACK_MODEL);
  const results: Chunk[][] = new Array(sources.length);
  let next = 0;
  const worker = async () => {
    while (next < sources.length) {
      const i = next++;
      try {
        const res = await deps.models.chat({
          model: { ...model, completion_params: { temperature: 0.01, max_tokens: 2000 } },
          messages: [
            { role: "system", content: qaSystemPrompt(language) },
            { role: "user", content: sources[i]! },
          ],
        });
        results[i] = qaChunks(parseQaPairs(res.text));
      } catch (err) {
        log.warn({ err, chunk: i }, "Q&A generation failed for a chunk; it is skipped");
        results[i] = [];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(QA_CONCURRENCY, sources.length) }, worker));
  // Dify appends pairs as threads finish; source order is kept here so results are reproducible.
  return results.flat();
}

/**
 * One transaction, under a per-document advisory lock: delete the previous segments, child chunks
 * and vectors, insert the new segments (status `indexing`, disabled until loaded) and children, and
 * move the document to `indexing`.
 */
async function replaceSegments(
  deps: PipelineDeps,
  args: { document: { id: string; tenant_id: string; dataset_id: string; created_by: string | null }; chunks: Chunk[]; tokens: number[] },
): Promise<string[]> {
  const { document, chunks, tokens } = args;
  return deps.prisma.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`document-indexing:${document.id}`}, 0))`;
      await deleteEmbeddingsByDocument(tx, document.id);
      await tx.childChunk.deleteMany({ where: { document_id: document.id } });
      await tx.documentSegment.deleteMany({ where: { document_id: document.id } });
      const at = now();
      const segmentIds: string[] = [];
      const children: Prisma.ChildChunkCreateManyInput[] = [];
      const segments: Prisma.DocumentSegmentCreateManyInput[] = chunks.map((c, i) => {
        const id = crypto.randomUUID();
        segmentIds.push(id);
        (c.children ?? []).forEach((child, j) =>
          children.push({
            tenant_id: document.tenant_id,
            dataset_id: document.dataset_id,
            document_id: document.id,
            segment_id: id,
            position: j + 1,
            content: child.content,
            word_count: cpLen(child.content),
            index_node_id: child.indexNodeId,
            index_node_hash: child.indexNodeHash,
            type: "automatic",
            created_by: document.created_by,
            indexing_at: at,
          }),
        );
        return {
          id,
          tenant_id: document.tenant_id,
          dataset_id: document.dataset_id,
          document_id: document.id,
          position: i + 1,
          content: c.content,
          answer: c.answer ?? null,
          // §11.6: the pipeline's QA word_count is the question only.
          word_count: wordCount(c.content),
          tokens: tokens[i] ?? 0,
          index_node_id: c.indexNodeId,
          index_node_hash: c.indexNodeHash,
          enabled: false,
          status: "indexing",
          indexing_at: at,
          created_by: document.created_by,
        };
      });
      if (segments.length) await tx.documentSegment.createMany({ data: segments });
      if (children.length) await tx.childChunk.createMany({ data: children });
      const n = await tx.document.updateMany({
        where: { id: document.id, is_paused: false },
        data: {
          indexing_status: "indexing",
          cleaning_completed_at: at,
          splitting_completed_at: at,
          word_count: segments.reduce((s, x) => s + x.word_count, 0),
        },
      });
      if (n.count === 0) throw new Interrupted("document deleted or paused");
      return segmentIds;
    },
    // The replacement is one transaction (no reader ever sees half of it), so it must be allowed
    // to last as long as inserting a very large document takes: 2 minutes plus 5 ms a chunk.
    { timeout: 120_000 + args.chunks.length * 5 },
  );
}

/** `reindex`: re-embed the document's current segments (embedding model change, §11.9). */
async function reindexExisting(deps: PipelineDeps, documentId: string, datasetId: string): Promise<void> {
  const segs = await deps.prisma.documentSegment.findMany({
    where: { document_id: documentId, status: { in: ["completed", "indexing", "error"] }, enabled: true },
    select: { id: true },
  });
  await indexSegments(deps, { datasetId, segmentIds: segs.map((s) => s.id) });
}

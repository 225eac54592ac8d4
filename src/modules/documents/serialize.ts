// Document response bodies, built field by field in Dify's key order:
// list/create/update form (datasets spec §3.3), detail form (§5.7), indexing-status item (§3.5).
import type { Document, DatasetProcessRule, UploadFile } from "../../generated/prisma/client.js";
import { PyFloat } from "../../lib/pyjson.js";
import { toUnix } from "../../lib/time.js";
import { DEFAULT_PROCESS_RULE } from "./process-rule.js";

export interface DocMetadataItem {
  id: string;
  name: string;
  type: string;
  value: unknown;
}

/** §3.3 display_status; the order of the checks matters. */
export function displayStatus(d: Pick<Document, "is_paused" | "indexing_status" | "archived" | "enabled">): string | null {
  const s = d.indexing_status;
  if (d.is_paused && s !== "completed" && s !== "error") return "paused";
  if (s === "waiting") return "queuing";
  if (s === "parsing" || s === "cleaning" || s === "splitting" || s === "indexing") return "indexing";
  if (s === "error") return "error";
  if (s === "completed" && !d.archived && d.enabled) return "available";
  if (s === "completed" && !d.archived && !d.enabled) return "disabled";
  if (s === "completed" && d.archived) return "archived";
  return null;
}

/** Python `str(float)` of a datetime's timestamp (built-in metadata values, §3.3). */
export function pyFloatTs(d: Date): string {
  const s = String(d.getTime() / 1000);
  return s.includes(".") ? s : `${s}.0`;
}

/** Float seconds (upload-file `created_at` is a float in Dify, §1.3). */
export const floatTs = (d: Date): PyFloat => new PyFloat(d.getTime() / 1000);

/**
 * `tokens`/`word_count` are null on a document the pipeline has not touched yet (§5.3); the
 * columns are NOT NULL with default 0, so "never processed and still zero" stands for null.
 */
function countOrNull(d: Document, v: number): number | null {
  const untouched = d.processing_started_at === null && d.completed_at === null && d.word_count === 0 && d.tokens === 0;
  return untouched ? null : v;
}

export function uploadFileDetail(f: UploadFile) {
  return {
    id: f.id,
    name: f.name,
    size: f.size,
    extension: f.extension,
    mime_type: f.mime_type,
    created_by: f.created_by,
    created_at: floatTs(f.created_at),
  };
}

function dataSourceInfo(d: Document): Record<string, unknown> {
  const v = d.data_source_info;
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function dataSourceDetail(d: Document, file: UploadFile | null): Record<string, unknown> {
  if (d.data_source_type === "upload_file") return file ? { upload_file: uploadFileDetail(file) } : {};
  if (d.data_source_type === "notion_import" || d.data_source_type === "website_crawl") return dataSourceInfo(d);
  return {};
}

export interface DocumentExtras {
  uploadFile: UploadFile | null;
  hitCount: number;
  docMetadata: DocMetadataItem[];
}

/** §3.3 DocumentResponse (list, create, update). */
export function documentItem(d: Document, x: DocumentExtras) {
  return {
    id: d.id,
    position: d.position,
    data_source_type: d.data_source_type,
    data_source_info: dataSourceInfo(d),
    data_source_detail_dict: dataSourceDetail(d, x.uploadFile),
    dataset_process_rule_id: d.dataset_process_rule_id,
    name: d.name,
    created_from: d.created_from,
    created_by: d.created_by,
    created_at: toUnix(d.created_at),
    tokens: countOrNull(d, d.tokens),
    indexing_status: d.indexing_status,
    error: d.error,
    enabled: d.enabled,
    disabled_at: toUnix(d.disabled_at),
    disabled_by: d.disabled_by,
    archived: d.archived,
    display_status: displayStatus(d),
    word_count: countOrNull(d, d.word_count),
    hit_count: x.hitCount,
    doc_form: d.doc_form,
    doc_metadata: x.docMetadata,
    // Summary indexes are not implemented: Dify fills this only when the dataset enables them.
    summary_index_status: null,
    need_summary: d.need_summary,
  };
}

export interface DetailExtras extends DocumentExtras {
  datasetRule: DatasetProcessRule | null;
  documentRule: DatasetProcessRule | null;
  segmentCount: number;
}

/** §5.7 detail form for `metadata=all|only|without`. */
export function documentDetail(d: Document, x: DetailExtras, metadata: "all" | "only" | "without") {
  // Detail renders `doc_metadata` null when there is nothing (unlike the list form's []).
  const docMetadata = x.docMetadata.length ? x.docMetadata : null;
  if (metadata === "only") return { id: d.id, doc_type: d.doc_type, doc_metadata: docMetadata };
  const datasetRule = x.datasetRule ? { mode: x.datasetRule.mode, rules: x.datasetRule.rules ?? {} } : DEFAULT_PROCESS_RULE;
  const documentRule = x.documentRule
    ? { id: x.documentRule.id, dataset_id: x.documentRule.dataset_id, mode: x.documentRule.mode, rules: x.documentRule.rules ?? {} }
    : {};
  const head = {
    id: d.id,
    position: d.position,
    data_source_type: d.data_source_type,
    // The detail form shows the detail dict here (§5.7), not `{upload_file_id}`.
    data_source_info: dataSourceDetail(d, x.uploadFile),
    dataset_process_rule_id: d.dataset_process_rule_id,
    dataset_process_rule: datasetRule,
    document_process_rule: documentRule,
    name: d.name,
    created_from: d.created_from,
    created_by: d.created_by,
    created_at: toUnix(d.created_at),
    tokens: countOrNull(d, d.tokens),
    indexing_status: d.indexing_status,
    completed_at: toUnix(d.completed_at),
    updated_at: toUnix(d.updated_at),
    indexing_latency: d.indexing_latency === null ? null : new PyFloat(d.indexing_latency),
    error: d.error,
    enabled: d.enabled,
    disabled_at: toUnix(d.disabled_at),
    disabled_by: d.disabled_by,
    archived: d.archived,
  };
  const tail = {
    segment_count: x.segmentCount,
    average_segment_length: x.segmentCount ? Math.floor(d.word_count / x.segmentCount) : 0,
    hit_count: x.hitCount,
    display_status: displayStatus(d),
    doc_form: d.doc_form,
    doc_language: d.doc_language,
    summary_index_status: null,
    need_summary: d.need_summary ?? false,
  };
  if (metadata === "without") return { ...head, ...tail };
  return { ...head, doc_type: d.doc_type, doc_metadata: docMetadata, ...tail };
}

/** §3.5 DocumentStatusResponse. */
export function documentStatusItem(d: Document, completedSegments: number, totalSegments: number) {
  return {
    id: d.id,
    indexing_status: d.is_paused ? "paused" : d.indexing_status,
    processing_started_at: toUnix(d.processing_started_at),
    parsing_completed_at: toUnix(d.parsing_completed_at),
    cleaning_completed_at: toUnix(d.cleaning_completed_at),
    splitting_completed_at: toUnix(d.splitting_completed_at),
    completed_at: toUnix(d.completed_at),
    paused_at: toUnix(d.paused_at),
    error: d.error,
    stopped_at: toUnix(d.stopped_at),
    completed_segments: completedSegments,
    total_segments: totalSegments,
  };
}

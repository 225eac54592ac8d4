// The GET /v1/messages item (apps spec §8.2, newest key order) and its parts: message files with
// signed URLs, the end user's own feedback, agent thoughts, citations re-shaped per §7.3, and
// Python-formatted decimal prices. Built field by field; never a Prisma row.
import { randomUUID } from "node:crypto";
import path from "node:path";
import type { Message, MessageAgentThought, MessageFile, UploadFile } from "../../generated/prisma/client.js";
import { toUnix } from "../../lib/time.js";
import { mimeFromName } from "../files/service.js";
import { Decimal } from "../models/decimal.js";

/** Signs a link to an uploaded file (`services.files.signedUrl`). */
export type FileSigner = (fileId: string) => string;

type DecimalLike = { toFixed(dp: number): string } | number | string;

/**
 * Python `str(Decimal)` of a NUMERIC(p, scale) column value as the database returns it (always
 * `scale` fractional digits): `"0.0010330"`, and the quirk `"0E-7"` for a zero (apps spec §7.2,
 * §16.3). Prisma's Decimal drops trailing zeros, so the scale is re-applied first.
 */
export function pyDecimal(value: DecimalLike, scale = 7): string {
  const fixed = typeof value === "object" ? value.toFixed(scale) : Number(value).toFixed(scale);
  return Decimal.parse(fixed).toString();
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Stored `inputs` (message or conversation) with file values re-signed: Dify rebuilds stored file
 * mappings into File objects on every read, so the `url` of a local/tool file is fresh.
 * Objects marked `dify_model_identity: "__dify__file__"` keep their stored keys; only `url` changes.
 * TODO: raw request mappings ({type, transfer_method, upload_file_id}) are returned as stored until
 * the generation runtime settles how it persists file inputs.
 */
export function renderInputs(value: unknown, sign: FileSigner): unknown {
  if (Array.isArray(value)) return value.map((v) => renderInputs(v, sign));
  if (!isObj(value)) return value;
  if (value.dify_model_identity === "__dify__file__") {
    const out: Record<string, unknown> = { ...value };
    const method = value.transfer_method;
    const id = (value.related_id ?? value.upload_file_id) as unknown;
    if ((method === "local_file" || method === "tool_file") && typeof id === "string" && id) out.url = sign(id);
    else if (method === "remote_url") out.url = value.remote_url ?? value.url ?? null;
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = renderInputs(v, sign);
  return out;
}

// Dify's `Message.re_sign_file_url_answer`: markdown links/images pointing at signed file links
// are re-signed on every read.
const ANSWER_LINK = /\[!?.*?\]\((((http|https):\/\/.+)?\/files\/(tools\/)?[\w-]+.*?timestamp=.*&nonce=.*&sign=.*)\)/g;
const PREVIEW_ID = /\/files\/([\w-]+)\/(?:file|image)-preview\?timestamp=/;

export function reSignAnswer(answer: string, sign: FileSigner): string {
  if (!answer) return answer;
  const urls = new Set<string>();
  for (const m of answer.matchAll(ANSWER_LINK)) urls.add(m[1]!);
  let out = answer;
  for (const url of urls) {
    // TODO: tool-file links (/files/tools/<id>.<ext>) are left as stored: no tool-file signer yet.
    if (url.includes("files/tools")) continue;
    const id = PREVIEW_ID.exec(url)?.[1];
    if (id) out = out.split(url).join(sign(id));
  }
  return out;
}

/** Citation in the GET /messages shape (apps spec §7.3). */
export function retrieverResource(item: Record<string, unknown>) {
  const str = (k: string) => (item[k] === undefined || item[k] === null ? null : String(item[k]));
  const num = (k: string) => (typeof item[k] === "number" ? (item[k] as number) : null);
  return {
    // Newest quirk: a stored citation without id/message_id gets a random UUID on every read.
    id: str("id") ?? randomUUID(),
    message_id: str("message_id") ?? randomUUID(),
    position: num("position"),
    dataset_id: str("dataset_id"),
    dataset_name: str("dataset_name"),
    document_id: str("document_id"),
    document_name: str("document_name"),
    data_source_type: str("data_source_type"),
    segment_id: str("segment_id"),
    score: num("score"),
    hit_count: num("hit_count"),
    word_count: num("word_count"),
    segment_position: num("segment_position"),
    index_node_hash: str("index_node_hash"),
    content: str("content"),
    summary: str("summary"),
    created_at: num("created_at"),
  };
}

export function retrieverResources(metadata: unknown) {
  const list = isObj(metadata) ? metadata.retriever_resources : undefined;
  if (!Array.isArray(list)) return [];
  return list.filter(isObj).map(retrieverResource);
}

/** Message file object (`MessageFile` response model key order). */
export function messageFileResponse(mf: MessageFile, upload: UploadFile | undefined, sign: FileSigner) {
  let filename = upload?.name ?? "";
  let mime: string | null = upload?.mime_type ?? null;
  let size: number = upload?.size ?? -1;
  let url: string | null;
  if (mf.transfer_method === "remote_url") {
    url = mf.url ?? null;
    if (!upload && url) {
      // Dify probes the remote file; we derive what the URL itself tells.
      let pathname = "";
      try {
        pathname = new URL(url).pathname;
      } catch {
        pathname = url.split("?")[0] ?? "";
      }
      filename = decodeURIComponent(path.posix.basename(pathname));
      const ext = path.posix.extname(filename).slice(1);
      mime = ext ? mimeFromName(ext) : null;
      size = -1;
    }
  } else {
    url = mf.upload_file_id ? sign(mf.upload_file_id) : (mf.url ?? null);
  }
  return {
    id: mf.id,
    filename,
    type: mf.type,
    url,
    mime_type: mime,
    size,
    transfer_method: mf.transfer_method,
    belongs_to: mf.belongs_to || "user",
    upload_file_id: mf.upload_file_id ?? mf.id,
  };
}

export function agentThoughtResponse(t: MessageAgentThought) {
  return {
    id: t.id,
    chain_id: null,
    message_id: t.message_id,
    position: t.position,
    thought: t.thought,
    tool: t.tool,
    tool_labels: t.tool_labels,
    tool_input: t.tool_input,
    created_at: toUnix(t.created_at),
    observation: t.observation,
    files: [...t.message_file_ids],
  };
}

/** Dify statuses are normal | error | paused; a row still being written (or stopped) reads as normal. */
const messageStatus = (s: string) => (s === "error" || s === "paused" ? s : "normal");

export interface MessageParts {
  files: MessageFile[];
  uploads: Map<string, UploadFile>;
  /** The calling end user's own feedback, if any. */
  feedback: { rating: string } | null;
  thoughts: MessageAgentThought[];
}

/** GET /v1/messages item, newest key order (apps spec §8.2). */
export function messageResponse(m: Message, parts: MessageParts, sign: FileSigner) {
  return {
    id: m.id,
    conversation_id: m.conversation_id,
    parent_message_id: m.parent_message_id,
    inputs: renderInputs(m.inputs ?? {}, sign),
    query: m.query,
    answer: reSignAnswer(m.answer, sign),
    feedback: parts.feedback ? { rating: parts.feedback.rating } : null,
    retriever_resources: retrieverResources(m.message_metadata),
    created_at: toUnix(m.created_at),
    agent_thoughts: [...parts.thoughts].sort((a, b) => a.position - b.position).map(agentThoughtResponse),
    message_files: parts.files.map((f) => messageFileResponse(f, f.upload_file_id ? parts.uploads.get(f.upload_file_id) : undefined, sign)),
    message_tokens: m.message_tokens,
    answer_tokens: m.answer_tokens,
    provider_response_latency: m.provider_response_latency,
    // Python str(Decimal) of NUMERIC(10,7): "0.0010330"; an unpriced message reads "0E-7".
    total_price: pyDecimal(m.total_price),
    currency: m.currency,
    status: messageStatus(m.status),
    error: m.error,
    extra_contents: [] as unknown[],
    total_tokens: m.message_tokens + m.answer_tokens,
  };
}

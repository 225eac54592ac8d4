// Model errors → Dify's error catalogue (apps spec §5.1 for HTTP bodies, §6.6 for SSE `error`
// frames). Provider failures surface as Dify's InvokeError family: the caller sees the provider's
// own text, except authorization failures, which Dify reports as "Incorrect API key provided".
import OpenAI from "openai";

import { DifyError, Errors } from "../../lib/errors.js";

/** Dify's hosted-quota text used in SSE frames (§6.6), which differs from the HTTP default (§2.4). */
export const QUOTA_STREAM_MESSAGE =
  "Your quota for Dify Hosted Model Provider has been exhausted. Please go to Settings -> Model Provider to complete your own provider credentials.";
export const STREAM_INTERNAL_MESSAGE = "Internal Server Error, please contact support.";

/** Longest provider text passed on (an HTML error page from a proxy can be huge). */
const MAX_PROVIDER_TEXT = 1000;

/** The provider's own error text: the JSON `error.message`, else the body, without "429 " prefixes. */
export function providerMessage(err: InstanceType<typeof OpenAI.APIError>): string {
  const body = err.error as { message?: unknown } | undefined;
  let text =
    typeof body?.message === "string" && body.message
      ? body.message
      : err.message.replace(/^\d{3} /, "").replace(/^status code \(no body\)$/, "");
  if (!text) text = err.status ? `HTTP ${err.status} from the model provider` : "Completion request failed.";
  return text.length > MAX_PROVIDER_TEXT ? `${text.slice(0, MAX_PROVIDER_TEXT)}...` : text;
}

/** Network-level detail for connection errors ("connect ECONNREFUSED 127.0.0.1:9"). */
function connectionDetail(err: Error): string {
  let cause: unknown = (err as { cause?: unknown }).cause;
  for (let depth = 0; cause && depth < 4; depth++) {
    const c = cause as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof c.message === "string" && c.message && c.message !== "fetch failed") return c.message;
    if (typeof c.code === "string") return c.code;
    cause = c.cause;
  }
  return "";
}

/**
 * Maps anything thrown while calling a model to a DifyError:
 * - 401/403 → 400 completion_request_error "Incorrect API key provided"
 * - 429 with code insufficient_quota → 400 provider_quota_exceeded
 * - other 429 → 429 rate_limit_error with the provider's text
 * - 404 about the model → 400 model_currently_not_support
 * - any other HTTP status, connection failures and timeouts → 400 completion_request_error
 * - DifyError (e.g. provider_not_initialize from the registry) → unchanged
 * - anything else → 500 internal_server_error (the original is kept as `cause`)
 */
export function toDifyModelError(err: unknown): DifyError {
  if (err instanceof DifyError) return err;
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return withCause(Errors.completionRequestError("Request timed out."), err);
  }
  if (err instanceof OpenAI.APIUserAbortError) {
    return withCause(Errors.completionRequestError("Request was aborted."), err);
  }
  if (err instanceof OpenAI.APIConnectionError) {
    const detail = connectionDetail(err);
    return withCause(Errors.completionRequestError(detail ? `Connection error: ${detail}` : "Connection error."), err);
  }
  if (err instanceof OpenAI.APIError) {
    const message = providerMessage(err);
    const status = err.status ?? 0;
    if (status === 401 || status === 403) return withCause(Errors.completionRequestError("Incorrect API key provided"), err);
    if (status === 429) {
      if (err.code === "insufficient_quota" || err.type === "insufficient_quota") {
        return withCause(Errors.providerQuotaExceeded(), err);
      }
      return withCause(Errors.rateLimit(message), err);
    }
    if (status === 404 && (err.code === "model_not_found" || /\bmodel\b/i.test(message))) {
      return withCause(Errors.modelCurrentlyNotSupport(message), err);
    }
    return withCause(Errors.completionRequestError(message), err);
  }
  if (err instanceof OpenAI.OpenAIError) {
    // Raised by the client before any request, e.g. missing credentials.
    return withCause(Errors.providerNotInitialize(err.message), err);
  }
  if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
    return withCause(Errors.completionRequestError(err.name === "TimeoutError" ? "Request timed out." : "Request was aborted."), err);
  }
  return withCause(Errors.internalServerError(), err);
}

function withCause(e: DifyError, cause: unknown): DifyError {
  (e as { cause?: unknown }).cause = cause;
  return e;
}

/** Body of an SSE `error` frame after the prefix keys; key order as Dify writes it (§6.6). */
export type StreamErrorParts =
  | { code: string; status: number; message: string }
  | { code: string; message: string; status: number };

/**
 * Dify's `_error_to_stream_response`: InvokeError family (incl. rate limits and auth) →
 * completion_request_error 400; ValueError → invalid_param 400; provider_not_initialize and
 * model_currently_not_support keep their code; quota → fixed text; everything else → 500
 * "Internal Server Error, please contact support.". Key order `code, status, message`, except
 * quota/internal which are `code, message, status`.
 */
export function toStreamErrorParts(err: unknown): StreamErrorParts {
  const e = toDifyModelError(err);
  switch (e.code) {
    case "completion_request_error":
    case "rate_limit_error":
      return { code: "completion_request_error", status: 400, message: e.message };
    case "invalid_param":
    case "provider_not_initialize":
    case "model_currently_not_support":
      return { code: e.code, status: 400, message: e.message };
    case "provider_quota_exceeded":
      return { code: "provider_quota_exceeded", message: QUOTA_STREAM_MESSAGE, status: 400 };
    default:
      return { code: "internal_server_error", message: STREAM_INTERNAL_MESSAGE, status: 500 };
  }
}

/** Alias of toStreamErrorParts (the name the generation runner uses). */
export const toErrorFrameParts = toStreamErrorParts;

/**
 * Whether a failed model call is worth retrying later (DESIGN §7: transient model errors retry,
 * bad input does not): connection failures, timeouts, rate limits (not exhausted quota) and 5xx.
 * Accepts the original error or the DifyError from toDifyModelError (which keeps it as `cause`).
 */
export function isRetryableModelError(err: unknown): boolean {
  const original = err instanceof DifyError ? (err as { cause?: unknown }).cause : err;
  if (original instanceof OpenAI.APIUserAbortError) return false;
  if (original instanceof OpenAI.APIConnectionError) return true;
  if (original instanceof OpenAI.APIError) {
    const status = original.status ?? 0;
    if (status === 429) return original.code !== "insufficient_quota" && original.type !== "insufficient_quota";
    return status >= 500 || status === 408 || status === 409;
  }
  return false;
}

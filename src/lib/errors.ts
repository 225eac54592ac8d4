// The one error catalogue: every error Servify returns is a DifyError rendered by the error
// handler (http/plugins/errors.ts) as Dify's envelope {code, message, status}
// (apps spec §2, datasets spec §1.2). Codes and default messages are Dify's, verbatim.

export class DifyError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra response headers (e.g. Retry-After on 429, WWW-Authenticate on 401). */
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "DifyError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
  toBody(): { code: string; message: string; status: number } {
    return { code: this.code, message: this.message, status: this.status };
  }
}

/** Jobs and services throw this for input that can never succeed (no retry). */
export function isDifyError(e: unknown): e is DifyError {
  return e instanceof DifyError;
}

const def = (status: number, code: string, message: string) => (msg?: string) => new DifyError(status, code, msg ?? message);

// ---- generic (werkzeug-derived) bodies, apps spec §2.3
export const NOT_FOUND_TEXT =
  "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";
export const FORBIDDEN_TEXT =
  "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";
export const INTERNAL_TEXT =
  "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.";

export const Errors = {
  notFound: def(404, "not_found", NOT_FOUND_TEXT),
  methodNotAllowed: def(405, "method_not_allowed", "The method is not allowed for the requested URL."),
  badRequest: def(400, "bad_request", "The browser (or proxy) sent a request that this server could not understand."),
  invalidJson: () => new DifyError(400, "bad_request", "Invalid JSON payload received or JSON payload is empty."),
  unsupportedMediaType: def(
    415,
    "unsupported_media_type",
    "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
  ),
  requestEntityTooLarge: def(
    413,
    "request_entity_too_large",
    "The data value transmitted exceeds the capacity limit.",
  ),
  forbidden: def(403, "forbidden", FORBIDDEN_TEXT),
  unauthorized: (msg: string) => new DifyError(401, "unauthorized", msg, { "WWW-Authenticate": 'Bearer realm="api"' }),
  internalServerError: def(500, "internal_server_error", INTERNAL_TEXT),
  unknown: () => new DifyError(500, "unknown", "Internal Server Error"),
  invalidParam: (msg: string) => new DifyError(400, "invalid_param", msg),
  unprocessableEntity: (msg: string) => new DifyError(422, "unprocessable_entity", msg),
  tooManyRequests: (msg: string, retryAfterSeconds?: number) =>
    new DifyError(429, "too_many_requests", msg, retryAfterSeconds ? { "Retry-After": String(retryAfterSeconds) } : {}),
  rateLimit: (msg = "Rate Limit Error") => new DifyError(429, "rate_limit_error", msg),

  // ---- app errors, apps spec §2.4
  appUnavailable: def(400, "app_unavailable", "App unavailable, please check your app configurations."),
  notCompletionApp: def(400, "not_completion_app", "Please check if your Completion app mode matches the right API route."),
  notChatApp: def(400, "not_chat_app", "Please check if your app mode matches the right API route."),
  notWorkflowApp: def(400, "not_workflow_app", "Please check if your app mode matches the right API route."),
  conversationCompleted: def(400, "conversation_completed", "The conversation has ended. Please start a new conversation."),
  providerNotInitialize: def(
    400,
    "provider_not_initialize",
    "No valid model provider credentials found. Please go to Settings -> Model Provider to complete your provider credentials.",
  ),
  providerQuotaExceeded: def(
    400,
    "provider_quota_exceeded",
    "Your quota for Dify Hosted OpenAI has been exhausted. Please go to Settings -> Model Provider to complete your own provider credentials.",
  ),
  modelCurrentlyNotSupport: def(400, "model_currently_not_support", "Dify Hosted OpenAI trial currently not support the GPT-4 model."),
  completionRequestError: def(400, "completion_request_error", "Completion request failed."),
  noAudioUploaded: def(400, "no_audio_uploaded", "Please upload your audio."),
  audioTooLarge: def(413, "audio_too_large", "Audio size larger than 30 mb"),
  unsupportedAudioType: def(415, "unsupported_audio_type", "Audio type not allowed."),
  providerNotSupportSpeechToText: def(400, "provider_not_support_speech_to_text", "Provider not support speech to text."),
  speechToTextDisabled: def(400, "speech_to_text_disabled", "Speech to text is disabled."),
  fileNotFound: def(404, "file_not_found", "The requested file was not found."),
  fileAccessDenied: def(403, "file_access_denied", "Access to the requested file is denied."),
  noFileUploaded: def(400, "no_file_uploaded", "Please upload your file."),
  tooManyFiles: def(400, "too_many_files", "Only one file is allowed."),
  filenameNotExists: def(400, "filename_not_exists_error", "The specified filename does not exist."),
  // apps spec §10.1 / §17.4: the runtime message is "".
  fileTooLarge: def(413, "file_too_large", ""),
  unsupportedFileType: def(415, "unsupported_file_type", "File type not allowed."),
  suggestedQuestionsDisabled: def(
    403,
    "app_suggested_questions_after_answer_disabled",
    "Function Suggested questions after answer disabled.",
  ),
  endUserNotFound: def(404, "end_user_not_found", "End user not found."),
  conversationNotFound: def(404, "not_found", "Conversation Not Exists."),
  messageNotFound: def(404, "not_found", "Message Not Exists."),
  lastConversationNotFound: def(404, "not_found", "Last Conversation Not Exists."),
  firstMessageNotFound: def(404, "not_found", "First Message Not Exists."),
  conversationVariableNotFound: def(404, "not_found", "Conversation Variable Not Exists."),

  // ---- knowledge (dataset) errors, datasets spec §4–§9
  datasetNameDuplicate: def(409, "dataset_name_duplicate", "The dataset name already exists. Please modify your dataset name."),
  datasetInUse: def(409, "dataset_in_use", "The dataset is being used by some apps. Please remove the dataset from the apps before deleting it."),
  // datasets spec §7 (retrieve / hit-testing)
  datasetNotInitialized: def(400, "dataset_not_initialized", "The dataset is still being initialized or indexing. Please wait a moment."),

  // ---- documents / segments, datasets spec §5.7, §5.8, §5.12
  invalidMetadata: (value: string) => new DifyError(400, "invalid_metadata", `Invalid metadata value: ${value}`),
  archivedDocumentImmutable: def(403, "archived_document_immutable", "The archived document is not editable."),
  invalidAction: (msg: string) => new DifyError(400, "invalid_action", msg),
} as const;

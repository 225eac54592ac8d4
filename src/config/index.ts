// Environment, parsed once and frozen (DESIGN §6: nothing else reads process.env).
// Every variable is documented in .env.example.
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", ""])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const mb = (def: number) => z.coerce.number().int().positive().default(def);

export const configSchema = z.object({
  NODE_ENV: z.string().default("development"),
  PORT: z.coerce.number().int().min(0).max(65535).default(5001),
  HOST: z.string().default("0.0.0.0"),
  DATABASE_URL: z.string().default("postgresql://postgres@127.0.0.1:5432/servify"),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379/0"),
  // Unset = every /admin route answers 404 (the admin API is off).
  ADMIN_API_KEY: z.string().optional().transform((v) => (v ? v : undefined)),
  OPENAI_BASE_URL: z.string().default("https://api.openai.com/v1"),
  OPENAI_API_KEY: z.string().default(""),
  MODELS_FILE: z.string().optional().transform((v) => (v ? v : undefined)),
  STORAGE_DIR: z.string().default("./storage"),
  // Public base URL used in signed file links (`source_url`, `preview_url`). Empty = relative links.
  FILES_URL: z.string().default(""),
  // Secret used to sign file URLs; defaults to a value derived at start-up (see lib/files-sign.ts).
  SECRET_KEY: z.string().default("servify-dev-secret-change-me"),
  RUN_MODE: z.enum(["api", "worker", "all"]).default("all"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // Upload limits in MB (apps spec §10.1 defaults).
  UPLOAD_FILE_SIZE_LIMIT: mb(15),
  UPLOAD_IMAGE_FILE_SIZE_LIMIT: mb(10),
  UPLOAD_VIDEO_FILE_SIZE_LIMIT: mb(100),
  UPLOAD_AUDIO_FILE_SIZE_LIMIT: mb(50),
  WORKFLOW_FILE_UPLOAD_LIMIT: z.coerce.number().int().positive().default(10),
  // Comma-separated extensions refused on upload (e.g. "exe,bat").
  UPLOAD_FILE_EXTENSION_BLACKLIST: z.string().default(""),
  // Largest JSON body accepted, in MB (client-compatibility A.10).
  BODY_LIMIT_MB: z.coerce.number().positive().default(20),
  // Per-app concurrent generation limit (0 = unlimited), apps spec §3.5.
  APP_MAX_ACTIVE_REQUESTS: z.coerce.number().int().min(0).default(0),
  // Outbound HTTP (remote_url files, HTTP nodes): "public" refuses private/loopback/link-local
  // targets (SSRF guard); "loopback" allows only 127.0.0.0/8 and ::1 (tests, corpus runs).
  OUTBOUND_POLICY: z.enum(["public", "loopback", "any"]).default("public"),
  // Version reported by GET /v1/.
  SERVER_VERSION: z.string().default("1.16.0"),
  // Name given to the single tenant that CLI/admin imports use when none is named.
  DEFAULT_TENANT_NAME: z.string().default("Servify"),
  // Prefix of every Redis key of queues and run events (lets several installs share one Redis).
  QUEUE_PREFIX: z.string().default("servify"),
  // Generations one worker process runs at once (they mostly wait on model streams).
  APP_RUN_CONCURRENCY: z.coerce.number().int().positive().default(50),
  // Documents one worker process indexes at once (extraction and splitting are CPU-bound).
  DOCUMENT_INDEXING_CONCURRENCY: z.coerce.number().int().positive().default(2),
  // Largest custom chunk length accepted by the indexing worker (datasets spec §5.2).
  INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH: z.coerce.number().int().positive().default(4000),
  // Graph run limits (dsl-and-workflow §3.10): node starts per run and wall time in seconds,
  // both checked when a node finishes.
  WORKFLOW_MAX_EXECUTION_STEPS: z.coerce.number().int().positive().default(500),
  WORKFLOW_MAX_EXECUTION_TIME: z.coerce.number().positive().default(1200),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10000),
  LOG_PRETTY: bool.default(false),
  // Knowledge API limits (datasets spec §6.1): chunks per add-segments request (0 = unlimited)
  // and attachments per chunk.
  DATASET_MAX_SEGMENTS_PER_REQUEST: z.coerce.number().int().min(0).default(0),
  SINGLE_CHUNK_ATTACHMENT_LIMIT: z.coerce.number().int().min(0).default(10),
  // Code nodes (src/modules/workflow/sandbox): wall-time limit per run, memory cap per run (MB),
  // idle Python interpreters kept booted, and runs executing at once per language.
  CODE_EXECUTION_TIMEOUT_MS: z.coerce.number().int().positive().default(10000),
  CODE_SANDBOX_MEMORY_MB: z.coerce.number().int().min(64).default(256),
  CODE_SANDBOX_PYTHON_WARM: z.coerce.number().int().min(0).default(2),
  CODE_SANDBOX_MAX_CONCURRENCY: z.coerce.number().int().positive().default(4),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join("\n")}`);
  }
  return Object.freeze({ ...parsed.data, ...overrides });
}

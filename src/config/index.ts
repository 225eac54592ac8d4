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
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10000),
  LOG_PRETTY: bool.default(false),
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

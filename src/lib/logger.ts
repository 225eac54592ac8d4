// The one logger (pino). Secrets never reach the logs: Authorization headers, API keys and
// tokens are redacted wherever they appear in a logged object.
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

export const redactPaths = [
  "req.headers.authorization",
  'req.headers["authorization"]',
  "headers.authorization",
  "authorization",
  "token",
  "*.token",
  "api_key",
  "*.api_key",
  "apiKey",
  "*.apiKey",
  "OPENAI_API_KEY",
  "ADMIN_API_KEY",
  "SECRET_KEY",
  "*.password",
];

export function createLogger(opts: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    name: opts.name ?? "servify",
    redact: { paths: redactPaths, censor: "[redacted]" },
  };
  if (opts.pretty) {
    return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return pino(options);
}

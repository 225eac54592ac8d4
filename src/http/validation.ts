// Zod schemas on routes (DESIGN §7: one schema library everywhere). Validation failures become
// 400 invalid_param with a pydantic-style report (apps spec §2.2: clients branch on `code`).
import type { FastifyInstance } from "fastify";
import { ZodError, type ZodType } from "zod";
import { Errors } from "../lib/errors.js";
import { pyJson } from "../lib/pyjson.js";

export function formatValidationError(err: ZodError, model = "Request"): string {
  const n = err.issues.length;
  const lines = [`${n} validation error${n === 1 ? "" : "s"} for ${model}`];
  for (const i of err.issues) {
    lines.push(i.path.length ? i.path.join(".") : "body");
    lines.push(`  ${i.message}`);
  }
  return lines.join("\n");
}

/** Parse with a zod schema or throw Dify's invalid_param. */
export function parseOr400<T>(schema: ZodType<T>, data: unknown, model?: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw Errors.invalidParam(formatValidationError(r.error, model));
  return r.data;
}

export function registerValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema }) => {
    const s = schema as ZodType;
    return (data: unknown) => {
      const r = s.safeParse(data ?? {});
      if (r.success) return { value: r.data };
      const error = new Error(formatValidationError(r.error)) as Error & { validation: unknown; cause: unknown };
      error.validation = r.error.issues;
      error.cause = r.error;
      return { error };
    };
  });
  // Response schemas document the shape; bodies are built field by field in Dify's key order and
  // written in Python's json.dumps style (apps spec §1.3).
  app.setSerializerCompiler(() => (data: unknown) => `${pyJson(data)}\n`);
  app.setReplySerializer((payload) => `${pyJson(payload)}\n`);
}

// Request validation for the knowledge services. Dify validates these bodies with pydantic inside
// the handler, so failures are 400 invalid_param carrying pydantic's text (datasets spec §1.2
// rule 3). The layout matches src/http/validation.ts (kept here: modules never import http/).
import type { ZodError, ZodType } from "zod";
import { Errors } from "../../lib/errors.js";

export function pydanticText(err: ZodError, model: string, prefix: PropertyKey[] = []): string {
  const n = err.issues.length;
  const lines = [`${n} validation error${n === 1 ? "" : "s"} for ${model}`];
  for (const i of err.issues) {
    const path = [...prefix, ...i.path];
    if (path.length) lines.push(path.map(String).join("."));
    lines.push(`  ${i.message}`);
  }
  return lines.join("\n");
}

export function parseOrInvalid<T>(schema: ZodType<T>, data: unknown, model: string, prefix: PropertyKey[] = []): T {
  const r = schema.safeParse(data);
  if (!r.success) throw Errors.invalidParam(pydanticText(r.error, model, prefix));
  return r.data;
}

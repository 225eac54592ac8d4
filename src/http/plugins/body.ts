// Request body parsing tolerant of what real clients send (client-compatibility A):
// - `Content-Type: application/json` (any charset) with an EMPTY body is `{}` on every method;
//   Fastify would reject it with FST_ERR_CTP_EMPTY_JSON_BODY (A.3).
// - malformed JSON → Dify's 400 "Invalid JSON payload received or JSON payload is empty." (§2.2)
// - YAML / plain text bodies arrive as strings (admin DSL import).
// - multipart is registered by @fastify/multipart; routes read parts themselves because the
//   order of `file` and `user` varies between clients (A.9).
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Errors } from "../../lib/errors.js";

export async function registerBodyParsing(app: FastifyInstance, opts: { bodyLimit: number; fileSizeLimit: number }): Promise<void> {
  app.removeContentTypeParser(["application/json", "text/plain"]);

  app.addContentTypeParser(/^application\/(.+\+)?json(\s*;.*)?$/i, { parseAs: "string", bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === "") return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Errors.invalidJson(), undefined);
    }
  });

  app.addContentTypeParser(
    /^(text\/plain|text\/yaml|text\/x-yaml|application\/yaml|application\/x-yaml)(\s*;.*)?$/i,
    { parseAs: "string", bodyLimit: opts.bodyLimit },
    (_req, body, done) => done(null, body),
  );

  await app.register(multipart, {
    // Keep the client's file name as sent: Dify refuses names containing / or \ (apps spec §10.1).
    preservePath: true,
    limits: { fileSize: opts.fileSizeLimit, files: 10, fields: 20, fieldSize: 1024 * 1024, parts: 40 },
  });
}

/**
 * The JSON object body of a request, or `{}` when none was sent. A non-JSON body on a JSON
 * endpoint is Dify's 415 (apps spec §2.3); an array or scalar is rejected as invalid JSON payload.
 */
export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  if (req.isMultipart()) throw Errors.unsupportedMediaType();
  const body = req.body as unknown;
  if (body === undefined || body === null) return {};
  if (typeof body === "string" || Buffer.isBuffer(body)) {
    if (String(body).trim() === "") return {};
    throw Errors.unsupportedMediaType();
  }
  if (typeof body !== "object" || Array.isArray(body)) throw Errors.invalidParam("Invalid JSON payload: expected an object.");
  return body as Record<string, unknown>;
}

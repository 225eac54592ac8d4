// The one error handler: every error leaves as Dify's envelope {code, message, status}
// (apps spec §2, client-compatibility C.15), framework errors included.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import { ZodError } from "zod";
import { DifyError, Errors } from "../../lib/errors.js";
import { formatValidationError } from "../validation.js";

// werkzeug's snake_cased class names by status, for framework errors without a Dify class.
const CODE_BY_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  406: "not_acceptable",
  408: "request_timeout",
  409: "conflict",
  411: "length_required",
  413: "request_entity_too_large",
  414: "request_uri_too_large",
  415: "unsupported_media_type",
  422: "unprocessable_entity",
  429: "too_many_requests",
};

export function toDifyError(err: unknown): DifyError {
  if (err instanceof DifyError) return err;
  if (err instanceof ZodError) return Errors.invalidParam(formatValidationError(err));
  const e = err as FastifyError & { validation?: unknown; cause?: unknown };
  if (e?.validation) {
    const cause = e.cause ?? (e.validation as unknown);
    if (cause instanceof ZodError) return Errors.invalidParam(formatValidationError(cause));
    return Errors.invalidParam(e.message);
  }
  switch (e?.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_INVALID_MULTIPART_CONTENT_TYPE":
      return Errors.unsupportedMediaType();
    case "FST_ERR_CTP_BODY_TOO_LARGE":
    case "FST_REQ_FILE_TOO_LARGE":
      return Errors.requestEntityTooLarge();
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return Errors.invalidJson();
  }
  if (err instanceof SyntaxError) return Errors.invalidJson();
  const status = typeof e?.statusCode === "number" ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    return new DifyError(status, CODE_BY_STATUS[status] ?? "bad_request", e.message || "Bad Request");
  }
  return Errors.unknown();
}

export function sendError(reply: FastifyReply, err: DifyError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  // Dify's catch-all 500 body has its keys in the order message, code, status (apps spec §2.2).
  const body = err.code === "unknown" ? { message: err.message, code: err.code, status: err.status } : err.toBody();
  return reply.status(err.status).type("application/json").send(body);
}

export function registerErrorHandling(app: FastifyInstance, opts: { ignoreDuplicateSlashes: boolean }): void {
  // A mirror of the route table, used only to tell "wrong method" (405) from "no route" (404):
  // Fastify itself answers 404 for both.
  const mirror = FindMyWay({ ignoreDuplicateSlashes: opts.ignoreDuplicateSlashes, ignoreTrailingSlash: true });
  const noop = () => undefined;
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      try {
        mirror.on(m as "GET", route.url, noop);
      } catch {
        /* duplicate HEAD registrations and the like */
      }
    }
  });

  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split("?")[0] ?? "/";
    const other = ["GET", "POST", "PUT", "PATCH", "DELETE"].some((m) => m !== req.method && mirror.find(m as "GET", path));
    return sendError(reply, other ? Errors.methodNotAllowed() : Errors.notFound());
  });

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const dify = toDifyError(err);
    if (dify.status >= 500) req.log.error({ err }, "request failed");
    else req.log.debug({ code: dify.code, status: dify.status }, "request rejected");
    return sendError(reply, dify);
  });
}

// Conversations (apps spec §8.1, §8.3–8.6):
//   GET    /v1/conversations
//   DELETE /v1/conversations/{conversation_id}
//   POST   /v1/conversations/{conversation_id}/name
//   GET    /v1/conversations/{conversation_id}/variables
//   PUT    /v1/conversations/{conversation_id}/variables/{variable_id}
// Path ids only match UUIDs (anything else is the generic 404 before auth, §1.2). The mode check
// runs in the handler, i.e. after the end user was resolved (§3.3), and before payload validation.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { Errors } from "../../lib/errors.js";
import { normUuid, uuidParam } from "../../lib/ids.js";
import {
  CONVERSATION_SORTS,
  conversationResponse,
  createConversationService,
  variableResponse,
  type NameGenerator,
} from "../../modules/conversations/service.js";
import type { Services } from "../services.js";
import { jsonBody } from "../plugins/body.js";
import { parseOr400 } from "../validation.js";

/** Modes with conversations (§4; newest adds the New-Agent `agent` mode). */
export const CHAT_FAMILY = new Set(["chat", "agent-chat", "advanced-chat", "agent"]);
/** Conversation variables exist for these modes only (§4). */
const VARIABLE_MODES = new Set(["chat", "agent-chat", "advanced-chat"]);

// ---- query-string helpers shaped like Dify's pydantic query models (request.args.to_dict():
// the first value of a repeated key wins).

const firstValue = (v: unknown) => (Array.isArray(v) ? v[0] : v);

/** pydantic `int = Field(default, ge, le)` from a query string. */
export const queryInt = (def: number, min: number, max: number) =>
  z.unknown().optional().transform((raw, ctx) => {
    const v = firstValue(raw);
    if (v === undefined) return def;
    const s = String(v).trim();
    if (!/^[+-]?\d+$/.test(s)) {
      ctx.addIssue({ code: "custom", message: "Input should be a valid integer, unable to parse string as an integer" });
      return z.NEVER;
    }
    const n = Number(s);
    if (n < min) {
      ctx.addIssue({ code: "custom", message: `Input should be greater than or equal to ${min}` });
      return z.NEVER;
    }
    if (n > max) {
      ctx.addIssue({ code: "custom", message: `Input should be less than or equal to ${max}` });
      return z.NEVER;
    }
    return n;
  });

/** Python `uuid.UUID(value)` normalisation; null when it is not a UUID. */
export function pyUuid(value: string): string | null {
  const hex = value.replace("urn:", "").replace("uuid:", "").replace(/^\{+|\}+$/g, "").replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return null;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Dify's `UUIDStrOrEmpty`: "" stays "", a UUID is normalised, anything else is invalid. */
export const queryUuidOrEmpty = (required: boolean) =>
  z.unknown().optional().transform((raw, ctx) => {
    const v = firstValue(raw);
    if (v === undefined) {
      if (required) {
        ctx.addIssue({ code: "custom", message: "Field required" });
        return z.NEVER;
      }
      return undefined;
    }
    const s = String(v);
    if (s === "") return "";
    const id = pyUuid(s);
    if (!id) {
      ctx.addIssue({ code: "custom", message: "Value error, must be a valid UUID" });
      return z.NEVER;
    }
    return id;
  });

/** pydantic lax `bool`. */
const pyBool = z.unknown().optional().transform((v, ctx) => {
  if (v === undefined || v === null) {
    if (v === null) {
      ctx.addIssue({ code: "custom", message: "Input should be a valid boolean" });
      return z.NEVER;
    }
    return false;
  }
  if (typeof v === "boolean") return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === "string") {
    const s = v.toLowerCase();
    if (["1", "on", "t", "true", "y", "yes"].includes(s)) return true;
    if (["0", "off", "f", "false", "n", "no"].includes(s)) return false;
  }
  ctx.addIssue({ code: "custom", message: "Input should be a valid boolean" });
  return z.NEVER;
});

const listQuery = z
  .object({
    last_id: queryUuidOrEmpty(false),
    limit: queryInt(20, 1, 100),
    sort_by: z.unknown().optional().transform((raw, ctx) => {
      const v = firstValue(raw);
      if (v === undefined) return "-updated_at" as const;
      const s = String(v);
      if ((CONVERSATION_SORTS as readonly string[]).includes(s)) return s as (typeof CONVERSATION_SORTS)[number];
      ctx.addIssue({ code: "custom", message: "Input should be 'created_at', '-created_at', 'updated_at' or '-updated_at'" });
      return z.NEVER;
    }),
  })
  .loose();

const renameBody = z
  .object({
    name: z.string({ error: "Input should be a valid string" }).nullable().optional(),
    auto_generate: pyBool,
  })
  .loose()
  .superRefine((b, ctx) => {
    if (!b.auto_generate && (b.name === null || b.name === undefined || b.name.trim() === "")) {
      ctx.addIssue({ code: "custom", message: "Value error, name is required when auto_generate is false" });
    }
  });

const variablesQuery = z
  .object({
    last_id: queryUuidOrEmpty(false),
    limit: queryInt(20, 1, 100),
    variable_name: z.unknown().optional().transform((raw, ctx) => {
      const v = firstValue(raw);
      if (v === undefined || v === null) return undefined;
      const s = String(v);
      // Dify's validator runs before the length check (mode="before").
      if (!/^[\p{L}\p{N}]+$/u.test(s.replace(/[-_.]/g, ""))) {
        ctx.addIssue({ code: "custom", message: "Value error, Variable name can only contain letters, numbers, hyphens (-), underscores (_), and periods (.)" });
        return z.NEVER;
      }
      for (const p of ["'", '"', ";", "--", "/*", "*/", "xp_", "sp_"]) {
        if (s.toLowerCase().includes(p)) {
          ctx.addIssue({ code: "custom", message: `Value error, Variable name contains invalid characters: ${p}` });
          return z.NEVER;
        }
      }
      if (s.length > 255) {
        ctx.addIssue({ code: "custom", message: "String should have at most 255 characters" });
        return z.NEVER;
      }
      return s;
    }),
  })
  .loose();

const noUnwiredNames: NameGenerator = {
  generateConversationName() {
    throw Errors.internalServerError();
  },
};

function chatFamilyOnly(req: FastifyRequest, modes: Set<string> = CHAT_FAMILY) {
  if (!modes.has(req.app!.mode)) throw Errors.notChatApp();
}

export function conversationRoutes(app: FastifyInstance, s: Services, deps: { names?: NameGenerator } = {}): void {
  const conversations = createConversationService(s.prisma);
  const sign = (id: string) => s.files.signedUrl(id);
  const names = deps.names ?? noUnwiredNames;

  // GET /v1/conversations
  app.get("/v1/conversations", {
    config: { auth: "app", user: { from: "query", required: false } },
  }, async (req) => {
    chatFamilyOnly(req);
    const q = parseOr400(listQuery, req.query ?? {}, "ConversationListQuery");
    const { data, hasMore } = await conversations.list({
      appId: req.app!.id,
      endUserId: req.endUser!.id,
      lastId: q.last_id || null,
      limit: q.limit,
      sortBy: q.sort_by,
    });
    return { limit: q.limit, has_more: hasMore, data: data.map((c) => conversationResponse(c, sign)) };
  });

  // DELETE /v1/conversations/{conversation_id}
  app.delete(`/v1/conversations/${uuidParam("conversation_id")}`, {
    config: { auth: "app", user: { from: "body", required: false } },
  }, async (req, reply) => {
    chatFamilyOnly(req);
    const { conversation_id } = req.params as { conversation_id: string };
    await conversations.softDelete(req.app!.id, req.endUser!.id, normUuid(conversation_id));
    return reply.status(204).send();
  });

  // POST /v1/conversations/{conversation_id}/name
  app.post(`/v1/conversations/${uuidParam("conversation_id")}/name`, {
    config: { auth: "app", user: { from: "body", required: false } },
  }, async (req) => {
    chatFamilyOnly(req);
    const { conversation_id } = req.params as { conversation_id: string };
    const body = parseOr400(renameBody, jsonBody(req), "ConversationRenamePayload");
    const ctx = req.app!;
    const id = normUuid(conversation_id);
    const row = body.auto_generate
      ? await conversations.autoName(ctx.id, req.endUser!.id, id, names, {
          // Dify swallows naming failures; an unwired generator is a server fault, not a model one.
          failOpen: names !== noUnwiredNames,
          onError: (e) => req.log.warn({ err: e }, "conversation name generation failed"),
        })
      : await conversations.rename(ctx.id, req.endUser!.id, id, body.name!);
    return conversationResponse(row, sign);
  });

  // GET /v1/conversations/{conversation_id}/variables
  app.get(`/v1/conversations/${uuidParam("conversation_id")}/variables`, {
    config: { auth: "app", user: { from: "query", required: false } },
  }, async (req) => {
    chatFamilyOnly(req, VARIABLE_MODES);
    const { conversation_id } = req.params as { conversation_id: string };
    const q = parseOr400(variablesQuery, req.query ?? {}, "ConversationVariablesQuery");
    const { data, hasMore } = await conversations.listVariables({
      appId: req.app!.id,
      endUserId: req.endUser!.id,
      conversationId: normUuid(conversation_id),
      lastId: q.last_id || null,
      limit: q.limit,
      variableName: q.variable_name ?? null,
    });
    return { limit: q.limit, has_more: hasMore, data: data.map((v) => variableResponse(v)) };
  });

  // PUT /v1/conversations/{conversation_id}/variables/{variable_id}
  app.put(`/v1/conversations/${uuidParam("conversation_id")}/variables/${uuidParam("variable_id")}`, {
    config: { auth: "app", user: { from: "body", required: false } },
  }, async (req) => {
    chatFamilyOnly(req, VARIABLE_MODES);
    const { conversation_id, variable_id } = req.params as { conversation_id: string; variable_id: string };
    const body = jsonBody(req);
    if (!Object.hasOwn(body, "value")) {
      throw Errors.invalidParam("1 validation error for ConversationVariableUpdatePayload\nvalue\n  Field required");
    }
    const row = await conversations.updateVariable({
      appId: req.app!.id,
      endUserId: req.endUser!.id,
      conversationId: normUuid(conversation_id),
      variableId: normUuid(variable_id),
      value: body.value,
    });
    return variableResponse(row);
  });
}

import { randomUUID } from "node:crypto";

// werkzeug's UUID converter (apps spec §1.2): any case, canonical 8-4-4-4-12 layout.
export const UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const UUID_RE = new RegExp(`^${UUID_PATTERN}$`);

/** A Fastify path parameter that only matches a UUID, so other values fall through to 404. */
export const uuidParam = (name: string) => `:${name}(^${UUID_PATTERN}$)`;

export const isUuid = (v: unknown): v is string => typeof v === "string" && UUID_RE.test(v);
export const newId = (): string => randomUUID();
export const normUuid = (v: string): string => v.toLowerCase();

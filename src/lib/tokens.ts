// API keys in Dify's format: `app-` / `dataset-` + 24 random alphanumerics (apps spec §3.1,
// datasets spec §2.2). Only a SHA-256 of the token is stored; lookups hash the presented token and
// query by the hash (an index lookup on a fixed-length digest, so timing does not depend on how
// much of the token matches), then compare digests with timingSafeEqual.
import { createHash, randomInt, timingSafeEqual } from "node:crypto";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export type TokenType = "app" | "dataset";

export function generateToken(type: TokenType): string {
  let s = "";
  for (let i = 0; i < 24; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return `${type}-${s}`;
}

export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** What lists show: the type prefix and a few characters, never enough to use. */
export const tokenPrefix = (token: string): string => `${token.slice(0, token.indexOf("-") + 1)}${token.slice(token.indexOf("-") + 1, token.indexOf("-") + 5)}...`;

export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}

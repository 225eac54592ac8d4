// Prisma 7 with the `pg` driver adapter (no native query engine).
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";

export type { PrismaClient };
export type Tx = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];
/** Repositories accept either the client or a transaction (DESIGN §7). */
export type Db = PrismaClient | Tx;

export function createPrisma(databaseUrl: string, opts: { max?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: opts.max ?? 20 });
  return new PrismaClient({ adapter });
}

// src/lib/migrate.ts and the initial migration, against the real database of `npm test`
// (scripts/test.ts has already migrated it).
import { createHash, randomUUID } from "node:crypto";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, it, expect } from "vitest";
import { migrate, readMigrations } from "../src/lib/migrate.js";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error("DATABASE_URL is not set: run the tests with `npm test`");

const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function urlWithDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** `[x, x, ...]` literal of n dimensions. */
function vec(n: number, at = 0): string {
  return `[${Array.from({ length: n }, (_, i) => (i === at ? 1 : 0.001 * ((i % 7) + 1))).join(",")}]`;
}

describe("migrate", () => {
  it("is idempotent: a second run applies nothing and the bookkeeping matches Prisma's", async () => {
    expect(await migrate(databaseUrl)).toEqual([]);
    expect(await migrate(databaseUrl)).toEqual([]);

    const local = readMigrations(migrationsDir);
    expect(local.length).toBeGreaterThan(0);
    const rows = await withClient(databaseUrl, async (c) =>
      (await c.query(`SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`)).rows,
    );
    for (const m of local) {
      const row = rows.find((r) => r.migration_name === m.name);
      expect(row, m.name).toBeDefined();
      const fileHash = createHash("sha256").update(readFileSync(join(migrationsDir, m.name, "migration.sql"))).digest("hex");
      expect(row.checksum).toBe(fileHash);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it("refuses to run when an applied migration was edited", async () => {
    const dir = mkdtempSync(join(tmpdir(), "servify-migrations-"));
    try {
      cpSync(migrationsDir, dir, { recursive: true });
      const first = readMigrations(dir)[0]!;
      appendFileSync(join(dir, first.name, "migration.sql"), "\n-- edited\n");
      await expect(migrate(databaseUrl, undefined, { migrationsDir: dir })).rejects.toThrow(/was modified after it was applied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("applies everything once on an empty database, even with two processes racing", async () => {
    const db = `servify_migrate_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    await withClient(databaseUrl, (c) => c.query(`CREATE DATABASE "${db}"`));
    try {
      const url = urlWithDatabase(databaseUrl, db);
      const [a, b] = await Promise.all([migrate(url), migrate(url)]);
      const names = readMigrations(migrationsDir).map((m) => m.name);
      expect([...a, ...b].sort()).toEqual(names);
      expect(await migrate(url)).toEqual([]);
    } finally {
      await withClient(databaseUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`));
    }
  });
});

describe("schema", () => {
  it("has the vector extension", async () => {
    const rows = await withClient(databaseUrl, async (c) => (await c.query(`SELECT extversion FROM pg_extension WHERE extname = 'vector'`)).rows);
    expect(rows).toHaveLength(1);
  });

  it("stores embeddings of any dimension in one table and searches them through the per-dimension index", async () => {
    const tenantId = randomUUID();
    const datasetId = randomUUID();
    await withClient(databaseUrl, async (c) => {
      try {
        const insert = `INSERT INTO embeddings (tenant_id, dataset_id, document_id, segment_id, index_node_id, model, provider, dimension, embedding)
                        VALUES ($1, $2, $3, $4, $5, $6, 'test', $7, $8::vector) RETURNING id`;
        await c.query(insert, [tenantId, datasetId, randomUUID(), randomUUID(), "node-3", "tiny", 3, "[1,2,3]"]);
        await c.query(insert, [tenantId, datasetId, randomUUID(), randomUUID(), "node-1536", "text-embedding-3-small", 1536, vec(1536, 5)]);

        const three = await c.query(`SELECT dimension, embedding::text AS e FROM embeddings WHERE dataset_id = $1 AND dimension = 3`, [datasetId]);
        expect(three.rows).toEqual([{ dimension: 3, e: "[1,2,3]" }]);

        const search = `SELECT index_node_id, 1 - (embedding::vector(1536) <=> $2::vector(1536)) AS score
                        FROM embeddings WHERE dimension = 1536 AND dataset_id = $1
                        ORDER BY embedding::vector(1536) <=> $2::vector(1536) LIMIT 5`;
        const hits = await c.query(search, [datasetId, vec(1536, 5)]);
        expect(hits.rows).toHaveLength(1);
        expect(hits.rows[0].index_node_id).toBe("node-1536");
        expect(hits.rows[0].score).toBeCloseTo(1, 5);

        // The query shape above is the one the partial HNSW index serves.
        await c.query("BEGIN");
        await c.query("SET LOCAL enable_seqscan = off");
        const plan = await c.query(`EXPLAIN ${search}`, [datasetId, vec(1536, 5)]);
        await c.query("ROLLBACK");
        expect(plan.rows.map((r) => r["QUERY PLAN"]).join("\n")).toContain("embeddings_hnsw_1536");
      } finally {
        await c.query("DELETE FROM embeddings WHERE tenant_id = $1", [tenantId]);
      }
    });
  });
});

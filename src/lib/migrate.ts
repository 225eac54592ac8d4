// Applies prisma/migrations/*/migration.sql (DESIGN §4: migrations are the only DDL).
//
// Why not `prisma migrate deploy`: Prisma's CLI applies migrations with its native schema engine,
// a binary it downloads from Prisma's own host at first use. Production images, CI and these
// development machines cannot reach that host (and `prisma generate`, see
// scripts/prisma-generate.mjs, does not need it). So we apply the same files ourselves, and keep
// Prisma's bookkeeping exactly: the `_prisma_migrations` table with Prisma's DDL, a SHA-256 hex
// checksum of each file, and Prisma's advisory-lock key. Where the native engine does exist,
// `prisma migrate status` / `deploy` agree with what this module recorded, and the two cannot
// run at the same time.
//
// Differences from Prisma, on purpose: each migration runs in one transaction (a failure leaves
// nothing behind and nothing recorded, so a fixed file simply applies next time); therefore a
// migration must not contain statements that refuse to run inside a transaction (e.g. CREATE
// INDEX CONCURRENTLY). A failed row left by Prisma itself still stops us, as it stops Prisma.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

/** The lock key Prisma's schema engine takes on PostgreSQL (`pg_advisory_lock(72707369)`). */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));

// Prisma's own DDL for its bookkeeping table (schema-engine, postgres flavour).
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- accepts pino and console alike
export type MigrateLog = { info(...a: any[]): void; warn?(...a: any[]): void };

export interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Prisma accepts a checksum computed before or after a CRLF <-> LF conversion (git autocrlf). */
function checksumMatches(recorded: string, sql: string): boolean {
  return (
    recorded === sha256(sql) ||
    recorded === sha256(sql.replace(/\r\n/g, "\n")) ||
    recorded === sha256(sql.replace(/\r?\n/g, "\r\n"))
  );
}

/** Migration folders holding a migration.sql, in lexical order (as Prisma orders them). */
export function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): LocalMigration[] {
  if (!existsSync(dir)) throw new Error(`migrations directory not found: ${dir}`);
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory() && existsSync(join(dir, name, "migration.sql")))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: sha256(sql) };
    });
}

/** Turns a Postgres error position (1-based character offset) into a line number of the file. */
function lineOf(sql: string, position: unknown): number | undefined {
  const pos = Number(position);
  if (!Number.isFinite(pos) || pos < 1) return undefined;
  return sql.slice(0, pos - 1).split("\n").length;
}

/**
 * Applies pending migrations to `databaseUrl`; returns the names applied (empty when up to date).
 * Throws when an applied migration's file changed, or when a previous (Prisma) run failed midway.
 */
export async function migrate(databaseUrl: string, log?: MigrateLog, opts: { migrationsDir?: string } = {}): Promise<string[]> {
  const local = readMigrations(opts.migrationsDir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "servify-migrate", connectionTimeoutMillis: 30_000 });
  // A dropped connection surfaces as a failed query below; without a listener it would crash.
  client.on("error", () => undefined);
  await client.connect();
  const applied: string[] = [];
  let locked = false;
  try {
    // Session-level lock: held across the per-migration transactions below. A second process
    // (another replica, or `prisma migrate deploy`) waits here until we are done.
    const got = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [PRISMA_ADVISORY_LOCK_KEY]);
    if (!got.rows[0]?.ok) {
      log?.info("migrate: another process is migrating this database; waiting for its lock");
      await client.query("SELECT pg_advisory_lock($1)", [PRISMA_ADVISORY_LOCK_KEY]);
    }
    locked = true;

    await client.query(CREATE_MIGRATIONS_TABLE);
    const { rows } = await client.query<AppliedRow>(
      `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at`,
    );
    const done = new Map<string, AppliedRow>();
    for (const row of rows) {
      if (row.rolled_back_at) continue; // resolved as rolled back: may be applied again
      if (!row.finished_at) {
        throw new Error(
          `migration ${row.migration_name} failed in an earlier run and is still marked as started in _prisma_migrations; ` +
            `repair the database and mark it rolled back (or delete that row) before migrating again`,
        );
      }
      done.set(row.migration_name, row);
    }

    const localNames = new Set(local.map((m) => m.name));
    for (const name of done.keys()) {
      if (localNames.has(name)) continue;
      const msg = `migrate: ${name} is applied in the database but missing locally`;
      if (log?.warn) log.warn(msg);
      else log?.info(msg);
    }
    for (const m of local) {
      const row = done.get(m.name);
      if (row && !checksumMatches(row.checksum, m.sql)) {
        throw new Error(
          `migration ${m.name} was modified after it was applied (checksum ${row.checksum} in the database, ${m.checksum} on disk); ` +
            `applied migrations are immutable: restore the file and add a new migration instead`,
        );
      }
    }

    for (const m of local) {
      if (done.has(m.name)) continue;
      const started = Date.now();
      const id = randomUUID();
      await client.query("BEGIN");
      try {
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
          [id, m.checksum, m.name],
        );
        // No parameters: the simple query protocol runs the whole multi-statement file.
        await client.query(m.sql);
        await client.query(`UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [id]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        const e = err as Error & { position?: string };
        const line = lineOf(m.sql, e.position);
        throw new Error(`migration ${m.name} failed${line ? ` at line ${line}` : ""}: ${e.message} (rolled back, nothing recorded)`, { cause: err });
      }
      applied.push(m.name);
      log?.info(`migrate: applied ${m.name} in ${Date.now() - started} ms`);
    }
    if (applied.length === 0) log?.info(`migrate: database is up to date (${local.length} migrations)`);
    return applied;
  } finally {
    if (locked) await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_ADVISORY_LOCK_KEY]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

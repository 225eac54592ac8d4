// Runs `prisma generate` without Prisma's native schema engine.
// Why: Prisma 7's client is engine-free (a WASM query compiler shipped in the npm package), but
// the CLI still tries to download a native schema engine from Prisma's own binary host, which
// these machines (and many locked-down build hosts) cannot reach. Generation does not use that
// engine, so we point the CLI at a placeholder. Migrations are applied by `servify migrate`
// (src/lib/migrate.ts), not by the Prisma CLI.
import { spawnSync } from "node:child_process";
const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.platform === "win32" ? "cmd.exe" : "/bin/false";
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";
const r = spawnSync("npx", ["--no-install", "prisma", "generate"], { stdio: "inherit", env, shell: process.platform === "win32" });
process.exit(r.status ?? 1);

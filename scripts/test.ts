// `npm test`: real Postgres + pgvector and Redis (DESIGN §8), then vitest.
//
// With DATABASE_URL and REDIS_URL both set, those are used as they are. Otherwise throwaway
// services are started (scripts/services.ts, installing what is missing) and stopped afterwards,
// also on Ctrl-C or failure. Migrations are applied first; extra arguments go to `vitest run`
// (e.g. `npm test -- test/migrate.test.ts`). Exits with vitest's exit code.
import { spawn, type ChildProcess } from "node:child_process";
import { migrate } from "../src/lib/migrate.js";
import { startServices, type Services } from "./services.js";

function log(msg: string): void {
  process.stderr.write(`[test] ${msg}\n`);
}

async function main(): Promise<number> {
  let services: Services | undefined;
  let child: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= services ? services.stop().catch((err: unknown) => log(`stopping services failed: ${String(err)}`)) : Promise.resolve();
    return stopping;
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping`);
      child?.kill(sig);
      void stop().then(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }

  try {
    let databaseUrl = process.env.DATABASE_URL;
    let redisUrl = process.env.REDIS_URL;
    if (databaseUrl && redisUrl) {
      log("using DATABASE_URL and REDIS_URL from the environment");
    } else {
      services = await startServices();
      databaseUrl = services.databaseUrl;
      redisUrl = services.redisUrl;
    }
    log(`DATABASE_URL=${databaseUrl}`);
    log(`REDIS_URL=${redisUrl}`);

    await migrate(databaseUrl, { info: (msg: string) => log(msg) });

    const args = ["--no-install", "vitest", "run", ...process.argv.slice(2)];
    child = spawn("npx", args, {
      stdio: "inherit",
      env: { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl },
    });
    const running = child;
    const code = await new Promise<number>((resolve, reject) => {
      running.on("error", reject);
      running.on("close", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    return code;
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);

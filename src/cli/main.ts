// servify api | worker | all | migrate | apps import FILE | keys create --app ID | keys create --datasets
// Output for humans goes to stdout; logs go through pino (stderr-free JSON on stdout in server modes).
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/index.js";
import { createLogger } from "../lib/logger.js";
import { migrate } from "../lib/migrate.js";
import { createPrisma } from "../lib/prisma.js";
import { createApiKeyService } from "../modules/auth/api-keys.js";
import { createAppService } from "../modules/apps/service.js";
import { DslError } from "../modules/apps/dsl.js";
import { createTenantService } from "../modules/tenants/service.js";
import { startServer } from "./server.js";

const USAGE = `Usage:
  servify api                      HTTP API only (RUN_MODE=api)
  servify worker                   background workers only (RUN_MODE=worker)
  servify all                      both in one process (npm start)
  servify migrate                  apply database migrations
  servify apps import FILE [--tenant ID]      import a Dify DSL export; prints the app id
  servify keys create --app ID                create an app API key; prints the token
  servify keys create --datasets [--dataset-ids ID,ID] [--tenant ID]
                                              create a knowledge (dataset) API key; prints the token
`;

const out = (s: string) => process.stdout.write(`${s}\n`);
const fail = (s: string, code = 1): never => {
  process.stderr.write(`${s}\n`);
  process.exit(code);
};

async function main(argv: string[]): Promise<void> {
  const config = loadConfig();
  const [cmd, sub, ...rest] = argv;
  switch (cmd) {
    case "api":
    case "worker":
    case "all":
      await startServer(config, cmd);
      return;
    case undefined:
      await startServer(config, config.RUN_MODE);
      return;
    case "migrate": {
      const logger = createLogger({ level: config.LOG_LEVEL });
      const applied = await migrate(config.DATABASE_URL, logger);
      out(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
      return;
    }
    case "apps": {
      if (sub !== "import") fail(USAGE, 2);
      const { values, positionals } = parseArgs({ args: rest, options: { tenant: { type: "string" } }, allowPositionals: true });
      const file = positionals[0] ?? fail(USAGE, 2);
      const prisma = createPrisma(config.DATABASE_URL, { max: 2 });
      try {
        const tenant = await createTenantService(prisma, config.DEFAULT_TENANT_NAME).resolve(values.tenant);
        if (!tenant) fail(`tenant not found: ${values.tenant}`);
        const result = await createAppService(prisma).importYaml(tenant!.id, await readFile(file, "utf8"));
        for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
        out(result.id);
      } catch (e) {
        if (e instanceof DslError) fail(`import failed: ${e.message}`);
        throw e;
      } finally {
        await prisma.$disconnect();
      }
      return;
    }
    case "keys": {
      if (sub !== "create") fail(USAGE, 2);
      const { values } = parseArgs({
        args: rest,
        options: { app: { type: "string" }, datasets: { type: "boolean" }, "dataset-ids": { type: "string" }, tenant: { type: "string" } },
      });
      const prisma = createPrisma(config.DATABASE_URL, { max: 2 });
      try {
        const keys = createApiKeyService(prisma);
        if (values.app) {
          const app = await prisma.app.findUnique({ where: { id: values.app } });
          if (!app) fail(`app not found: ${values.app}`);
          out((await keys.create({ tenantId: app!.tenant_id, type: "app", appId: app!.id })).token);
        } else if (values.datasets) {
          const tenant = await createTenantService(prisma, config.DEFAULT_TENANT_NAME).resolve(values.tenant);
          if (!tenant) fail(`tenant not found: ${values.tenant}`);
          const ids = values["dataset-ids"] ? values["dataset-ids"].split(",").map((s) => s.trim()).filter(Boolean) : [];
          out((await keys.create({ tenantId: tenant!.id, type: "dataset", datasetIds: ids })).token);
        } else fail(USAGE, 2);
      } finally {
        await prisma.$disconnect();
      }
      return;
    }
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return;
    default:
      fail(USAGE, 2);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => fail(`servify: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));

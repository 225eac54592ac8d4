// npm run check:dsl-corpus [DIR]
//
// Imports every *.yml / *.yaml in DIR (default ../shared/fixtures/dsl, the real Dify exports of
// dsl spec §6) with parseDsl, exports it again with exportDsl, re-imports the export and checks
// that the round trip gives the same app (name, mode, normalised config), then builds the
// /parameters body. One line per file, a summary, exit 1 on any failure.
// With --run, every app is also imported into a real server and run once (scripts/corpus-run.ts).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildMeta, buildParameters } from "../src/modules/apps/app-info.js";
import { exportDsl, parseDsl, type ParsedDsl } from "../src/modules/apps/dsl.js";

const out = (line: string) => process.stdout.write(`${line}\n`);

/** First path where a and b differ (object key order ignored), or null when equal. */
function diff(a: unknown, b: unknown, path = "$"): string | null {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return path;
    if (a.length !== b.length) return `${path}.length`;
    for (let i = 0; i < a.length; i++) {
      const d = diff(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join("\u0000") !== kb.join("\u0000")) return `${path} (keys)`;
    for (const k of ka) {
      const d = diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : path;
}

function roundTrip(first: ParsedDsl): void {
  const yaml = exportDsl({
    document: first.document,
    app: { ...first.app, mode: first.mode },
    // Keep secrets so that the comparison below is exact.
    includeSecret: true,
  });
  const second = parseDsl(yaml);
  const checks: Array<[string, unknown, unknown]> = [
    ["mode", first.mode, second.mode],
    ["app", first.app, second.app],
    ["model_config", first.modelConfig, second.modelConfig],
    ["workflow", first.workflow, second.workflow],
    ["dependencies", first.dependencies, second.dependencies],
    ["datasetIds", first.datasetIds, second.datasetIds],
  ];
  for (const [what, a, b] of checks) {
    const d = diff(a, b);
    if (d) throw new Error(`round trip changed ${what} at ${d}`);
  }
  const p1 = buildParameters(first.mode, (first.modelConfig ?? first.workflow)!);
  const p2 = buildParameters(second.mode, (second.modelConfig ?? second.workflow)!);
  const d = diff(p1, p2);
  if (d) throw new Error(`round trip changed /parameters at ${d}`);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const run = args.includes("--run");
  const dir = resolve(args.find((a) => !a.startsWith("--")) ?? "../shared/fixtures/dsl");
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/i.test(f) && statSync(join(dir, f)).isFile())
      .sort();
  } catch (e) {
    out(`FAIL ${dir}: ${e instanceof Error ? e.message : String(e)}`);
    out("0 passed, 1 failed");
    return 1;
  }
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    try {
      const parsed = parseDsl(readFileSync(join(dir, file), "utf8"));
      const config = (parsed.modelConfig ?? parsed.workflow)!;
      buildParameters(parsed.mode, config);
      buildMeta(parsed.mode, config);
      roundTrip(parsed);
      passed++;
      out(`OK ${file} (${parsed.mode}, v${parsed.version}, ${parsed.warnings.length} warnings)`);
    } catch (e) {
      failed++;
      out(`FAIL ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  out(`${passed} passed, ${failed} failed`);
  if (run) {
    out("");
    out("running every app once against the fake model (outbound traffic: loopback only)");
    const { runCorpus } = await import("./corpus-run.js");
    const ran = await runCorpus(dir, files);
    return failed > 0 || ran > 0 ? 1 : 0;
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    out(`check failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);

// Adds lockfile entries for platform-specific optional packages that this workplace's package
// registry does not serve (it answers 404 for them), so `npm ci` sees a complete lockfile.
// The entries carry their os/cpu, so npm skips them on every other platform; on the platform
// they are for, npm fetches them by name and version as usual.
// Usage: node scripts/fix-lock-optional.mjs   (after any `npm install` that rewrites the lock)
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const platforms = { "darwin-arm64": ["darwin", "arm64"], "darwin-x64": ["darwin", "x64"], "linux-arm": ["linux", "arm"], "linux-arm64": ["linux", "arm64"], "linux-x64": ["linux", "x64"], "win32-x64": ["win32", "x64"] };
let added = 0;
for (const [path, meta] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key] || lock.packages[`${path}/node_modules/${dep}`]) continue;
    const suffix = Object.keys(platforms).find((p) => dep.endsWith(`-${p}`));
    if (!suffix) continue;
    const [os, cpu] = platforms[suffix];
    lock.packages[key] = { version, cpu: [cpu], license: "MIT", optional: true, os: [os] };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`added ${added} optional platform entries\n`);

import { defineConfig } from "vitest/config";

// Integration tests talk to real Postgres and Redis (started by scripts/test.ts). Files run in
// parallel worker processes; each test creates its own tenant, app and key, so they never collide.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 4,
    reporters: ["default"],
  },
});

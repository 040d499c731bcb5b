import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    // Tests open real sockets, LISTEN connections and child processes; separate processes keep one file's
    // leftovers from leaking into another.
    pool: "forks",
    testTimeout: 30_000,
    // The first start of an embedded PostgreSQL (initdb) can take a while on a slow machine.
    hookTimeout: 60_000,
    // Type tests (`*.test-d.ts`, `expectTypeOf`, `@ts-expect-error`): checked by tsc, never run.
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "tsconfig.json" },
  },
});

// Issue 8, item 4: the package's types resolve for a consumer under moduleResolution node16, bundler and
// node10, and the client's types pull in neither Node's nor pg's. A throwaway project in a temp folder
// imports the built package through node_modules (a symlink to this checkout), type-checked by the real tsc.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");
const PACKAGE = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  exports: Record<string, string | { types?: string }>;
  typesVersions: Record<string, Record<string, string[]>>;
};

/** Client only: what a browser bundle imports. Each `@ts-expect-error` must be an error, or tsc fails. */
const CLIENT = `import { connect, type RealtimeEventMap } from "pgrealtime/client";
type Events = { task_complete: { taskId: number } };
declare global {
  interface WindowEventMap extends RealtimeEventMap<Events> {}
}
const connection = connect<Events>();
connection.on("task_complete", (detail, event) => detail.taskId.toFixed() + event.id);
// @ts-expect-error not a type of Events
connection.on("task_completed", () => {});
window.addEventListener("rt:task_complete", (e) => e.detail.taskId.toFixed() + String(e.replayOf));
// @ts-expect-error the detail has no title
window.addEventListener("rt:task_complete", (e) => e.detail.title);
`;

/** The server's typed publish, and every other subpath, from the same consumer. */
const SERVER = `import { createRealtime } from "pgrealtime";
import type { createAdmin } from "pgrealtime/admin";
import type { realtime as honoMiddleware } from "pgrealtime/hono";
import type { createRouteHandlers } from "pgrealtime/next";
import type { toNodeHandler } from "pgrealtime/node";
import type { registerMetrics } from "pgrealtime/prometheus";
type Events = { task_complete: { taskId: number } };
const realtime = createRealtime<Events>({ connectionString: "postgres://localhost/app" });
void realtime.publish({ userId: 1, type: "task_complete", detail: { taskId: 1 } });
// @ts-expect-error task_complete needs its detail
void realtime.publish({ userId: 1, type: "task_complete" });
export type Used = [
  typeof createAdmin,
  typeof honoMiddleware,
  typeof createRouteHandlers,
  typeof toNodeHandler,
  typeof registerMetrics,
];
`;

/** `module` that goes with each `moduleResolution`. */
const RESOLUTIONS: Array<{ resolution: string; module: string }> = [
  { resolution: "node16", module: "node16" },
  { resolution: "bundler", module: "esnext" },
  { resolution: "node10", module: "commonjs" },
];

let project: string;

beforeAll(() => {
  project = mkdtempSync(path.join(tmpdir(), "pgrealtime-types-"));
  mkdirSync(path.join(project, "node_modules"));
  symlinkSync(ROOT, path.join(project, "node_modules/pgrealtime"), "dir");
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(path.join(project, "client.ts"), CLIENT);
  writeFileSync(path.join(project, "server.ts"), SERVER);
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/** Runs tsc in the consumer project; resolves to its exit code and output. */
function tsc(args: string[]): Promise<{ code: number; output: string }> {
  const common = ["--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom", "--pretty", "false"];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [TSC, ...common, ...args],
      { cwd: project, timeout: 60_000 },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout }),
    );
  });
}

describe("the built package's types in a consumer project", () => {
  test.for(RESOLUTIONS)(
    "resolve under moduleResolution $resolution, typed client and typed publish alike",
    { timeout: 60_000 },
    async ({ resolution, module }) => {
      const result = await tsc([
        "--module",
        module,
        "--moduleResolution",
        resolution,
        "--skipLibCheck",
        "client.ts",
        "server.ts",
      ]);
      expect(result.output).toBe("");
      expect(result.code).toBe(0);
    },
  );

  test("the client's declarations load neither @types/node nor pg, and check without skipLibCheck", async () => {
    const result = await tsc([
      "--module",
      "esnext",
      "--moduleResolution",
      "bundler",
      "--listFiles",
      "client.ts",
    ]);
    expect(result.code, result.output).toBe(0);
    // Every file of the program but the consumer's own and TypeScript's lib files, by real path.
    const files = result.output
      .split("\n")
      .filter((line) => line.startsWith("/") && !line.includes("typescript/lib/"));
    expect(files).toContain(path.join(ROOT, "dist/client/index.d.ts"));
    expect(files.filter((file) => file.includes("node_modules/"))).toEqual([]);
  }, 60_000);

  test("every subpath in exports has the same types file in typesVersions (what node10 resolves)", () => {
    const mapped = PACKAGE.typesVersions["*"] ?? {};
    for (const [subpath, target] of Object.entries(PACKAGE.exports)) {
      if (subpath === "." || typeof target === "string" || target.types === undefined) continue;
      expect(mapped[subpath.slice(2)], `typesVersions for ${subpath}`).toEqual([target.types]);
    }
  });
});

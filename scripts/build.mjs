// Builds the package into dist/: tsc for the library and its types, esbuild for the browser script
// that {basePath}/client.js serves (a classic script, so `<script src defer>` works without `type=module`).
import { execFileSync } from "node:child_process";
import { chmodSync, renameSync, rmSync } from "node:fs";
import { build } from "esbuild";
import { writeMigrations } from "./generate-migrations.mjs";

// First: the migrations module is compiled from src/sql/*.sql, and tsc compiles it with the rest.
writeMigrations();

// Built aside and swapped in at the end, so a failed build, or tests running meanwhile, never see a
// half-written dist/.
rmSync("dist.tmp", { recursive: true, force: true });
execFileSync(
  process.execPath,
  ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json", "--outDir", "dist.tmp"],
  { stdio: "inherit" },
);
await build({
  entryPoints: ["src/client/auto.ts"],
  outfile: "dist.tmp/client/pgrealtime.global.js",
  bundle: true,
  format: "iife",
  target: "es2018",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
chmodSync("dist.tmp/cli.js", 0o755);
rmSync("dist", { recursive: true, force: true });
renameSync("dist.tmp", "dist");

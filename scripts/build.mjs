// Builds the package into dist/: tsc for the library and its types, esbuild for the browser script
// that {basePath}/client.js serves (a classic script, so `<script src defer>` works without `type=module`),
// and a copy of the admin page's static files.
// With --if-stale (as `npm run demo` runs it), nothing happens when dist/ is newer than all it is built
// from: tsc takes seconds, most of a repeated demo start.
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { writeMigrations } from "./generate-migrations.mjs";

const OUTPUTS = [
  "dist/index.js",
  "dist/cli/index.js",
  "dist/client/pgrealtime.global.js",
  "dist/admin/index.js",
  "dist/admin/static/admin.js",
];
const INPUTS = [
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "scripts/build.mjs",
  "scripts/generate-migrations.mjs",
];

if (process.argv.includes("--if-stale") && upToDate()) {
  console.log("dist/ is up to date with src/; not rebuilding.");
  process.exit(0);
}

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
// The admin page's stylesheet and script, served as they are (no bundling: the browser runs them as written).
cpSync("src/admin/static", "dist.tmp/admin/static", { recursive: true });
chmodSync("dist.tmp/cli/index.js", 0o755);
rmSync("dist", { recursive: true, force: true });
renameSync("dist.tmp", "dist");

/** Whether every output exists and is newer than every input (a checkout or an edit touches the input). */
function upToDate() {
  if (!OUTPUTS.every((file) => existsSync(file))) return false;
  const built = Math.min(...OUTPUTS.map((file) => statSync(file).mtimeMs));
  const sources = readdirSync("src", { recursive: true, encoding: "utf8" }).map((file) => join("src", file));
  return [...INPUTS, ...sources].every((file) => !existsSync(file) || statSync(file).mtimeMs < built);
}

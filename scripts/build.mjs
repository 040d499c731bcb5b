// Builds the package into dist/: tsc for the library and its types, esbuild for the browser script
// that {basePath}/client.js serves (a classic script, so `<script src defer>` works without `type=module`).
import { execFileSync } from "node:child_process";
import { chmodSync, rmSync } from "node:fs";
import { build } from "esbuild";

rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  stdio: "inherit",
});
await build({
  entryPoints: ["src/client/auto.ts"],
  outfile: "dist/client/pgrealtime.global.js",
  bundle: true,
  format: "iife",
  target: "es2018",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
chmodSync("dist/cli.js", 0o755);

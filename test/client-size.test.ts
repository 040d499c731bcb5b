// Item 8 of issue 8: the browser client served as `{basePath}/client.js` stays under 3 KB minified and
// gzipped. Measures the bundle `npm run build` wrote (npm test builds first).
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { expect, test } from "vitest";

const BUNDLE = new URL("../dist/client/pgrealtime.global.js", import.meta.url);
const LIMIT_BYTES = 3 * 1024;

test("the browser client bundle is under 3 KB gzipped", () => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE.pathname} is missing: run \`npm run build\` first`);
  const gzipped = gzipSync(readFileSync(BUNDLE), { level: 9 }).byteLength;
  expect(gzipped).toBeGreaterThan(0);
  expect(gzipped).toBeLessThan(LIMIT_BYTES);
});

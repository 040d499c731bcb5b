// admin.css and admin.js, served by the admin's own handler (the CSP allows only 'self'). They sit in
// static/ beside this module, in the sources and in dist/ alike (the build copies them), read once.
import { readFileSync } from "node:fs";

const TYPES: Readonly<Record<string, string>> = {
  "admin.css": "text/css; charset=utf-8",
  "admin.js": "text/javascript; charset=utf-8",
};

const cache = new Map<string, string>();

/** `GET {basePath}/admin/<name>` (`admin.css`, `admin.js`). */
export function assetResponse(name: string): Response {
  let body = cache.get(name);
  if (body === undefined) {
    body = readFileSync(new URL(`./static/${name}`, import.meta.url), "utf8");
    cache.set(name, body);
  }
  return new Response(body, { headers: { "Content-Type": TYPES[name] ?? "text/plain" } });
}

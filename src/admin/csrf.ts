// Cross-site request protection of the admin's POSTs, two layers deep:
// 1. the browser's word: `Sec-Fetch-Site` must be `same-origin` when sent, and `Origin`, when sent, must
//    name the host the request went to. Hosts are compared, not schemes, as Go's CrossOriginProtection
//    does, so an app behind a TLS-terminating proxy (https outside, http inside) still works;
// 2. a double-submit token: a random value in an HttpOnly, SameSite=Strict cookie scoped to the admin,
//    repeated in a hidden form field. Another site can neither read the cookie nor set it for us.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { parse, serialize } from "cookie";

/** The cookie and the form field that carry the token. */
const CSRF_COOKIE = "pgrealtime-admin-csrf";
export const CSRF_FIELD = "csrf";

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The request's token (from its cookie), or a new one with the `Set-Cookie` header that stores it. */
export function tokenOf(request: Request, path: string): { token: string; setCookie: string | null } {
  const current = parse(request.headers.get("cookie") ?? "")[CSRF_COOKIE];
  if (current !== undefined && TOKEN.test(current)) return { token: current, setCookie: null };
  const token = randomBytes(32).toString("base64url");
  const setCookie = serialize(CSRF_COOKIE, token, {
    httpOnly: true,
    sameSite: "strict",
    path,
    secure: isHttps(request),
  });
  return { token, setCookie };
}

/**
 * Why the browser says a state-changing request is cross-site, or `null`: `Sec-Fetch-Site` other than
 * `same-origin`, or an `Origin` naming another host. Checked before the body is read.
 */
export function crossSiteRefusal(request: Request): string | null {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin") return `a ${site} request (Sec-Fetch-Site)`;
  const origin = request.headers.get("origin");
  if (origin !== null && hostOf(origin) !== new URL(request.url).host) return `a request from ${origin}`;
  return null;
}

/** Why the form's token does not prove it came from the admin's own page, or `null` when it does. */
export function tokenRefusal(request: Request, form: URLSearchParams): string | null {
  const cookie = parse(request.headers.get("cookie") ?? "")[CSRF_COOKIE];
  const field = form.get(CSRF_FIELD);
  if (!cookie || !field) return "a request without the admin's token";
  const a = Buffer.from(cookie);
  const b = Buffer.from(field);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return "a request with a wrong token";
  return null;
}

/** `Origin: null` (sandboxed frames, some redirects) and other non-URLs match no host. */
function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

/** Whether the browser reached us over https, directly or through a proxy that says so. */
function isHttps(request: Request): boolean {
  const forwarded = request.headers.get("x-forwarded-proto")?.split(",")[0]?.trim();
  return new URL(request.url).protocol === "https:" || forwarded === "https";
}

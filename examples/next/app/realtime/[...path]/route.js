// GET /realtime/events, /realtime/client.js (and /realtime/admin… once createAdmin is mounted).
import { createRouteHandlers } from "pgrealtime/next";
import { realtime } from "../../../lib/realtime.js";

// pgrealtime holds PostgreSQL connections: Node.js runtime only, and never prerendered or cached.
export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const { GET } = createRouteHandlers(realtime, {
  // A stand-in for your auth (Auth.js `auth()`, iron-session, a verified JWT): the `user` cookie.
  authenticate: (request) => /(?:^|;\s*)user=([^;]+)/.exec(request.headers.get("cookie") ?? "")?.[1] ?? null,
});

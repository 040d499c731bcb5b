// One realtime instance per server process. Next re-evaluates modules on every hot reload in development;
// kept on globalThis, the instance (and its LISTEN connection) survives them instead of piling up.
// The schema must be migrated once: `DATABASE_URL=postgres://… npx pgrealtime migrate`.
import { createRealtime } from "pgrealtime";

globalThis.pgrealtimeInstance ??= createRealtime({
  connectionString: process.env.DATABASE_URL,
  schema: process.env.PGREALTIME_SCHEMA ?? "pgrealtime",
});

/** Publish from route handlers and server actions: `await realtime.publish({ userId, type, detail })`. */
export const realtime = globalThis.pgrealtimeInstance;

// pgrealtime on Fastify 5: `npm run build`, then `DATABASE_URL=postgres://… node examples/fastify/server.js`.
// Open http://localhost:3000/?user=alice, then `curl -X POST 'localhost:3000/hello?user=alice'` shows an event
// on that page. PORT and PGREALTIME_SCHEMA (default "pgrealtime") are optional.
import { parseCookie } from "cookie";
import Fastify from "fastify";
import { createRealtime } from "pgrealtime";
import { realtimePlugin } from "pgrealtime/fastify";

const realtime = createRealtime({
  connectionString: process.env.DATABASE_URL,
  schema: process.env.PGREALTIME_SCHEMA,
});
await realtime.migrate();

const app = Fastify({ logger: true });
// A stand-in for your session: the page sets a `user` cookie, and the stream's request carries it.
await app.register(realtimePlugin, {
  realtime,
  authenticate: (request) => parseCookie(request.headers.cookie ?? "").user ?? null,
});
app.get("/", (request, reply) => {
  const user = /** @type {{ user?: string }} */ (request.query).user;
  if (user) reply.header("set-cookie", `user=${encodeURIComponent(user)}; Path=/; HttpOnly; SameSite=Lax`);
  const show = `addEventListener("rt:hello", (e) => document.body.append(JSON.stringify(e.detail), " "));`;
  return reply
    .type("text/html")
    .send(`<!doctype html><title>pgrealtime</title>${realtime.scriptTag()}<script>${show}</script>`);
});
app.post("/hello", async (request) => {
  const user = /** @type {{ user?: string }} */ (request.query).user;
  const detail = { at: new Date().toISOString() };
  return user
    ? realtime.publish({ userId: user, type: "hello", detail })
    : realtime.publishGlobal({ type: "hello", detail });
});
// app.close() ends the open streams, then the realtime instance closes.
app.addHook("onClose", () => realtime.close());
process.once("SIGTERM", () => void app.close());
process.once("SIGINT", () => void app.close());
await app.listen({ port: Number(process.env.PORT ?? 3000) });

// pgrealtime in a Hono app on Node. A stand-in session middleware puts the user on Hono's context (your
// session or JWT middleware does this in a real app); the realtime middleware's authenticate reads it.
//   npm run build && DATABASE_URL=postgres://… node examples/hono/server.js
// then open http://localhost:3000/login/alice in one browser and /login/bob in another, and
//   curl -X POST localhost:3000/notify/alice
// PORT (default 3000; 0 takes any free port) and PGREALTIME_SCHEMA (default "pgrealtime") may be set.
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { html, raw } from "hono/html";
import { createRealtime } from "pgrealtime";
import { realtimeMiddleware } from "pgrealtime/hono";

const realtime = createRealtime({
  connectionString: process.env.DATABASE_URL,
  schema: process.env.PGREALTIME_SCHEMA ?? "pgrealtime",
});
await realtime.migrate();

const app = new Hono();
app.use(async (c, next) => {
  c.set("user", getCookie(c, "user") ?? null);
  await next();
});
app.use(realtimeMiddleware(realtime, { authenticate: (c) => c.get("user") }));

app.get("/login/:name", (c) => {
  setCookie(c, "user", c.req.param("name"), { httpOnly: true, sameSite: "Lax", path: "/" });
  return c.redirect("/");
});
app.post("/notify/:name", async (c) => {
  const { id } = await realtime.publish({
    userId: c.req.param("name"),
    type: "notice",
    detail: { at: Date.now() },
  });
  return c.json({ id });
});
// hono/html escapes what it interpolates (the user's name); the script tag is ours, so it goes in raw.
app.get("/", (c) =>
  c.html(html`<!doctype html>
    <title>pgrealtime + Hono</title>
    ${raw(realtime.scriptTag())}
    <p>Signed in as ${c.get("user") ?? "nobody (visit /login/<name>)"}</p>
    <ul id="log"></ul>
    <script>
      window.addEventListener("rt:notice", (e) => {
        const item = document.createElement("li");
        item.textContent = JSON.stringify(e.detail);
        document.getElementById("log").append(item);
      });
    </script>`),
);

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) }, (info) =>
  console.log(`listening on http://localhost:${info.port}/`),
);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    // First: it ends the open event streams, which server.close() would otherwise wait for.
    await realtime.close();
    server.close(() => process.exit(0));
  });
}

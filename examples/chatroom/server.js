// The chatroom demo: sign in with a name, chat with every open browser, and send a notification that only
// your own tabs show. `npm run demo` builds the package first; this file then imports it by its name, exactly
// as an app that installed pgrealtime would.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { parseCookie } from "cookie";
import escapeHtml from "escape-html";
import express from "express";
import pg from "pg";
import { createRealtime } from "pgrealtime";
import { toNodeHandler } from "pgrealtime/node";
import { startPostgres } from "../../scripts/postgres.mjs";

const NAME_COOKIE = "chat_name";
const MAX_NAME_LENGTH = 32;
const MAX_TEXT_LENGTH = 500;
const HISTORY_SIZE = 50;

let stopping = false;

// Until the server listens, a failure ends the demo with one line saying what failed and what to do (also
// one that escapes as an uncaught error), never a stack trace.
const onStartError = (/** @type {unknown} */ error) => failedToStart(error);
process.on("uncaughtException", onStartError);
process.on("unhandledRejection", onStartError);

// DATABASE_URL when set; otherwise an embedded PostgreSQL whose data outlives restarts in the repo's .pgdata/.
const postgres = await startPostgres({
  dataDir: fileURLToPath(new URL("../../.pgdata", import.meta.url)),
  persistent: true,
}).catch((error) => failedToStart(error, "set DATABASE_URL to use a PostgreSQL server of your own instead"));
// One pool for the app's own queries and for pgrealtime's inserts (it opens its LISTEN connection apart).
const pool = new pg.Pool({ connectionString: postgres.connectionString });
// An idle client whose server goes away (a restart; Ctrl+C stops PostgreSQL too) must not crash the app.
pool.on("error", (error) => {
  if (!stopping) console.error("PostgreSQL connection lost:", error.message);
});
const realtime = createRealtime({ pool });
await realtime
  .migrate()
  .catch((error) =>
    failedToStart(
      error,
      postgres.embedded
        ? `delete ${postgres.dataDir} to start with an empty database, or set DATABASE_URL`
        : "check that DATABASE_URL points at a running PostgreSQL server you can connect to",
    ),
  );

const app = express();
app.disable("x-powered-by");
// Before the routes: it serves /realtime/events and /realtime/client.js and passes every other path on.
app.use(toNodeHandler(realtime, { authenticate: nameFromCookie }));
app.use(express.static(fileURLToPath(new URL("public", import.meta.url))));
app.use(express.urlencoded({ extended: false, limit: "8kb" }));

app.get("/", async (req, res) => {
  res.type("html").send(page(nameFromCookie(req), await history()));
});

app.get("/messages", async (_req, res) => {
  res.json(await history());
});

app.post("/signin", (req, res) => {
  const name = cleanName(req.body?.name);
  if (!name) {
    res.status(400).type("text").send(`A name is 1 to ${MAX_NAME_LENGTH} characters.`);
    return;
  }
  res.cookie(NAME_COOKIE, name, { httpOnly: true, sameSite: "lax", maxAge: 30 * 24 * 3600 * 1000 });
  res.redirect(303, "/");
});

app.post("/signout", (_req, res) => {
  res.clearCookie(NAME_COOKIE, { httpOnly: true, sameSite: "lax" });
  res.redirect(303, "/");
});

app.post("/messages", async (req, res) => {
  const author = nameFromCookie(req);
  if (!author) {
    res.status(401).type("text").send("Sign in first.");
    return;
  }
  const text = typeof req.body?.text === "string" ? req.body.text.replace(/\p{Cc}+/gu, " ").trim() : "";
  if (!text || text.length > MAX_TEXT_LENGTH) {
    res.status(400).type("text").send(`A message is 1 to ${MAX_TEXT_LENGTH} characters.`);
    return;
  }
  // Every open page, this one included, shows the message when it arrives as `rt:chat_message`.
  await realtime.publishGlobal({ type: "chat_message", detail: { author, text } });
  done(req, res);
});

app.post("/notify", async (req, res) => {
  const name = nameFromCookie(req);
  if (!name) {
    res.status(401).type("text").send("Sign in first.");
    return;
  }
  const at = new Date().toLocaleTimeString("en-GB");
  await realtime.publish({
    userId: name,
    type: "notification",
    detail: { text: `Hello ${name}: this note (sent ${at}) reaches your tabs only.`, ":id": randomUUID() },
  });
  done(req, res);
});

const server = await listen(createServer(app)).catch((error) =>
  failedToStart(error, "set PORT to a free port, or leave it unset to take any free one"),
);
const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
process.off("uncaughtException", onStartError);
process.off("unhandledRejection", onStartError);
console.log(`Chatroom running at http://localhost:${port}/`);
console.log(
  `PostgreSQL: ${postgres.embedded ? `embedded, data in ${postgres.dataDir}` : "DATABASE_URL"}. ` +
    "Open the page in two browsers, sign in with different names, and chat. Ctrl+C stops.",
);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    // A stuck connection must not keep Ctrl+C from working.
    setTimeout(() => process.exit(1), 10_000).unref();
    try {
      // First: it ends the open event streams, which server.close() would otherwise wait for.
      await realtime.close();
      await new Promise((resolve) => server.close(resolve));
      await pool.end();
    } finally {
      await postgres.stop();
    }
  });
}

/**
 * Prints why the demo could not start, in one line, and exits 1 (an embedded PostgreSQL stops on exit).
 *
 * @param {unknown} error
 * @param {string} [todo] What to do about it, unless the error's own message says.
 * @returns {never}
 */
function failedToStart(error, todo = "set DATABASE_URL to use a PostgreSQL server of your own") {
  // Only the first line: the rest of an embedded server's failure is its log.
  const what =
    describe(error)
      .split("\n")[0]
      ?.replace(/[.;]\s*$/, "") || "unknown error";
  // A RealtimeError names its own remedy (run the migration, upgrade pgrealtime), and so do the messages that
  // already point at DATABASE_URL.
  const ownRemedy =
    (error instanceof Error && error.name === "RealtimeError") || what.includes("DATABASE_URL");
  console.error(`Chatroom failed to start: ${what}${ownRemedy ? "" : `; ${todo}`}.`);
  process.exit(1);
}

/**
 * An error's message; for a connection refused on every address of a name (an AggregateError with no message
 * of its own), the first one's.
 *
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  if (error instanceof AggregateError && !error.message) return describe(error.errors[0]);
  if (error instanceof Error)
    return error.message || String(/** @type {NodeJS.ErrnoException} */ (error).code);
  return String(error);
}

/** @param {import("node:http").IncomingMessage} req */
function nameFromCookie(req) {
  return cleanName(parseCookie(req.headers.cookie ?? "")[NAME_COOKIE]);
}

// A name is an identity, not an account: whoever types a name is that user. Fine for a demo, and it shows
// that user-scoped events follow whatever `authenticate` returns.
/** @param {unknown} value */
function cleanName(value) {
  if (typeof value !== "string") return null;
  const name = value.replace(/\s+/g, " ").trim();
  return name && name.length <= MAX_NAME_LENGTH && !/\p{Cc}/u.test(name) ? name : null;
}

// Pages that post with fetch want no page back; a plain form post (script disabled) goes back to the room.
/**
 * @param {import("express").Request} req
 * @param {import("express").Response} res
 */
function done(req, res) {
  if (req.get("x-requested-with") === "fetch") res.status(204).end();
  else res.redirect(303, "/");
}

/** The last messages, oldest first, and the newest event id at the time: the cursor the page resumes from. */
async function history() {
  // The cursor is read first: a message committed between the two reads is then both listed and replayed
  // (the page drops the copy by id) instead of neither.
  const cursor = await realtime.currentEventId();
  const { events } = await realtime.events.list({ type: "chat_message", limit: HISTORY_SIZE });
  const messages = events.map(({ id, detail, createdAt }) => ({
    id,
    author: String(detail.author),
    text: String(detail.text),
    createdAt,
  }));
  return { cursor, messages: messages.reverse() };
}

/**
 * @param {string | null} name
 * @param {Awaited<ReturnType<typeof history>>} history
 */
function page(name, { cursor, messages }) {
  const items = messages
    .map(
      (m) => `<li data-id="${m.id}"${m.author === name ? ' class="mine"' : ""}>
        <span class="author">${escapeHtml(m.author)}</span>
        <span class="text">${escapeHtml(m.text)}</span>
        <time datetime="${m.createdAt.toISOString()}"></time>
      </li>`,
    )
    .join("\n");
  const account = name
    ? `<form method="post" action="/signout" class="account">
        <span>Signed in as <strong>${escapeHtml(name)}</strong></span>
        <button type="submit" class="link">Sign out</button>
      </form>`
    : "";
  const footer = name
    ? `<form method="post" action="/messages" id="compose" class="bar" data-fetch>
        <input name="text" maxlength="${MAX_TEXT_LENGTH}" required autocomplete="off" autofocus
          placeholder="Say something to everyone" aria-label="Message">
        <button type="submit">Send</button>
      </form>
      <form method="post" action="/notify" id="notify" class="bar quiet" data-fetch>
        <button type="submit" class="secondary">Notify me</button>
        <span>a note only your own tabs show</span>
      </form>`
    : `<form method="post" action="/signin" class="bar">
        <input name="name" maxlength="${MAX_NAME_LENGTH}" required autocomplete="nickname" autofocus
          placeholder="Your name" aria-label="Your name">
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">You are watching anonymously: you see the chat live. Sign in to take part.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Chatroom · pgrealtime</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/style.css">
  <script src="/chat.js" defer></script>
  ${realtime.scriptTag(cursor ? { lastEventId: cursor } : {})}
</head>
<body data-me="${escapeHtml(name ?? "")}">
  <header>
    <h1>Chatroom</h1>
    <span id="status" class="status">connecting</span>
    ${account}
  </header>
  <main>
    <ol id="messages">${items}</ol>
    <p class="empty">No messages yet. Say hello!</p>
  </main>
  <footer>${footer}</footer>
  <div id="toasts" aria-live="polite"></div>
</body>
</html>
`;
}

/**
 * Listens on PORT, or on 3000 when that is free and any free port when not.
 *
 * @param {import("node:http").Server} server
 * @returns {Promise<import("node:http").Server>}
 */
function listen(server) {
  const wanted = process.env.PORT ? Number(process.env.PORT) : undefined;
  return new Promise((resolve, reject) => {
    server.once("error", (/** @type {NodeJS.ErrnoException} */ error) => {
      if (error.code !== "EADDRINUSE" || wanted !== undefined) return reject(error);
      console.log("Port 3000 is busy; using a free one.");
      server.once("error", reject);
      server.listen(0);
    });
    server.once("listening", () => {
      server.removeAllListeners("error");
      resolve(server);
    });
    server.listen(wanted ?? 3000);
  });
}

// The page's own script. pgrealtime's client (the tag from realtime.scriptTag()) dispatches every event it
// receives on window as `rt:<type>`, with the published detail as `event.detail` and the event id as `event.id`.
const list = document.getElementById("messages");
const status = document.getElementById("status");
const toasts = document.getElementById("toasts");
const me = document.body.dataset.me;
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
// The history rendered with the page and the live stream can both carry a message sent during the load.
const shown = new Set();

for (const item of list.children) {
  shown.add(item.dataset.id);
  showTime(item.querySelector("time"));
}
scrollToEnd(true);

window.addEventListener("rt:chat_message", (event) => {
  addMessage({ id: event.id, ...event.detail, createdAt: new Date().toISOString() });
});
window.addEventListener("rt:notification", (event) => toast(event.detail.text));
window.addEventListener("rt:connected", () => setStatus("live"));
window.addEventListener("rt:disconnected", () => setStatus("offline"));
// The server could not resume this page's stream from where it left off: reload the history instead.
window.addEventListener("rt:reset", async () => {
  const response = await fetch("/messages");
  if (!response.ok) return;
  const { messages } = await response.json();
  list.replaceChildren();
  shown.clear();
  for (const message of messages) addMessage(message);
});

// Post without leaving the page; the server answers 204 and the message comes back over the stream.
for (const form of document.querySelectorAll("form[data-fetch]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "X-Requested-With": "fetch" },
        body: new URLSearchParams(new FormData(form)),
      });
      if (!response.ok) throw new Error(await response.text());
      form.reset();
    } catch (error) {
      toast(error instanceof TypeError ? "The server cannot be reached." : error.message, "error");
    } finally {
      button.disabled = false;
      form.querySelector("input")?.focus();
    }
  });
}

function addMessage({ id, author, text, createdAt }) {
  if (shown.has(id)) return;
  shown.add(id);
  const atEnd = main().scrollHeight - main().scrollTop - main().clientHeight < 40;
  const item = document.createElement("li");
  item.dataset.id = id;
  if (author === me) item.className = "mine";
  const time = document.createElement("time");
  time.dateTime = createdAt;
  showTime(time);
  item.append(span("author", author), span("text", text), time);
  list.append(item);
  scrollToEnd(atEnd || author === me);
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function showTime(time) {
  if (time) time.textContent = timeFormat.format(new Date(time.dateTime));
}

function main() {
  return document.querySelector("main");
}

function scrollToEnd(really) {
  if (really) main().scrollTop = main().scrollHeight;
}

function setStatus(state) {
  status.textContent = state;
  status.dataset.state = state;
}

function toast(text, kind = "note") {
  const element = document.createElement("div");
  element.className = `toast ${kind}`;
  element.textContent = text;
  toasts.append(element);
  setTimeout(() => element.remove(), 6000);
}

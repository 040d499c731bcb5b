// The admin page's only script (served by the admin itself; the CSP allows no other). Live mode: the
// page connects its own pgrealtime client to {basePath}/admin/live and prepends each `rt:admin.event`
// to the list. Rows are built with DOM calls and textContent only: data never becomes markup.
(() => {
  const toggle = document.getElementById("live");
  const rows = document.getElementById("events");
  if (!(toggle instanceof HTMLInputElement) || rows === null) return;
  const state = document.getElementById("live-state");
  const filters = toggle.dataset;
  let connection = null;

  const show = (text) => {
    if (state) state.textContent = text;
    document.body.dataset.live = text;
  };

  const cell = (row, text) => {
    const td = document.createElement("td");
    if (text !== undefined) td.textContent = text;
    row.append(td);
    return td;
  };

  const link = (td, id) => {
    const a = document.createElement("a");
    a.href = filters.events + encodeURIComponent(id);
    a.textContent = id;
    td.append(a);
  };

  // Live rows follow the list's filters the page was loaded with (the server leaves the toggle out
  // where no new event could match).
  const matches = (event) =>
    (!filters.type || event.type === filters.type) &&
    (!filters.scope || event.scope === filters.scope) &&
    (!filters.user || event.userId === filters.user);

  const prepend = (event) => {
    const row = document.createElement("tr");
    row.className = "arrived";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "id";
    box.value = event.id;
    box.setAttribute("aria-label", `select ${event.id}`);
    cell(row).append(box);
    link(cell(row), event.id);
    cell(row, event.type);
    cell(row, event.scope);
    cell(row, event.userId ?? "—");
    cell(row, "—");
    cell(row, event.createdAt.replace("T", " ").replace("Z", ""));
    const replayOf = cell(row);
    if (event.replayOf) link(replayOf, event.replayOf);
    rows.prepend(row);
    document.querySelector(".empty")?.remove();
  };

  const onEvent = (e) => {
    if (e.detail && matches(e.detail)) prepend(e.detail);
  };
  const onConnected = () => show("connected");
  const onDisconnected = () => show("reconnecting…");

  toggle.addEventListener("change", () => {
    if (toggle.checked && connection === null) {
      if (!window.pgrealtime) {
        show("unavailable: the realtime client did not load");
        return;
      }
      window.addEventListener("rt:admin.event", onEvent);
      window.addEventListener("rt:connected", onConnected);
      window.addEventListener("rt:disconnected", onDisconnected);
      show("connecting…");
      connection = window.pgrealtime.connect({ url: filters.url });
    } else if (!toggle.checked && connection !== null) {
      connection.close();
      connection = null;
      window.removeEventListener("rt:admin.event", onEvent);
      window.removeEventListener("rt:connected", onConnected);
      window.removeEventListener("rt:disconnected", onDisconnected);
      show("off");
    }
  });
})();

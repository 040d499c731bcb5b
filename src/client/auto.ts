/**
 * The script served at `{basePath}/client.js` (bundled as a classic script, so `<script src defer>` works):
 * it connects by itself and exposes `window.pgrealtime` for pages that connect by hand.
 *
 * Attributes read from its own `<script>` element:
 * - `data-auto-connect="false"`: do not connect; call `window.pgrealtime.connect(options)` instead.
 * - `data-last-event-id`: the starting cursor rendered with the page (`realtime.scriptTag({ lastEventId })`).
 * - `data-url`: the stream's URL; default: the script's own URL with `client.js` replaced by `events`.
 * - `data-prefix`: the event name prefix, default `rt:`.
 * - `data-with-credentials="true"`: send cookies to a cross-origin stream.
 *
 * @module
 */

import { type ConnectOptions, connect, type RealtimeConnection } from "./index.js";

/** What the script tag puts on `window.pgrealtime`. */
export interface PgRealtimeGlobal {
  connect: typeof connect;
  /** The connection the script tag opened by itself; `null` with `data-auto-connect="false"`. */
  connection: RealtimeConnection | null;
}

declare global {
  interface Window {
    pgrealtime?: PgRealtimeGlobal;
  }
}

function optionsFrom(script: HTMLScriptElement | null): ConnectOptions {
  if (script === null) return {};
  const data = script.dataset;
  const options: ConnectOptions = { url: data.url ?? eventsUrlBeside(script.src) };
  if (data.lastEventId) options.lastEventId = data.lastEventId;
  if (data.prefix !== undefined) options.prefix = data.prefix;
  if (data.withCredentials === "true") options.withCredentials = true;
  return options;
}

/** `https://app/realtime/client.js?v=3` → `https://app/realtime/events`, so a custom basePath just works. */
function eventsUrlBeside(src: string): string | undefined {
  if (!src) return undefined;
  const url = new URL(src, location.href);
  if (!url.pathname.endsWith("/client.js")) return undefined;
  url.pathname = `${url.pathname.slice(0, -"client.js".length)}events`;
  url.search = "";
  url.hash = "";
  return url.href;
}

function start(): void {
  // A second copy of the tag must not open a second stream and dispatch every event twice.
  if (window.pgrealtime !== undefined) return;
  const current = document.currentScript;
  const script = current instanceof HTMLScriptElement ? current : null;
  const global: PgRealtimeGlobal = { connect, connection: null };
  window.pgrealtime = global;
  if (script?.dataset.autoConnect === "false") return;
  global.connection = connect(optionsFrom(script));
}

start();

/**
 * Types only (nothing of it reaches the bundle): the DOM events the client dispatches, by name, for
 * `addEventListener` through declaration merging.
 *
 * @module
 */

import type { DefaultEvents, EventMap } from "../event-map.js";
import type { RealtimeDomEvent } from "./index.js";

/**
 * The DOM events a connection dispatches, keyed by their full names: `rt:<type>` and `rt:<type>:<id>` for
 * every type of `Events` (the map the server was created with), `rt:connected`, `rt:disconnected` and
 * `rt:reset`. `Prefix` must match the connection's `prefix` option (default `"rt:"`).
 *
 * Merge it into `WindowEventMap` (or `HTMLElementEventMap` for another `target`) once, and every
 * `addEventListener` on the window is typed: the detail, `e.id`, `e.scope`, `e.replayOf`.
 *
 * @example
 * import type { RealtimeEventMap } from "pgrealtime/client";
 * import type { Events } from "./events.js"; // the map given to createRealtime<Events>()
 *
 * declare global {
 *   interface WindowEventMap extends RealtimeEventMap<Events> {}
 * }
 *
 * window.addEventListener("rt:task_complete", (e) => console.log(e.detail.taskId, e.id, e.replayOf));
 */
export type RealtimeEventMap<Events extends EventMap = DefaultEvents, Prefix extends string = "rt:"> = {
  [K in keyof Events & string as `${Prefix}${K}` | `${Prefix}${K}:${string}`]: RealtimeDomEvent<Events[K]>;
} & Record<`${Prefix}connected`, CustomEvent<{ userId: string | null }>> &
  Record<`${Prefix}disconnected`, CustomEvent<null>> &
  Record<`${Prefix}reset`, CustomEvent<{ reason: string }>>;

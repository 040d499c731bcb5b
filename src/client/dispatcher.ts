/**
 * Turns the stream's frames into DOM events: `rt:<type>` and `rt:<type>:<":id">` for application events,
 * `rt:connected`, `rt:disconnected` and `rt:reset` for the connection's state; and drops event ids
 * already dispatched. It knows nothing of the stream itself.
 *
 * @module
 */

/** Where an application event was published: one user's connections, or every connection. */
export type BrowserScope = "user" | "global";

/** The handle {@link createDispatcher} returns. */
export interface Dispatcher {
  /** Dispatches `rt:connected` with the server's `{ userId }` (`{ userId: null }` if unreadable). */
  connected(data: string): void;
  /** Dispatches `rt:disconnected` (detail `null`). */
  disconnected(): void;
  /** Forgets every id dispatched so far and dispatches `rt:reset` with `{ reason }` (`"unknown"` if unreadable). */
  reset(data: string): void;
  /**
   * Dispatches an application frame as `rt:<type>`, then `rt:<type>:<":id">` when `detail[":id"]` is a
   * string or number, calling `accepted` just before. Ignores it (no call, nothing dispatched) when it is
   * not JSON, its `type` is reserved or malformed, its `detail` is not a plain object, or its `data.id`
   * was already dispatched (since the last reset).
   */
  message(data: string, accepted: () => void): void;
  /** Stops what `message` has not yet dispatched (a listener may close the connection mid-way). */
  stop(): void;
}

/** Resume overlaps repeat recent ids, not ancient ones. */
const REMEMBERED_IDS = 1_000;
/**
 * The stream's own frame and DOM event names, which the server never publishes as a type: a frame
 * claiming one (or a malformed type) did not come from its publish path.
 */
const RESERVED_TYPES = new Set(["connected", "disconnected", "reset", "error", "ping"]);
const TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

/** Dispatches on `target`, every name prefixed with `prefix` (e.g. `"rt:"`). */
export function createDispatcher(target: EventTarget, prefix: string): Dispatcher {
  // Insertion-ordered, so the oldest id is the first one to forget.
  const dispatched = new Set<string>();
  let stopped = false;
  const emit = (name: string, detail: unknown): void => {
    target.dispatchEvent(new CustomEvent(prefix + name, { detail }));
  };

  return {
    connected(data) {
      const message = parseJson(data);
      emit("connected", isObject(message) ? message : { userId: null });
    },
    disconnected() {
      emit("disconnected", null);
    },
    reset(data) {
      // The server could not resume from our cursor, so the ids we remember may belong to another
      // history (a recreated table restarts at 1); keeping them could drop new events.
      dispatched.clear();
      const message = parseJson(data);
      emit("reset", {
        reason: isObject(message) && typeof message.reason === "string" ? message.reason : "unknown",
      });
    },
    message(data, accepted) {
      const message = parseJson(data);
      if (!isObject(message) || !isObject(message.detail)) return;
      const { type, detail } = message;
      if (typeof type !== "string" || !TYPE_PATTERN.test(type) || RESERVED_TYPES.has(type)) return;
      const id = typeof message.id === "string" ? message.id : "";
      if (id !== "") {
        if (dispatched.has(id)) return;
        dispatched.add(id);
        if (dispatched.size > REMEMBERED_IDS) dispatched.delete(dispatched.values().next().value as string);
      }
      accepted();
      const scope = message.scope === "user" ? "user" : "global";
      const replayOf = typeof message.replayOf === "string" ? message.replayOf : null;
      const facts: EventFacts = { id, scope, replayOf };
      const name = prefix + type;
      target.dispatchEvent(realtimeEvent(name, detail, facts));
      const entity = detail[":id"];
      if ((typeof entity === "string" || typeof entity === "number") && !stopped) {
        // Its own copy: a listener of the first event may have mutated the detail it was given.
        const copy = (parseJson(data) as { detail: Record<string, unknown> }).detail;
        target.dispatchEvent(realtimeEvent(`${name}:${entity}`, copy, facts));
      }
    },
    stop() {
      stopped = true;
    },
  };
}

/** What rides on a DOM event beside its detail: `replayOf` is the replayed event's id, or `null`. */
interface EventFacts {
  id: string;
  scope: BrowserScope;
  replayOf: string | null;
}

function realtimeEvent(name: string, detail: unknown, facts: EventFacts): CustomEvent {
  const event = new CustomEvent(name, { detail });
  Object.defineProperties(event, {
    id: { value: facts.id, enumerable: true },
    scope: { value: facts.scope, enumerable: true },
    replayOf: { value: facts.replayOf, enumerable: true },
  });
  return event;
}

/** `undefined` for anything but a string of valid JSON. */
function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A JSON object: not `null`, not an array. */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

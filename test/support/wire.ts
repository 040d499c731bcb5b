// Checks on what a stream really carried, beyond its application events: the fields a forged or
// widened event could smuggle in (a second `retry:`, an `event: reset`, an `id:` on a control frame,
// a reserved type inside the data). Cursors (`id:` lines) are opaque: events are known by `data.id`.
import type { SseClient } from "./sse.js";

/** Types the browser client fires itself (`rt:connected`, `rt:reset`, …): never an application event. */
export const RESERVED_TYPES = new Set(["connected", "disconnected", "reset", "error"]);

/**
 * Everything on the stream that should not be there, as readable sentences (empty when clean):
 * a `retry:` other than the one prelude value, a named event other than one `connected` and `ping`s,
 * an `id:` on a named frame, an application frame without an `id:` line or with a reserved type.
 *
 * @param retryMs the instance's `retryMs` (default 3000), the only `retry:` value expected.
 */
export function wireProblems(stream: SseClient, retryMs = 3000): string[] {
  const problems: string[] = [];
  if (stream.retries.length !== 1 || stream.retries[0] !== retryMs) {
    problems.push(`retry: values ${JSON.stringify(stream.retries)}, expected [${retryMs}]`);
  }
  const connected = stream.messages.filter((m) => m.event === "connected").length;
  if (connected !== 1) problems.push(`${connected} connected frames`);
  for (const message of stream.messages) {
    if (message.event === "message") {
      if (message.id === undefined) problems.push(`an event without an id: line: ${message.data}`);
      const type = (JSON.parse(message.data) as { type?: unknown }).type;
      if (typeof type !== "string" || RESERVED_TYPES.has(type)) {
        problems.push(`an event of type ${JSON.stringify(type)}: ${message.data}`);
      }
    } else if (message.event !== "connected" && message.event !== "ping") {
      problems.push(`an "event: ${message.event}" frame: ${message.data}`);
    } else if (message.id !== undefined) {
      problems.push(`an id: line on a ${message.event} frame: ${JSON.stringify(message.id)}`);
    }
  }
  return problems;
}

/** The `id:` line (the opaque cursor) of the frame that carried the event `eventId`. */
export function cursorOf(stream: SseClient, eventId: string): string {
  const message = stream.messages.find(
    (m) => m.event === "message" && (JSON.parse(m.data) as { id: string }).id === eventId,
  );
  if (message?.id === undefined) throw new Error(`event ${eventId} came without an id: line, or not at all`);
  return message.id;
}

/** The last `id:` value the stream carried (application or reset frame), as a browser would resend it. */
export function lastCursor(stream: SseClient): string | null {
  for (let i = stream.messages.length - 1; i >= 0; i--) {
    const id = stream.messages[i]?.id;
    if (id !== undefined) return id;
  }
  return null;
}

/** Whether the stream carried the application event `eventId`. */
export function carried(stream: SseClient, eventId: string): boolean {
  return stream.events.some((e) => e.id === eventId);
}

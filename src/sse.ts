// Server-Sent Events framing. Frames are encoded to bytes once and written as they are; event data is
// JSON.stringify output, which never holds a raw CR or LF, and ids and names are checked by their
// producers (cursor tokens, UUIDs, fixed names), so no field can be forged through a value.

const encoder = new TextEncoder();

/**
 * The heartbeat: a comment line, which every proxy sees as traffic, then a named `ping` event with
 * empty data, which EventSource does dispatch: a comment alone never reaches the page, and the client
 * needs to see heartbeats to tell a silent stream from a dead one.
 */
export const PING_FRAME: Uint8Array = encoder.encode(": ping\nevent: ping\ndata:\n\n");

/** `retry: <ms>`: how long the browser waits before its own reconnect. */
export function retryFrame(retryMs: number): Uint8Array {
  return encoder.encode(`retry: ${retryMs}\n\n`);
}

/**
 * A named control event (`connected`, `reset`) with a JSON data line, and optionally an `id:` line
 * that moves the client's cursor (an empty one clears it).
 */
export function namedFrame(name: string, data: object, id?: string): Uint8Array {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  return encoder.encode(`event: ${name}\n${idLine}data: ${JSON.stringify(data)}\n\n`);
}

/**
 * An application event: the `id:` line holds the cursor the client resumes from (see cursor.ts), the
 * data the event as the browser sees it.
 */
export function eventFrame(
  event: { id: string; type: string; scope: string; detail: object; replayOf?: string },
  cursor: string,
): Uint8Array {
  const { id, type, scope, detail, replayOf } = event;
  const data = JSON.stringify(
    replayOf === undefined ? { id, type, scope, detail } : { id, type, scope, detail, replayOf },
  );
  return encoder.encode(`id: ${cursor}\ndata: ${data}\n\n`);
}

import type { Sink } from "../sse.js";

/**
 * A stream for a Fetch API `Response`. Its queue is counted in bytes, so `bufferedBytes` is what the
 * client has not read yet. The cleanup runs once, when the client goes away (cancel or abort).
 */
export function createWebSink(signal?: AbortSignal): {
  stream: ReadableStream<Uint8Array>;
  sink: Sink;
  onClose(cleanup: () => void): void;
} {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let cleanup: (() => void) | undefined;
  let gone = false;

  const clientGone = () => {
    if (gone) return;
    gone = true;
    cleanup?.();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel: clientGone,
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );
  signal?.addEventListener("abort", clientGone, { once: true });

  const sink: Sink = {
    write(chunk) {
      if (!closed) controller.enqueue(chunk);
    },
    get bufferedBytes() {
      return closed ? 0 : -(controller.desiredSize ?? 0);
    },
    close() {
      if (closed) return;
      closed = true;
      signal?.removeEventListener("abort", clientGone);
      try {
        controller.close();
      } catch {
        // Already cancelled by the client: nothing left to close.
      }
    },
  };
  return {
    stream,
    sink,
    onClose(fn) {
      cleanup = fn;
      if (gone) fn();
    },
  };
}

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
  // Resolved when the reader asks for more with nothing queued: all written data was taken.
  let drainWaiters: Array<() => void> = [];
  const wakeDrainWaiters = () => {
    for (const resolve of drainWaiters) resolve();
    drainWaiters = [];
  };

  const clientGone = () => {
    if (gone) return;
    gone = true;
    wakeDrainWaiters();
    cleanup?.();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull: wakeDrainWaiters,
      cancel: clientGone,
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );
  signal?.addEventListener("abort", clientGone, { once: true });

  function end(finish: () => void): void {
    if (closed) return;
    closed = true;
    signal?.removeEventListener("abort", clientGone);
    wakeDrainWaiters();
    try {
      finish();
    } catch {
      // Already cancelled by the client: nothing left to end.
    }
  }

  const sink: Sink = {
    write(chunk) {
      if (!closed) controller.enqueue(chunk);
    },
    get bufferedBytes() {
      return closed ? 0 : -(controller.desiredSize ?? 0);
    },
    drained() {
      if (closed || gone || (controller.desiredSize ?? 0) >= 0) return Promise.resolve();
      return new Promise((resolve) => drainWaiters.push(resolve));
    },
    abort() {
      // Erroring the stream discards its queue; the runtime then drops the response.
      end(() => controller.error(new Error("pgrealtime: the client stopped reading")));
    },
    close() {
      end(() => controller.close());
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

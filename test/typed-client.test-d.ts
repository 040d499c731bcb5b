// Compile-time tests of the typed client and the typed publish: `vitest run` type-checks this file (never
// runs it). Each `@ts-expect-error` is a test too: tsc fails the run when the line below it compiles.
import { describe, expectTypeOf, test } from "vitest";
import type { BrowserScope, JsonObject, RealtimeConnection, RealtimeEventMap } from "../src/client/index.js";
import { connect } from "../src/client/index.js";
import type { Realtime } from "../src/index.js";

/** The one map a typed app gives both `createRealtime<Events>()` and `connect<Events>()`. */
type Events = {
  task_complete: { taskId: number };
  chat_message: { text: string; author?: string };
  /** No required key: `detail` may be left out of `publish`. */
  refresh: { reason?: string };
};

// Merged under a prefix of its own, so that this file's augmentation types no other file's `rt:` listeners.
declare global {
  interface WindowEventMap extends RealtimeEventMap<Events, "typed:"> {}
}

describe("connect<Events>() and connection.on", () => {
  test("on passes the detail typed by the map and the DOM event with id, scope and replayOf", () => {
    const connection = connect<Events>();
    expectTypeOf(connection).toEqualTypeOf<RealtimeConnection<Events>>();
    const off = connection.on("task_complete", (detail, event) => {
      expectTypeOf(detail).toEqualTypeOf<{ taskId: number }>();
      expectTypeOf(event.detail).toEqualTypeOf<{ taskId: number }>();
      expectTypeOf(event.id).toEqualTypeOf<string>();
      expectTypeOf(event.scope).toEqualTypeOf<BrowserScope>();
      expectTypeOf(event.replayOf).toEqualTypeOf<string | null>();
    });
    expectTypeOf(off).toEqualTypeOf<() => void>();
    connection.on("chat_message", (detail) => {
      expectTypeOf(detail.author).toEqualTypeOf<string | undefined>();
    });
  });

  test("an unknown type is refused", () => {
    const connection = connect<Events>();
    // @ts-expect-error "task_completed" is not a type of Events
    connection.on("task_completed", () => {});
  });

  test("a handler reading a property the detail does not have is refused", () => {
    const connection = connect<Events>();
    // @ts-expect-error task_complete's detail has no `userId`
    connection.on("task_complete", (detail) => detail.userId);
  });

  test("a handler expecting another detail type is refused", () => {
    const connection = connect<Events>();
    // @ts-expect-error taskId is a number, not a string
    connection.on("task_complete", (detail: { taskId: string }) => detail.taskId);
  });

  test("connect() without a type parameter takes any type, with a JSON object detail", () => {
    const connection = connect({ url: "/realtime/events" });
    expectTypeOf(connection).toEqualTypeOf<RealtimeConnection>();
    connection.on("anything", (detail, event) => {
      expectTypeOf(detail).toEqualTypeOf<JsonObject>();
      expectTypeOf(event.id).toEqualTypeOf<string>();
    });
    expectTypeOf(connection.close).toEqualTypeOf<() => void>();
    expectTypeOf(connection.lastEventId).toEqualTypeOf<string | null>();
  });
});

describe("RealtimeEventMap merged into WindowEventMap", () => {
  test("window.addEventListener gets the typed detail and facts of rt:<type> and rt:<type>:<id>", () => {
    window.addEventListener("typed:task_complete", (e) => {
      expectTypeOf(e.detail.taskId).toEqualTypeOf<number>();
      expectTypeOf(e.id).toEqualTypeOf<string>();
      expectTypeOf(e.scope).toEqualTypeOf<BrowserScope>();
      expectTypeOf(e.replayOf).toEqualTypeOf<string | null>();
    });
    window.addEventListener("typed:task_complete:42", (e) => {
      expectTypeOf(e.detail).toEqualTypeOf<{ taskId: number }>();
    });
    window.addEventListener("typed:connected", (e) => {
      expectTypeOf(e.detail).toEqualTypeOf<{ userId: string | null }>();
    });
    window.addEventListener("typed:reset", (e) => {
      expectTypeOf(e.detail.reason).toEqualTypeOf<string>();
    });
  });

  test("a listener reading a property the detail does not have is refused", () => {
    // @ts-expect-error task_complete's detail has no `text`
    window.addEventListener("typed:task_complete", (e) => e.detail.text);
  });

  test("an unknown name stays a plain Event", () => {
    window.addEventListener("typed:task_completed", (e) => {
      expectTypeOf(e).toEqualTypeOf<Event>();
    });
  });
});

describe("the server's publish with the same map", () => {
  const realtime = {} as Realtime<Events>;

  test("a known type with its detail compiles and resolves to the typed event", () => {
    const published = realtime.publish({ userId: 42, type: "task_complete", detail: { taskId: 123 } });
    expectTypeOf(published).resolves.toHaveProperty("detail").toEqualTypeOf<{ taskId: number }>();
    realtime.publishGlobal({ type: "chat_message", detail: { text: "hi" } });
  });

  test("a detail without required keys may be left out", () => {
    realtime.publish({ userId: 42, type: "refresh" });
    realtime.publishGlobal({ type: "refresh" });
    realtime.publishSystem({ type: "refresh" });
  });

  test("a required detail omitted is refused, in every publish", () => {
    // @ts-expect-error task_complete needs its detail
    realtime.publish({ userId: 42, type: "task_complete" });
    // @ts-expect-error task_complete needs its detail
    realtime.publishGlobal({ type: "task_complete" });
    // @ts-expect-error task_complete needs its detail
    realtime.publishSystem({ type: "task_complete" });
  });

  test("a wrong detail and an unknown type are refused", () => {
    // @ts-expect-error taskId is a number
    realtime.publish({ userId: 42, type: "task_complete", detail: { taskId: "123" } });
    // @ts-expect-error "task_completed" is not a type of Events
    realtime.publishGlobal({ type: "task_completed", detail: { taskId: 1 } });
  });

  test("an instance without a map publishes any type, detail optional", () => {
    const untyped = {} as Realtime;
    untyped.publish({ userId: 1, type: "anything" });
    untyped.publishGlobal({ type: "anything", detail: { nested: { a: [1, "b", null] } } });
  });
});

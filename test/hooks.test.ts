// C40: what hooks return can narrow or change what a connection sees, never widen where an event goes,
// never put a reserved type on the wire, and never stall delivery.
import { describe, expect, it } from "vitest";
import type { RealtimeEvent, RealtimeOptions } from "../src/index.js";
import { loggedAbout, recordingLogger } from "./support/observe.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";
import { carried, RESERVED_TYPES, wireProblems } from "./support/wire.js";

/** An instance with the given hooks, served, with a subscriber; all closed when the test ends. */
async function hooked(options: Partial<RealtimeOptions>) {
  const { realtime, server, handled } = await servedRealtime(options);
  const open = (user: string | null, cursor?: string) =>
    openStream(`${server.url}/realtime/events${user === null ? "" : `?user=${user}`}`, cursor ?? null);
  return { realtime, handled, open };
}

/** A copy of `event` whose `type` answers "ok" when first read and "reset" on every later read. */
function flipping(event: RealtimeEvent): RealtimeEvent {
  let reads = 0;
  return {
    ...event,
    get type() {
      reads++;
      return reads === 1 ? "ok" : "reset";
    },
  };
}

describe("C40 hook results", () => {
  it("C40 beforeSend cannot widen: a user event turned system, global or another user's reaches no one else", async () => {
    const { realtime, open } = await hooked({
      beforeSend: (event) => {
        if (event.type === "to_system") return { ...event, scope: "system" };
        if (event.type === "to_global") return { ...event, scope: "global", userId: null };
        if (event.type === "to_other") return { ...event, userId: "7" };
        return event;
      },
    });
    const before = await realtime.currentEventId();
    const owner = await open("42");
    const other = await open("7");
    const anonymous = await open(null);
    for (const type of ["to_system", "to_global", "to_other"]) {
      await realtime.publish({ userId: 42, type, detail: { secretOf: 42 } });
    }
    const fence = await realtime.publishGlobal({ type: "fence" });
    // On replay too: the same hook runs for resumed streams.
    const resumedOther = await open("7", before);
    const resumedAnonymous = await open(null, before);
    for (const stream of [owner, other, anonymous, resumedOther, resumedAnonymous]) {
      await stream.until((s) => carried(s, fence.id), "the fence");
      expect(wireProblems(stream)).toEqual([]);
      // A system event reaches no browser, whoever relabelled it.
      expect(stream.events.filter((e) => e.scope === "system")).toEqual([]);
    }
    for (const stream of [other, anonymous, resumedOther, resumedAnonymous]) {
      expect(stream.events.map((e) => e.id)).toEqual([fence.id]);
    }
  });

  it("C40 a hook result whose type getter answers ok, then reset, puts no reserved type on the wire", async () => {
    const { realtime, handled, open } = await hooked({
      onReceive: (event) => (event.type === "flip_receive" ? flipping(event) : event),
      beforeSend: (event) => (event.type === "flip_send" ? flipping(event) : event),
    });
    const before = await realtime.currentEventId();
    const owner = await open("42");
    const anonymous = await open(null);
    const published = [
      await realtime.publishGlobal({ type: "flip_receive", detail: { n: 1 } }),
      await realtime.publish({ userId: 42, type: "flip_send", detail: { n: 2 } }),
      await realtime.publishGlobal({ type: "flip_send", detail: { n: 3 } }),
    ];
    const fence = await realtime.publishGlobal({ type: "fence" });
    const resumed = await open("42", before);
    for (const stream of [owner, anonymous, resumed]) {
      await stream.until((s) => carried(s, fence.id), "the fence");
      expect(wireProblems(stream)).toEqual([]);
      // Copied once, read once: what arrives of them is the "ok" that was checked.
      for (const event of stream.events.filter((e) => published.some((p) => p.id === e.id))) {
        expect(event.type).toBe("ok");
      }
    }
    await expect.poll(() => handled.some((e) => e.id === fence.id)).toBe(true);
    expect(handled.filter((e) => RESERVED_TYPES.has(e.type))).toEqual([]);
  });

  it("C40 an onReceive that never settles drops that one event after hookTimeoutMs, logged; later ones flow", async () => {
    const logger = recordingLogger();
    const { realtime, handled, open } = await hooked({
      logger,
      onReceive: (event) => (event.type === "stuck" ? new Promise<never>(() => {}) : event),
      ...({ hookTimeoutMs: 300 } as Partial<RealtimeOptions>),
    });
    const before = await realtime.currentEventId();
    const live = await open("42");
    const stuck = await realtime.publishGlobal({ type: "stuck" });
    const later = [
      await realtime.publish({ userId: 42, type: "later", detail: { n: 1 } }),
      await realtime.publishGlobal({ type: "later", detail: { n: 2 } }),
    ];
    const last = later.at(-1) as RealtimeEvent;
    await live.until((s) => carried(s, last.id), "the events after the stuck one", 5_000);
    expect(live.events.map((e) => e.id)).toEqual(later.map((e) => e.id));
    await expect.poll(() => handled.map((e) => e.id), { timeout: 5_000 }).toEqual(later.map((e) => e.id));
    await expect.poll(() => loggedAbout(logger, stuck.id), { timeout: 5_000 }).toBe(true);
    // A resumed stream runs onReceive on the replayed rows: the stuck one must not stall the replay.
    const resumed = await open("42", before);
    await resumed.until((s) => carried(s, last.id), "the replay past the stuck event", 5_000);
    expect(resumed.events.map((e) => e.id)).toEqual(later.map((e) => e.id));
  });
});

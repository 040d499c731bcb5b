import { describe, expect, it } from "vitest";
import { eventFrame, namedFrame, PING_FRAME, retryFrame } from "./sse.js";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("SSE framing", () => {
  it("frames an application event as one id line and one data line", () => {
    const frame = text(
      eventFrame(
        { id: "1234", type: "task_complete", scope: "user", detail: { taskId: 123 } },
        "1234.k3f9.a0b1",
      ),
    );
    expect(frame).toBe(
      'id: 1234.k3f9.a0b1\ndata: {"id":"1234","type":"task_complete","scope":"user","detail":{"taskId":123}}\n\n',
    );
  });

  it("leaves userId, createdAt and anything else out of the data line", () => {
    const event = {
      id: "1",
      type: "t",
      scope: "user",
      detail: {},
      userId: "42",
      createdAt: new Date(0),
      privateData: { secret: 1 },
    };
    const data = JSON.parse(text(eventFrame(event, "1")).split("\n")[1]?.slice("data: ".length) ?? "");
    expect(Object.keys(data)).toEqual(["id", "type", "scope", "detail"]);
  });

  it("C07 keeps line breaks and separators inside one data line", () => {
    const strings = ["a\nb", "a\r\nb", "x\revent: steal", "x\n", "a\u000bb", "\u2028", "\u2029", "\r\r\n\n"];
    const frame = text(eventFrame({ id: "7", type: "t", scope: "global", detail: { strings } }, "7.a.0"));
    // Only the two field lines and the blank line that ends the event: no CR at all, LF only as framing.
    expect(frame.includes("\r")).toBe(false);
    expect(frame.split("\n")).toHaveLength(4);
    const data = JSON.parse(frame.split("\n")[1]?.slice("data: ".length) ?? "");
    expect(data.detail.strings).toEqual(strings);
  });

  it("frames control events, retry and the heartbeat comment", () => {
    expect(text(namedFrame("connected", { userId: null }))).toBe(
      'event: connected\ndata: {"userId":null}\n\n',
    );
    expect(text(retryFrame(3000))).toBe("retry: 3000\n\n");
    expect(text(PING_FRAME)).toBe(": ping\nevent: ping\ndata:\n\n");
  });
});

import { describe, expect, it } from "vitest";
import { encodeEvent } from "./channel.js";
import { normalizeUserId, serializeObject, validateType } from "./event.js";
import { prepareEvent } from "./publish.js";

const ephemeralPayload = (event: Parameters<typeof encodeEvent>[0]) => encodeEvent(event, null).payload;

describe("user ids", () => {
  it("compares ids as decimal strings", () => {
    expect(normalizeUserId(42)).toBe("42");
    expect(normalizeUserId("42")).toBe("42");
    expect(normalizeUserId("042")).toBe("042");
    expect(normalizeUserId(-7)).toBe("-7");
  });

  it.each([[null], [undefined], [""], ["x".repeat(201)], [1.5], [Number.NaN], [2 ** 53], [{}], [10n]])(
    "refuses %s",
    (value) => {
      expect(() => normalizeUserId(value)).toThrow(TypeError);
    },
  );
});

describe("event types", () => {
  it.each(["a", "task_complete", "chat.message-v2", "x".repeat(100)])("accepts %s", (type) => {
    expect(validateType(type)).toBe(type);
  });

  it.each([
    "",
    "x".repeat(101),
    "has space",
    "naïve",
    "a/b",
    "connected",
    "disconnected",
    "reset",
    "error",
    "ping",
    5,
  ])("refuses %s", (type) => {
    expect(() => validateType(type)).toThrow(TypeError);
  });
});

describe("detail", () => {
  it("serialises plain JSON objects, null-prototype ones too", () => {
    const bare = Object.assign(Object.create(null), { a: 1 });
    expect(serializeObject({ a: [1, "x", null, true, { b: 2 }] }, "detail")).toBe(
      '{"a":[1,"x",null,true,{"b":2}]}',
    );
    expect(serializeObject(bare, "detail")).toBe('{"a":1}');
  });

  it("allows the same object twice when it is not a cycle", () => {
    const shared = { x: 1 };
    expect(serializeObject({ a: shared, b: shared }, "detail")).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  it.each([
    ["a BigInt", { n: 10n }, /detail\.n is a BigInt/],
    ["a function", { f: () => 1 }, /detail\.f is a function/],
    ["a symbol", { s: Symbol("x") }, /detail\.s/],
    ["a cycle", cyclic, /circular/],
    ["a Date", { d: new Date() }, /instance of Date/],
    ["a Map", { m: new Map() }, /instance of Map/],
    ["a class instance at the top", new (class Thing {})(), /instance of Thing/],
    ["an array at the top", [1], /plain JSON object/],
    ["a string at the top", "x", /plain JSON object/],
    ["NaN", { n: Number.NaN }, /NaN/],
    ["Infinity", { n: Number.POSITIVE_INFINITY }, /Infinity/],
    ["undefined in an array", { a: [undefined] }, /detail\.a\[0\] is undefined/],
    ["U+0000 in a nested string", { a: { b: ["ok", "bad\u0000"] } }, /U\+0000/],
  ])("refuses %s with a TypeError that names the path", (_name, detail, message) => {
    expect(() => serializeObject(detail, "detail")).toThrow(TypeError);
    expect(() => serializeObject(detail, "detail")).toThrow(message);
  });
});

describe("prepareEvent", () => {
  it("needs a userId for user events only", () => {
    expect(() => prepareEvent({ type: "t" }, "user")).toThrow(/needs a userId/);
    expect(() => prepareEvent({ type: "t", userId: null }, "user")).toThrow(/needs a userId/);
    expect(prepareEvent({ type: "t" }, "global")).toMatchObject({ userId: null, detailJson: "{}" });
    expect(prepareEvent({ type: "t" }, "system").userId).toBeNull();
    expect(prepareEvent({ type: "t", userId: 9 }, "system").userId).toBe("9");
  });

  it("keeps privateData apart from the detail", () => {
    const event = prepareEvent(
      { type: "t", detail: { a: 1 }, privateData: { secret: "s" }, userId: 1 },
      "user",
    );
    expect(event.detailJson).toBe('{"a":1}');
    expect(event.privateDataJson).toBe('{"secret":"s"}');
  });

  it("refuses a non-object input", () => {
    expect(() => prepareEvent(null, "global")).toThrow(TypeError);
  });

  it("C42 refuses unknown keys, naming the known ones", () => {
    expect(() => prepareEvent({ userId: 1, type: "t", details: {} }, "user")).toThrow(
      /unknown key "details"; the keys are userId, type, detail, privateData/,
    );
    expect(() => prepareEvent({ type: "t", private_data: {} }, "global")).toThrow(
      /unknown key "private_data"/,
    );
  });
});

describe("C17 NOTIFY size without storage", () => {
  const sized = (bytes: number, unit = "a") => {
    const base = ephemeralPayload(prepareEvent({ type: "t", detail: { s: "" } }, "global"));
    return prepareEvent({ type: "t", detail: { s: unit.repeat(bytes - Buffer.byteLength(base)) } }, "global");
  };

  it("accepts a payload of 7999 bytes and refuses 8000 and 8001", () => {
    expect(Buffer.byteLength(ephemeralPayload(sized(7999)))).toBe(7999);
    expect(() => ephemeralPayload(sized(8000))).toThrow(RangeError);
    expect(() => ephemeralPayload(sized(8001))).toThrow(RangeError);
  });

  it("measures multi-byte text in UTF-8 bytes, not characters", () => {
    // 3,000 characters of a 3-byte script: 9,000 bytes, though only 3,000 characters.
    const event = prepareEvent({ type: "t", detail: { s: "あ".repeat(3000) } }, "global");
    expect(() => ephemeralPayload(event)).toThrow(/9\d{3}-byte NOTIFY payload/);
  });
});

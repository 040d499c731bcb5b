import { describe, expect, it } from "vitest";
import { Retention, retentionIntervalMs, retentionLockName } from "./retention.js";

const noPool = { connect: () => Promise.reject(new Error("not used")) };
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const prune = async () => ({ events: 0, activity: 0 });

describe("retention schedule", () => {
  it("runs every tenth of the retention, at least every hour and at most every minute", () => {
    expect(retentionIntervalMs(30 * 86_400_000)).toBe(3_600_000);
    expect(retentionIntervalMs(5 * 3_600_000)).toBe(1_800_000);
    expect(retentionIntervalMs(90 * 60_000)).toBe(540_000);
    expect(retentionIntervalMs(5 * 60_000)).toBe(60_000);
    const retention = new Retention({ retention: "12h", pool: noPool, lockName: "x", prune, logger: quiet });
    expect(retention.intervalMs).toBe(3_600_000);
  });

  it("refuses a malformed retention, naming the option", () => {
    expect(
      () => new Retention({ retention: "30 days", pool: noPool, lockName: "x", prune, logger: quiet }),
    ).toThrow(/retention must be a duration like "30d"/);
  });

  it("locks per schema and table", () => {
    expect(retentionLockName("app", "events")).not.toBe(retentionLockName("app", "audit"));
    expect(retentionLockName("a_b", "c")).not.toBe(retentionLockName("a", "b_c"));
  });
});

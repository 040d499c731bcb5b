// The LISTEN connection's pure parts: backoff, which retries are logged, and how often the session is queried.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../scripts/postgres.mjs";
import { backoffCeiling, backoffDelay, failureDetail, RetryLog } from "../src/backoff.js";
import { livenessInterval, parsePgDuration } from "../src/liveness.js";

describe("backoff", () => {
  it("doubles its ceiling from 100 ms up to 5 s, and each delay is below the ceiling", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 30].map(backoffCeiling)).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000,
    ]);
    for (let attempt = 0; attempt < 10; attempt++) {
      for (let n = 0; n < 200; n++) {
        const delay = backoffDelay(attempt);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(backoffCeiling(attempt));
      }
    }
  });
});

describe("RetryLog", () => {
  it("logs each retry whose ceiling grew, then at most one per 30 s while the ceiling stays put", () => {
    let now = 0;
    const log = new RetryLog(30_000, () => now);
    const logged: number[] = [];
    // Two minutes of retries at the 5 s cap after the seven growing steps.
    for (let attempt = 0; attempt < 30; attempt++) {
      if (log.shouldLog(attempt)) logged.push(attempt);
      now += backoffCeiling(attempt);
    }
    // Attempt 6 is logged at 6.3 s; 30 s later is 36.3 s, which is attempt 12 (6.3 s + 6 × 5 s).
    expect(logged).toEqual([0, 1, 2, 3, 4, 5, 6, 12, 18, 24]);
  });

  it("logs the growing steps again after a success resets the attempts", () => {
    let now = 0;
    const log = new RetryLog(30_000, () => now);
    expect([0, 1, 2].map((attempt) => log.shouldLog(attempt))).toEqual([true, true, true]);
    now += 1_000;
    expect([0, 1, 7].map((attempt) => log.shouldLog(attempt))).toEqual([true, true, false]);
  });
});

describe("failureDetail", () => {
  it("names the code and the address of a refused connection, not Node's 'connect' prefix", async () => {
    const port = await freePort();
    const error = await new Promise<Error>((resolve) =>
      net.connect(port, "127.0.0.1").once("error", resolve),
    );
    expect(failureDetail(error)).toBe(`ECONNREFUSED 127.0.0.1:${port}`);
    // Every address of a host name failed together: each is named.
    expect(failureDetail(new AggregateError([error, error]))).toBe(
      `ECONNREFUSED 127.0.0.1:${port}, ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(failureDetail(new Error("timeout expired"))).toBe("timeout expired");
  });
});

describe("idle_session_timeout", () => {
  it("parses the durations PostgreSQL shows, and refuses anything else", () => {
    expect(["0", "250", "1500ms", "2s", "5min", "1h", "1d", " 3s "].map(parsePgDuration)).toEqual([
      0, 250, 1500, 2000, 300_000, 3_600_000, 86_400_000, 3000,
    ]);
    for (const text of ["", "-1s", "1.5s", "2 weeks", "off"]) expect(parsePgDuration(text)).toBeUndefined();
  });

  it("queries at half the timeout when the heartbeat is longer, never below 50 ms, never above the heartbeat", () => {
    expect(livenessInterval(15_000, 0)).toBe(15_000);
    expect(livenessInterval(15_000, 2_000)).toBe(1_000);
    expect(livenessInterval(15_000, 1_001)).toBe(500);
    expect(livenessInterval(500, 2_000)).toBe(500);
    expect(livenessInterval(15_000, 60)).toBe(50);
    expect(livenessInterval(20, 60)).toBe(20);
    expect(livenessInterval(15_000, 3_600_000)).toBe(15_000);
  });
});

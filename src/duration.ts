const DURATION = /^([1-9][0-9]{0,8})(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Milliseconds of a duration written like `"30d"`, `"12h"` or `"90m"` (a positive whole number of
 * minutes, hours or days), as the `retention` option and `prune({ olderThan })` take it.
 *
 * @throws TypeError naming `name` when `value` is not such a string.
 * @example parseDuration("12h", "retention") // 43200000
 */
export function parseDuration(value: unknown, name: string): number {
  const match = typeof value === "string" ? DURATION.exec(value) : null;
  if (!match) {
    throw new TypeError(
      `${name} must be a duration like "30d", "12h" or "90m" (days, hours, minutes), got ${JSON.stringify(value)}`,
    );
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

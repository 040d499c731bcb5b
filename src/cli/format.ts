// How the commands print: aligned columns for people, one JSON object per line for scripts.
import type { RealtimeEvent } from "../types.js";

/** One JSON object on one line (Dates as ISO 8601, as JSON.stringify writes them). */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value);
}

/** An instant as ISO 8601 in UTC, to the millisecond: sortable, unambiguous, what `--from` takes. */
export function time(value: Date): string {
  return value.toISOString();
}

/** A value that may be absent: `-` in a column. */
export function orDash(value: string | null | undefined): string {
  return value === null || value === undefined || value === "" ? "-" : value;
}

/**
 * Rows as columns separated by two spaces, each as wide as its widest cell; the last column is not
 * padded, so no line ends in blanks.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  return all.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  "),
  );
}

/** One event as `listen` prints it: id, time, scope, user, type, detail (and what it replays). */
export function eventLine(event: RealtimeEvent): string {
  const replay = event.replayOf === undefined ? "" : `  (replay of ${event.replayOf})`;
  return `${event.id}  ${time(event.createdAt)}  ${event.scope}  ${orDash(event.userId)}  ${event.type}  ${JSON.stringify(event.detail)}${replay}`;
}

/** A byte count with a binary unit: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** JSON indented by two spaces, each line indented by `indent` more (for `show`). */
export function prettyJson(value: unknown, indent = "  "): string {
  return JSON.stringify(value, null, 2)
    .split("\n")
    .map((line) => indent + line)
    .join("\n");
}

/** An argument as a shell reads it back: quoted when it holds anything but safe characters. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_.:@/=+-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

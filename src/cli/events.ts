import type { EventFilters, StoredEvent } from "../types.js";
import {
  COMMON_USAGE,
  eventId,
  eventType,
  integer,
  isoTime,
  oneOf,
  type Parsed,
  parseCommand,
  SCOPES,
  STATUSES,
  userId,
} from "./args.js";
import { jsonLine, orDash, shellWord, table, time } from "./format.js";
import { type Command, note, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime events [filters] [--limit N] [--json] [--schema NAME] [--table NAME]

Lists stored events, newest first, one page at a time.

Filters (all optional, combined):
  --type T        events of type T
  --scope S       events of scope S: ${SCOPES.join(", ")}
  --user U        events of user U
  --status S      events that got as far as S: ${STATUSES.join(", ")}
  --before ID     events with an id below ID (the next page: the id the previous page names)
  --after ID      events with an id above ID
  --from TIME     events created at or after TIME (ISO 8601: 2026-01-31 or 2026-01-31T12:00:00Z)
  --to TIME       events created before TIME

Options:
  --limit N       events per page, 1-1000 (default 50)
  --json          one JSON object per line (the stored event, with its private data); the next page
                  is named on stderr

${COMMON_USAGE}`;

const OPTIONS = {
  type: { type: "string" },
  scope: { type: "string" },
  user: { type: "string" },
  status: { type: "string" },
  before: { type: "string" },
  after: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  limit: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

type Values = Parsed<typeof OPTIONS>["values"];

/** The filters of `realtime.events.list`, each option checked before anything is read. */
function filtersOf(values: Values): EventFilters {
  const filters: EventFilters = {};
  if (values.type !== undefined) filters.type = eventType(values.type);
  if (values.scope !== undefined) filters.scope = oneOf(values.scope, "--scope", SCOPES);
  if (values.user !== undefined) filters.userId = userId(values.user);
  if (values.status !== undefined) filters.status = oneOf(values.status, "--status", STATUSES);
  if (values.before !== undefined) filters.before = eventId(values.before, "--before");
  if (values.after !== undefined) filters.after = eventId(values.after, "--after");
  if (values.from !== undefined) filters.from = isoTime(values.from, "--from");
  if (values.to !== undefined) filters.to = isoTime(values.to, "--to");
  if (values.limit !== undefined) filters.limit = integer(values.limit, "--limit", 1, 1000);
  return filters;
}

/** The command that prints the next page: these same options, `--before` the page's `next`. */
function nextCommand(values: Values, next: string): string {
  const words = ["pgrealtime", "events"];
  for (const name of ["type", "scope", "user", "status", "after", "from", "to", "limit", "schema", "table"]) {
    const value = values[name as keyof Values];
    if (typeof value === "string") words.push(`--${name}`, shellWord(value));
  }
  return [...words, "--before", next].join(" ");
}

function rows(events: readonly StoredEvent[]): string[] {
  return table(
    ["ID", "CREATED", "SCOPE", "USER", "TYPE", "STATUS", "REPLAY-OF"],
    events.map((event) => [
      event.id,
      time(event.createdAt),
      event.scope,
      orDash(event.userId),
      event.type,
      event.status,
      orDash(event.replayOf),
    ]),
  );
}

/** `pgrealtime events [filters] [--limit N] [--json]`. */
export const events: Command = {
  name: "events",
  summary: "list stored events, newest first (filters, pages)",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, OPTIONS);
    const filters = filtersOf(values);
    const page = await withRealtime(values, (realtime) => realtime.events.list(filters));
    if (values.json) {
      for (const event of page.events) print(jsonLine(event));
      if (page.next !== null) note(`pgrealtime: next page: ${nextCommand(values, page.next)}`);
      return 0;
    }
    if (page.events.length === 0) {
      print("No events.");
      return 0;
    }
    for (const line of rows(page.events)) print(line);
    print(page.next === null ? "(end)" : `next page: ${nextCommand(values, page.next)}`);
    return 0;
  },
};

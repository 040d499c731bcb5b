import type { ActivityEntry, StoredEvent } from "../types.js";
import { COMMON_USAGE, eventId, parseCommand } from "./args.js";
import { jsonLine, orDash, prettyJson, table, time } from "./format.js";
import { type Command, Failure, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime show <id> [--json] [--schema NAME] [--table NAME]

Prints one stored event: its fields, detail, private data and delivery activity.

Options:
  --json          one JSON object: the stored event with an "activity" array

${COMMON_USAGE}`;

/** What one activity entry says, after its time and kind. */
function activityText(entry: ActivityEntry): string {
  if (entry.kind === "replayed") return `as event ${orDash(entry.replayId)}`;
  const where = `process ${orDash(entry.process)}`;
  if (entry.kind === "dispatched") return `${where}, written to ${entry.connections} stream(s)`;
  const who = entry.userId === null ? "anonymous" : `user ${entry.userId}`;
  return `${where}, ${who}, ${entry.connections} stream(s)${entry.resumed ? ", on resume" : ""}`;
}

function describeEvent(event: StoredEvent, activity: readonly ActivityEntry[]): string[] {
  const fields = table(
    ["id", event.id],
    [
      ["type", event.type],
      ["scope", event.scope],
      ["user", orDash(event.userId)],
      ["created", time(event.createdAt)],
      ["status", event.status],
      ["replay of", orDash(event.replayOf)],
    ],
  );
  const log =
    activity.length === 0
      ? ["  (none)"]
      : table(
          ["  AT", "KIND", ""],
          activity.map((entry) => [`  ${time(entry.at)}`, entry.kind, activityText(entry)]),
        ).slice(1);
  return [
    ...fields,
    "detail:",
    prettyJson(event.detail),
    "private data:",
    event.privateData === null ? "  (none)" : prettyJson(event.privateData),
    "activity:",
    ...log,
  ];
}

/** `pgrealtime show <id> [--json]`. */
export const show: Command = {
  name: "show",
  summary: "print one stored event with its private data and activity",
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseCommand(
      argv,
      { json: { type: "boolean", default: false } },
      { name: "event id", min: 1, max: 1 },
    );
    const id = eventId(positionals[0] ?? "", "<id>");
    const [event, activity] = await withRealtime(values, async (realtime) => {
      const found = await realtime.events.get(id);
      if (found === null) throw new Failure(`no event ${id} in this table`);
      return [found, await realtime.events.activity(id)] as const;
    });
    if (values.json) print(jsonLine({ ...event, activity }));
    else for (const line of describeEvent(event, activity)) print(line);
    return 0;
  },
};

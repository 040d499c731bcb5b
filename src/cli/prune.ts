import { COMMON_USAGE, duration, eventType, parseCommand, UsageError } from "./args.js";
import { type Command, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime prune --older-than DURATION [--type T] [--dry-run] [--schema NAME] [--table NAME]

Deletes stored events created longer ago than DURATION, and their activity, in batches of 1000 rows
(each its own transaction: publishers and streams go on meanwhile).

Options:
  --older-than D  a duration: 30d (days), 12h (hours) or 90m (minutes)
  --type T        only events of type T
  --dry-run       count what would be deleted, delete nothing

${COMMON_USAGE}`;

/** `pgrealtime prune --older-than 30d [--type T] [--dry-run]`. */
export const prune: Command = {
  name: "prune",
  summary: "delete events older than a duration, with their activity",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, {
      "older-than": { type: "string" },
      type: { type: "string" },
      "dry-run": { type: "boolean", default: false },
    });
    if (values["older-than"] === undefined)
      throw new UsageError("missing --older-than, e.g. --older-than 30d");
    const options = {
      olderThan: duration(values["older-than"], "--older-than"),
      ...(values.type === undefined ? {} : { type: eventType(values.type) }),
      dryRun: values["dry-run"],
    };
    const result = await withRealtime(values, (realtime) => realtime.prune(options));
    const counts = `${result.events} event(s) and ${result.activity} activity entr${result.activity === 1 ? "y" : "ies"}`;
    print(options.dryRun ? `Would delete ${counts} (dry run: nothing deleted).` : `Deleted ${counts}.`);
    return 0;
  },
};

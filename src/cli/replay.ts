import { COMMON_USAGE, eventId, parseCommand } from "./args.js";
import { jsonLine } from "./format.js";
import { type Command, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime replay <id>... [--json] [--schema NAME] [--table NAME]

Sends stored events again as new events (new ids, same type, scope, user and detail, never their
private data), to the original's audience. All or nothing: one unknown id replays none.

Options:
  --json          one JSON object per line: each new event (with replayOf)

${COMMON_USAGE}`;

/** `pgrealtime replay <id>... [--json]`. */
export const replay: Command = {
  name: "replay",
  summary: "send stored events again as new events",
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseCommand(
      argv,
      { json: { type: "boolean", default: false } },
      { name: "event id", min: 1, max: 1000 },
    );
    const ids = positionals.map((id) => eventId(id, "<id>"));
    const replayed = await withRealtime(values, (realtime) => realtime.replay(ids));
    replayed.forEach((event, index) => {
      print(values.json ? jsonLine(event) : `replayed ${ids[index]} as ${event.id}`);
    });
    return 0;
  },
};

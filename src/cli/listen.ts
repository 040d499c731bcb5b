import type { RealtimeEvent } from "../types.js";
import { COMMON_USAGE, eventType, oneOf, parseCommand, SCOPES } from "./args.js";
import { eventLine, jsonLine } from "./format.js";
import { type Command, note, print, probeListener, stopped, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime listen [--type T] [--scope S] [--json] [--schema NAME] [--table NAME]

Prints every event as it happens, like a backend subscriber (system events too), until Ctrl-C.
A line on stderr says when it is listening.

Options:
  --type T        only events of type T
  --scope S       only events of scope S: ${SCOPES.join(", ")}
  --json          one JSON object per line (the event: id, type, scope, userId, detail, createdAt,
                  replayOf), instead of: id  time  scope  user  type  detail

${COMMON_USAGE}`;

/** `pgrealtime listen [--type T] [--scope S] [--json]`. */
export const listen: Command = {
  name: "listen",
  summary: "print events as they happen, until Ctrl-C",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, {
      type: { type: "string" },
      scope: { type: "string" },
      json: { type: "boolean", default: false },
    });
    const type = values.type === undefined ? undefined : eventType(values.type);
    const scope = values.scope === undefined ? undefined : oneOf(values.scope, "--scope", SCOPES);
    const format = values.json ? jsonLine : eventLine;
    return withRealtime(values, async (realtime) => {
      const show = (event: RealtimeEvent) => {
        if ((type === undefined || event.type === type) && (scope === undefined || event.scope === scope)) {
          print(format(event));
        }
      };
      const unsubscribe = realtime.subscribe(show, {
        onReset: (reason) => note(`pgrealtime: events may have been lost (${reason})`),
      });
      const probe = await probeListener(realtime);
      if (!probe.ok) throw probe.error;
      note(
        `pgrealtime: listening to ${values.schema ?? "pgrealtime"}.${values.table ?? "events"} (Ctrl-C to stop)`,
      );
      await stopped();
      unsubscribe();
      return 0;
    });
  },
};

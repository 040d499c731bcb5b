import type { Realtime } from "../api.js";
import type { JsonObject, RealtimeEvent } from "../types.js";
import { COMMON_USAGE, eventType, jsonObject, parseCommand, UsageError, userId } from "./args.js";
import { jsonLine } from "./format.js";
import { type Command, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime publish --type T (--user U | --global | --system [--user U])
                          [--detail JSON] [--private JSON] [--json] [--schema NAME] [--table NAME]

Stores an event and notifies every process; prints the new event's id.

Options:
  --type T        the event type (1-100 characters of A-Z a-z 0-9 _ . -)
  --user U        for the connections of user U (with --system: the user it refers to)
  --global        for every connection, signed in or not
  --system        for backend subscribers only, never sent to a browser
  --detail JSON   the detail, a JSON object (default {})
  --private JSON  private data, a JSON object stored in the row only
  --json          print the published event as JSON instead of its id

${COMMON_USAGE}`;

const OPTIONS = {
  type: { type: "string" },
  user: { type: "string" },
  global: { type: "boolean", default: false },
  system: { type: "boolean", default: false },
  detail: { type: "string" },
  private: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

type Send = (
  realtime: Realtime,
  input: { type: string; detail: JsonObject; privateData?: object },
) => Promise<RealtimeEvent>;

/** The publish call the scope options choose: exactly one scope, `--user` also allowed with `--system`. */
function scopeOf(values: { user?: string; global: boolean; system: boolean }): Send {
  const user = values.user === undefined ? undefined : userId(values.user);
  if (values.global && (user !== undefined || values.system)) {
    throw new UsageError("--global goes alone: choose one of --user U, --global, --system");
  }
  if (values.system) return (realtime, input) => realtime.publishSystem({ ...input, userId: user ?? null });
  if (values.global) return (realtime, input) => realtime.publishGlobal(input);
  if (user === undefined) throw new UsageError("choose who it is for: --user U, --global or --system");
  return (realtime, input) => realtime.publish({ ...input, userId: user });
}

/** `pgrealtime publish --type T (--user U | --global | --system) [--detail JSON] [--private JSON]`. */
export const publish: Command = {
  name: "publish",
  summary: "publish an event (--user U, --global or --system)",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, OPTIONS);
    if (values.type === undefined) throw new UsageError("missing --type T");
    const input = {
      type: eventType(values.type),
      detail: values.detail === undefined ? {} : jsonObject(values.detail, "--detail"),
      ...(values.private === undefined ? {} : { privateData: jsonObject(values.private, "--private") }),
    };
    const send = scopeOf(values);
    const event = await withRealtime(values, (realtime) => send(realtime, input));
    print(values.json ? jsonLine(event) : event.id);
    return 0;
  },
};

import type { RealtimeStatus, StoredEventSummary } from "../types.js";
import { COMMON_USAGE, parseCommand } from "./args.js";
import { bytes, jsonLine, table, time } from "./format.js";
import {
  type Command,
  failureMessage,
  note,
  type Probe,
  print,
  probeListener,
  withRealtime,
} from "./runtime.js";

/** How long the listener probe may take before status calls it failed. */
const PROBE_TIMEOUT_MS = 10_000;

const USAGE = `Usage: pgrealtime status [--json] [--schema NAME] [--table NAME]

Checks that this machine can listen (LISTEN, then a NOTIFY to itself), and prints the migration state,
the table's size, its oldest and newest events, the processes listening now and the NOTIFY queue's
usage. Exits 1 when the listener probe fails.

Options:
  --json          one JSON object: { listener: { ok, ms, state, error }, ...realtime.status() }

${COMMON_USAGE}`;

/** The listener line: how the probe went, and the state it left the LISTEN connection in. */
interface ListenerReport {
  ok: boolean;
  ms: number;
  state: string;
  error?: string;
}

function summary(event: StoredEventSummary | null): string {
  return event === null ? "-" : `${event.id} at ${time(event.createdAt)}`;
}

function describeStatus(listener: ListenerReport, status: RealtimeStatus): string[] {
  const { migration, events } = status;
  const migrated =
    migration.applied === migration.latest
      ? `${migration.applied} (up to date)`
      : `${migration.applied} of ${migration.latest}: run pgrealtime migrate`;
  const probe = listener.ok
    ? `ok, listening after ${listener.ms} ms`
    : `FAILED after ${listener.ms} ms (${listener.state}): ${listener.error}`;
  const lines = table(
    ["listener", probe],
    [
      ["migration", migrated],
      [
        "table",
        `${status.schema}.${status.table}: ~${events.estimatedCount} rows (estimate), ${bytes(events.bytes)} with indexes`,
      ],
      ["oldest", summary(events.oldest)],
      ["newest", summary(events.newest)],
      ["notify queue", `${(status.notificationQueueUsage * 100).toFixed(2)}% used`],
      ["processes", `${status.processes.length} listening`],
    ],
  );
  if (status.processes.length === 0) return lines;
  const processes = table(
    ["  PROCESS", "STARTED", "SEEN", "STREAMS", "ANONYMOUS", "USERS", "LISTENER"],
    status.processes.map((process) => [
      `  ${process.id}`,
      time(process.startedAt),
      time(process.seenAt),
      String(process.connections),
      String(process.anonymous),
      String(process.users),
      process.listener,
    ]),
  );
  return [...lines, ...processes];
}

function listenerReport(probe: Probe, state: string): ListenerReport {
  return probe.ok
    ? { ok: true, ms: probe.ms, state }
    : { ok: false, ms: probe.ms, state, error: failureMessage(probe.error) };
}

/** `pgrealtime status [--json]`. */
export const status: Command = {
  name: "status",
  summary: "check the listener; show migration, table, processes, NOTIFY queue",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, { json: { type: "boolean", default: false } });
    const [listener, state] = await withRealtime(values, async (realtime) => {
      // The status first: when the database cannot be reached, that is the one line to tell.
      const installation = await realtime.status();
      const probe = await probeListener(realtime, PROBE_TIMEOUT_MS);
      return [listenerReport(probe, realtime.listenerState), installation] as const;
    });
    if (values.json) print(jsonLine({ listener, ...state }));
    else for (const line of describeStatus(listener, state)) print(line);
    if (listener.ok) return 0;
    note(`pgrealtime: the listener probe failed: ${listener.error}`);
    return 1;
  },
};

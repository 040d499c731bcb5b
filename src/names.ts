// The names of one installation's database objects. The events table is `table` (default "events");
// the library's other tables, functions and indexes keep their own names beside the default table and
// take the table's name as a prefix beside any other, so that several installations share a schema.

/** Identifiers PostgreSQL keeps whole (NAMEDATALEN - 1 bytes); longer ones are cut. */
const MAX_IDENTIFIER_BYTES = 63;

/** Quotes an SQL identifier (schema, table or channel name). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Where one installation lives: its schema, its events table, and its NOTIFY channel. */
export interface Names {
  readonly schema: string;
  readonly table: string;
  /** The NOTIFY channel: `<schema>_events`, or `<schema>.<table>` for another table. */
  readonly channel: string;
  /** The unquoted name of one of the installation's objects: `object("state")` → `"state"` or `"<table>_state"`. */
  object(base: string): string;
  /** The schema-qualified, quoted name of one of its tables: `qualified("events")` → `"pgrealtime"."events"`. */
  qualified(base: string): string;
}

/**
 * The names of the installation in `schema` whose events table is `table`.
 *
 * @throws RangeError when the channel name would pass PostgreSQL's 63-byte identifier limit.
 * @example namesFor("pgrealtime").qualified("controls") // '"pgrealtime"."controls"'
 */
export function namesFor(schema: string, table = "events"): Names {
  const prefix = table === "events" ? "" : `${table}_`;
  const object = (base: string) => (base === "events" ? table : `${prefix}${base}`);
  // Neither name holds a ".", so `<schema>.<table>` is one installation's alone; `<schema>_<table>` was
  // not ("a_b" + "events" and "a" + "b_events"), and storage-off installations heard each other's events.
  const channel = table === "events" ? `${schema}_events` : `${schema}.${table}`;
  if (Buffer.byteLength(channel) > MAX_IDENTIFIER_BYTES) {
    throw new RangeError(
      `schema and table together name the NOTIFY channel "${channel}", over PostgreSQL's ${MAX_IDENTIFIER_BYTES} bytes; shorten one of them`,
    );
  }
  return {
    schema,
    table,
    channel,
    object,
    qualified: (base) => `${quoteIdent(schema)}.${quoteIdent(object(base))}`,
  };
}

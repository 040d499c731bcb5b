/**
 * The types an application's event map is made of, shared by the server (`createRealtime<Events>()`)
 * and the browser client (`connect<Events>()`). Dependency-free on purpose: the client's declarations
 * import it, and a browser project must not pull in Node or `pg` types through them.
 *
 * @module
 */

/** A JSON value as stored in a `jsonb` column. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON plain object: the shape of every event's `detail`. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * The map from event type to detail type that makes `publish`, `subscribe` and the browser client typed.
 *
 * @example
 * type Events = { task_complete: { taskId: number }; chat_message: { text: string; author: string } };
 * const realtime = createRealtime<Events>({ connectionString }); // server
 * const connection = connect<Events>(); // browser, from "pgrealtime/client"
 */
export type EventMap = Record<string, object>;

/** The events of an instance created without an {@link EventMap}: any type, any JSON object detail. */
export type DefaultEvents = Record<string, JsonObject>;

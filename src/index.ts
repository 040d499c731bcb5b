export { RealtimeError, type RealtimeErrorCode } from "./errors.js";
export type { MigrateResult } from "./migrate.js";
export { createRealtime, type Realtime, type SubscribeOptions } from "./realtime.js";
export type {
  DefaultEvents,
  EventMap,
  EventOf,
  JsonObject,
  JsonValue,
  ListenerState,
  Logger,
  PublishCommon,
  PublishInput,
  PublishOptions,
  PublishSystemInput,
  RealtimeEvent,
  RealtimeOptions,
  Scope,
  SendContext,
  UserId,
} from "./types.js";

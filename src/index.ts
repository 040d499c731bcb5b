export type { StoredEvents } from "./api.js";
export { RealtimeError, type RealtimeErrorCode } from "./errors.js";
export type { MigrateResult } from "./migrate.js";
export { createRealtime, type Realtime, type SubscribeOptions } from "./realtime.js";
export type {
  ActivityEntry,
  DefaultEvents,
  DetailOf,
  EventFilters,
  EventMap,
  EventOf,
  EventPage,
  EventStatus,
  JsonObject,
  JsonValue,
  ListenerState,
  Logger,
  ProcessInfo,
  PruneOptions,
  PruneResult,
  PublishCommon,
  PublishInput,
  PublishOptions,
  PublishSystemInput,
  RealtimeEvent,
  RealtimeOptions,
  RealtimeStats,
  RealtimeStatus,
  Scope,
  SendContext,
  StoredEvent,
  StoredEventSummary,
  UserId,
} from "./types.js";

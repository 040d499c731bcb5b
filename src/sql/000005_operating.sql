-- Stored events as operators read them: replays, delivery activity, the processes listening now.
ALTER TABLE {{schema}}.{{name:events}} ADD COLUMN replay_of bigint NULL;
-- Listing by scope or by user (any scope: system events name a user too), newest first, by index.
CREATE INDEX {{name:events_scope_id_idx}} ON {{schema}}.{{name:events}} (scope, id);
CREATE INDEX {{name:events_user_id_any_idx}} ON {{schema}}.{{name:events}} (user_id, id) WHERE user_id IS NOT NULL;
DROP INDEX {{schema}}.{{name:events_user_id_id_idx}};
-- Who each event reached, written in batches by every receiving process. No foreign key: a delivery
-- is never slowed by a check, and retention deletes an event's activity with it.
CREATE TABLE {{schema}}.{{name:activity}} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id bigint NOT NULL,
  kind text NOT NULL CHECK (kind IN ('dispatched', 'sent', 'replayed')),
  process text NULL,
  user_id text NULL,
  connections integer NOT NULL DEFAULT 0,
  resumed boolean NOT NULL DEFAULT false,
  replay_id bigint NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX {{name:activity_event_id_idx}} ON {{schema}}.{{name:activity}} (event_id, kind);
-- Every process that listens records itself on its heartbeat; a row past expires_at is a dead process.
CREATE TABLE {{schema}}.{{name:processes}} (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  started_at timestamptz NOT NULL,
  seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  connections integer NOT NULL DEFAULT 0,
  anonymous integer NOT NULL DEFAULT 0,
  users integer NOT NULL DEFAULT 0,
  listener text NOT NULL
);

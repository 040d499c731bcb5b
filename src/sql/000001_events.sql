CREATE TABLE {{schema}}.{{name:events}} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type text NOT NULL CHECK (type ~ '^[A-Za-z0-9_.-]{1,100}$'),
  scope text NOT NULL CHECK (scope IN ('user', 'global', 'system')),
  user_id text NULL CHECK (scope <> 'user' OR user_id IS NOT NULL),
  detail jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
  private_data jsonb NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Ids are handed out at insert, not at commit, so a lower id can commit after a higher one was
  -- delivered. The inserting transaction and the snapshot it saw tell resume and catch-up which rows
  -- may have committed after a given event (see Store.backlog). Volatile defaults added later would
  -- rewrite the table, so they are here from the start.
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  snapshot pg_snapshot NOT NULL DEFAULT pg_current_snapshot()
);
CREATE INDEX {{name:events_user_id_id_idx}} ON {{schema}}.{{name:events}} (user_id, id) WHERE scope = 'user';
CREATE INDEX {{name:events_type_id_idx}} ON {{schema}}.{{name:events}} (type, id);
CREATE INDEX {{name:events_created_at_idx}} ON {{schema}}.{{name:events}} (created_at);
CREATE INDEX {{name:events_txid_idx}} ON {{schema}}.{{name:events}} (txid);

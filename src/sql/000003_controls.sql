-- Commands between processes (disconnectUser): read by every process with the same snapshot rules as
-- events, so a command is ordered with the events around it.
CREATE TABLE {{schema}}.{{name:controls}} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('disconnect')),
  user_id text NOT NULL,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX {{name:controls_txid_idx}} ON {{schema}}.{{name:controls}} (txid);

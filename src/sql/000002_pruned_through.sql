-- The greatest id ever deleted: a client resuming from below it may have missed a deleted event and
-- gets a reset, while a gap of rolled-back ids before the first row is no reason for one.
CREATE TABLE {{schema}}.{{name:state}} (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO {{schema}}.{{name:state}} DEFAULT VALUES;
CREATE FUNCTION {{schema}}.{{name:record_pruned}}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only a delete that raises the mark writes the row, so deleting old rows stays cheap.
  UPDATE {{schema}}.{{name:state}} SET pruned_through = d.max_id
    FROM (SELECT max(id) AS max_id FROM deleted) d WHERE d.max_id > pruned_through;
  RETURN NULL;
END
$$;
CREATE TRIGGER {{name:events_record_pruned}} AFTER DELETE ON {{schema}}.{{name:events}}
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.{{name:record_pruned}}();
CREATE FUNCTION {{schema}}.{{name:record_truncated}}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {{schema}}.{{name:state}} SET pruned_through = GREATEST(pruned_through,
    COALESCE(pg_sequence_last_value(pg_get_serial_sequence('{{events_string}}', 'id')), 0));
  RETURN NULL;
END
$$;
-- Before: TRUNCATE … RESTART IDENTITY resets the sequence, and its old value is the mark.
CREATE TRIGGER {{name:events_record_truncated}} BEFORE TRUNCATE ON {{schema}}.{{name:events}}
  FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.{{name:record_truncated}}();

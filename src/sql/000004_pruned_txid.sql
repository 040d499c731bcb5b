-- The newest transaction whose rows were ever deleted: a client whose cursor's snapshot had not seen it
-- may lack a deleted row below its cursor (rows commit out of id order), and gets a reset. Retention
-- deletes old rows, whose transactions every recent cursor has seen, so it resets nobody.
ALTER TABLE {{schema}}.{{name:state}} ADD COLUMN pruned_txid xid8 NULL;
CREATE OR REPLACE FUNCTION {{schema}}.{{name:record_pruned}}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only a delete that raises a mark writes the row, so deleting old rows stays cheap. (xid8 has no
  -- max() before PostgreSQL 14: compared through numeric.)
  UPDATE {{schema}}.{{name:state}}
    SET pruned_through = GREATEST(pruned_through, d.max_id),
      pruned_txid = CASE WHEN pruned_txid IS NULL OR d.max_txid::text::numeric > pruned_txid::text::numeric
        THEN d.max_txid::text::xid8 ELSE pruned_txid END
    FROM (SELECT max(id) AS max_id, max(txid::text::numeric) AS max_txid FROM deleted) d
    WHERE d.max_id > pruned_through OR pruned_txid IS NULL
      OR d.max_txid > pruned_txid::text::numeric;
  RETURN NULL;
END
$$;

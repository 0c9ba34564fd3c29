CREATE FUNCTION ledger_postings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  eid bigint;
BEGIN
  -- One primary-key probe per entry of the statement: a join would leave the plan to the
  -- statistics, and a fresh ledger's (none yet) make it a nested loop over all entries.
  FOR eid IN SELECT DISTINCT entry_id FROM new_postings LOOP
    IF EXISTS (SELECT 1 FROM entries WHERE id = eid AND number IS NOT NULL) THEN
      RAISE EXCEPTION 'ledger: postings of a validated entry cannot be added, changed or deleted' USING ERRCODE = '23001';
    END IF;
  END LOOP;
  RETURN NULL;
END $$

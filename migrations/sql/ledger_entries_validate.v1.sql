CREATE FUNCTION ledger_entries_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
  head ledger_heads%ROWTYPE;
  bad bigint;
  lines bigint;
BEGIN
  FOR r IN SELECT org_id, count(*) AS n, min(number) AS lo, max(number) AS hi
           FROM new_entries WHERE number IS NOT NULL GROUP BY org_id ORDER BY org_id LOOP
    SELECT * INTO head FROM ledger_heads WHERE org_id = r.org_id FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'ledger: organisation % has no ledger', r.org_id USING ERRCODE = '23503';
    END IF;
    IF r.lo <> head.last_number + 1 OR r.hi - r.lo + 1 <> r.n THEN
      RAISE EXCEPTION 'ledger: entry number % breaks the gap-free sequence (next is %)',
        CASE WHEN r.lo <> head.last_number + 1 THEN r.lo ELSE r.hi END, head.last_number + 1 USING ERRCODE = '23514';
    END IF;
    SELECT n.number INTO bad FROM new_entries n
      LEFT JOIN new_entries p ON p.org_id = n.org_id AND p.number = n.number - 1 AND p.number IS NOT NULL
      WHERE n.org_id = r.org_id AND n.number IS NOT NULL
        AND n.prev_hash IS DISTINCT FROM CASE WHEN n.number = r.lo THEN head.last_hash ELSE p.hash END
      ORDER BY n.number LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ledger: entry % is not chained to the previous entry', bad USING ERRCODE = '23514';
    END IF;
    IF head.closed_through IS NOT NULL AND EXISTS (
        SELECT 1 FROM new_entries WHERE org_id = r.org_id AND number IS NOT NULL AND entry_date <= head.closed_through) THEN
      RAISE EXCEPTION 'ledger: the period is closed through %; date the entry after it', head.closed_through
        USING ERRCODE = '23514';
    END IF;
    SELECT n.id, (SELECT count(*) FROM postings p WHERE p.entry_id = n.id) INTO bad, lines FROM new_entries n
      WHERE n.org_id = r.org_id AND n.number IS NOT NULL
        AND ((SELECT count(*) FROM postings p WHERE p.entry_id = n.id) < 2
             OR EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = n.id GROUP BY p.currency HAVING sum(p.amount) <> 0))
      LIMIT 1;
    IF FOUND AND lines < 2 THEN
      RAISE EXCEPTION 'ledger: an entry needs at least two postings' USING ERRCODE = '23514';
    ELSIF FOUND THEN
      RAISE EXCEPTION 'ledger: unbalanced entry (debits and credits differ)' USING ERRCODE = '23514';
    END IF;
    UPDATE ledger_heads SET last_number = r.hi,
                            last_hash = (SELECT hash FROM new_entries WHERE org_id = r.org_id AND number = r.hi)
      WHERE org_id = r.org_id;
  END LOOP;
  RETURN NULL;
END $$

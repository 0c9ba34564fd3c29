CREATE FUNCTION ledger_postings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  eid bigint;
  missing boolean;
  acct varchar;
BEGIN
  -- Joined on the id alone, so only the primary key can serve each probe: with the org_id
  -- in the join, a planner without statistics took the (org_id, entry_date) index instead
  -- and filtered every entry of the organisation, for every posting's entry.
  SELECT p.entry_id, e.id IS NULL OR e.org_id <> p.org_id INTO eid, missing
    FROM (SELECT DISTINCT entry_id, org_id FROM new_postings) p
    LEFT JOIN entries e ON e.id = p.entry_id
    WHERE e.id IS NULL OR e.org_id <> p.org_id OR e.number IS NOT NULL
    LIMIT 1;
  IF FOUND AND missing THEN
    RAISE EXCEPTION 'ledger: a posting refers to entry %, which its organisation does not have', eid
      USING ERRCODE = '23503';
  ELSIF FOUND THEN
    RAISE EXCEPTION 'ledger: postings of a validated entry cannot be added, changed or deleted' USING ERRCODE = '23001';
  END IF;
  SELECT p.account_number INTO acct
    FROM (SELECT DISTINCT org_id, account_number FROM new_postings) p
    WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = p.org_id AND a.number = p.account_number)
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: account % is not in the chart of accounts', acct USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$

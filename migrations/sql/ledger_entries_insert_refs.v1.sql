CREATE FUNCTION ledger_entries_insert_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  journal varchar;
  site bigint;
BEGIN
  SELECT n.journal_code INTO journal FROM (SELECT DISTINCT journal_code FROM new_entries) n
    WHERE NOT EXISTS (SELECT 1 FROM journals j WHERE j.code = n.journal_code) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: journal % does not exist', journal USING ERRCODE = '23503';
  END IF;
  SELECT n.site_id INTO site FROM (SELECT DISTINCT site_id, org_id FROM new_entries) n
    WHERE NOT EXISTS (SELECT 1 FROM sites s WHERE s.id = n.site_id AND s.org_id = n.org_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: site % is not a site of the entry''s organisation', site USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$

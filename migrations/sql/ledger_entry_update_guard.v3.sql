-- template: ledger_entry_update_guard
-- keeps:
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id THEN
    RAISE EXCEPTION 'ledger: an entry keeps its id and organisation' USING ERRCODE = '23503';
  END IF;

-- template: ledger_entry_update_guard
-- keeps:
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.journal_code <> OLD.journal_code OR NEW.site_id <> OLD.site_id THEN
    RAISE EXCEPTION 'ledger: an entry keeps its id, organisation, journal and site' USING ERRCODE = '23503';
  END IF;

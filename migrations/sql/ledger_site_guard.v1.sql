-- template: row_guard
-- refusal:
  IF (TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id)
     AND EXISTS (SELECT 1 FROM entries WHERE org_id = OLD.org_id AND site_id = OLD.id) THEN
    RAISE EXCEPTION 'ledger: site % has entries', OLD.id USING ERRCODE = '23503';
  END IF;

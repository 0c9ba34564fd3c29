-- template: row_guard
-- refusal:
  IF (TG_OP = 'DELETE' OR NEW.org_id <> OLD.org_id OR NEW.number <> OLD.number)
     AND EXISTS (SELECT 1 FROM postings WHERE org_id = OLD.org_id AND account_number = OLD.number) THEN
    RAISE EXCEPTION 'ledger: account % has postings', OLD.number USING ERRCODE = '23503';
  END IF;

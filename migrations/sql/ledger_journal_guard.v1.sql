-- template: row_guard
-- refusal:
  IF (TG_OP = 'DELETE' OR NEW.code <> OLD.code) AND EXISTS (SELECT 1 FROM entries WHERE journal_code = OLD.code) THEN
    RAISE EXCEPTION 'ledger: journal % has entries', OLD.code USING ERRCODE = '23503';
  END IF;

  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;

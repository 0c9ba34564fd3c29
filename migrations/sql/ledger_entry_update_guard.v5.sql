-- template: ledger_entry_update_guard
-- validated_day:
  -- An entry's date is a Paris day; validated_at is naive UTC (at 23:30 UTC in winter it is
  -- already tomorrow in Thiers: v1-v4 compared the UTC day and refused the day's entries).
  IF NEW.entry_date > (NEW.validated_at AT TIME ZONE 'UTC' AT TIME ZONE 'Europe/Paris')::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;

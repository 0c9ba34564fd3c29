-- template: locked_head
-- heads: ledger_heads
-- key: org_id
-- checks:
  IF NOT FOUND OR NEW.prev_hash <> head.last_closing_hash THEN
    RAISE EXCEPTION 'ledger: closing % is not chained to the previous closing', NEW.period USING ERRCODE = '23514';
  END IF;
  IF NEW.kind = 'year' THEN
    IF head.closed_through IS NULL OR NEW.end_date <> head.closed_through THEN
      RAISE EXCEPTION 'ledger: fiscal year % closes after its last month, before any later one', NEW.period
        USING ERRCODE = '23514';
    END IF;
  ELSIF head.closed_through IS NOT NULL AND NEW.start_date <> head.closed_through + 1 THEN
    RAISE EXCEPTION 'ledger: closing % does not follow the last closed period', NEW.period USING ERRCODE = '23514';
  END IF;

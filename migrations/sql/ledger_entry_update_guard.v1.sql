-- template: ledger_entry_update_guard
-- declare:
DECLARE
  head ledger_heads%ROWTYPE;
-- head:
  SELECT * INTO head FROM ledger_heads WHERE org_id = NEW.org_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'ledger: organisation % has no ledger', NEW.org_id USING ERRCODE = '23503';
  END IF;
  IF NEW.number <> head.last_number + 1 THEN
    RAISE EXCEPTION 'ledger: entry number % breaks the gap-free sequence (next is %)', NEW.number, head.last_number + 1
      USING ERRCODE = '23514';
  END IF;
  IF NEW.prev_hash <> head.last_hash THEN
    RAISE EXCEPTION 'ledger: entry % is not chained to the previous entry', NEW.number USING ERRCODE = '23514';
  END IF;
  IF head.closed_through IS NOT NULL AND NEW.entry_date <= head.closed_through THEN
    RAISE EXCEPTION 'ledger: the period is closed through %; date the entry after it', head.closed_through
      USING ERRCODE = '23514';
  END IF;
-- postings:
  IF (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2 THEN
    RAISE EXCEPTION 'ledger: an entry needs at least two postings' USING ERRCODE = '23514';
  END IF;
  IF EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'ledger: unbalanced entry (debits and credits differ)' USING ERRCODE = '23514';
  END IF;

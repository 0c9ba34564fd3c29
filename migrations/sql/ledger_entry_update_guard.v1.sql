-- template: ledger_entry_update_guard
-- declare:
DECLARE
  head ledger_heads%ROWTYPE;
-- head:
  SELECT * INTO head FROM ledger_heads WHERE org_id = NEW.org_id FOR UPDATE;
{chained_row}
  IF head.closed_through IS NOT NULL AND NEW.entry_date <= head.closed_through THEN
    RAISE EXCEPTION 'ledger: the period is closed through %; date the entry after it', head.closed_through
      USING ERRCODE = '23514';
  END IF;
-- key: org_id
-- seq: number
-- no_head: ledger: organisation % has no ledger
-- gap: ledger: entry number % breaks the gap-free sequence (next is %)
-- unchained: ledger: entry % is not chained to the previous entry
-- postings:
  IF (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2 THEN
    RAISE EXCEPTION 'ledger: an entry needs at least two postings' USING ERRCODE = '23514';
  END IF;
  IF EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'ledger: unbalanced entry (debits and credits differ)' USING ERRCODE = '23514';
  END IF;

-- template: head_guard
-- head: ledger: a ledger head
-- backwards:
NEW.last_number NOT IN (OLD.last_number, OLD.last_number + 1)
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))

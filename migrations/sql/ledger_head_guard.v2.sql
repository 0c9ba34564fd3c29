-- template: head_guard
-- head: ledger: a ledger head
-- backwards:
NEW.last_number < OLD.last_number
     OR (NEW.last_number = OLD.last_number AND NEW.last_hash IS DISTINCT FROM OLD.last_hash)
     OR (NEW.last_number > OLD.last_number AND NOT EXISTS (
           SELECT 1 FROM entries WHERE org_id = NEW.org_id AND number = NEW.last_number AND hash = NEW.last_hash))
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))

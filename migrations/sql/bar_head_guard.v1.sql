-- template: head_guard
-- head: bar: a till head
-- backwards:
NEW.last_seq NOT IN (OLD.last_seq, OLD.last_seq + 1)
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))

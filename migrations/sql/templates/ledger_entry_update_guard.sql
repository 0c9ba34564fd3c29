-- template: validated_entry
-- refused: modified
-- row: NEW
-- checks:
{keeps}
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
{head}
{validated_day}
{postings}

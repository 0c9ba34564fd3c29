-- template: validated_entry
-- refused: modified
-- row: NEW
-- checks:
{keeps}
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
{head}
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
{postings}

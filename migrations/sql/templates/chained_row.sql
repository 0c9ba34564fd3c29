  IF NOT FOUND THEN
    RAISE EXCEPTION '{no_head}', NEW.{key} USING ERRCODE = '23503';
  END IF;
  IF NEW.{seq} <> head.last_{seq} + 1 THEN
    RAISE EXCEPTION '{gap}', NEW.{seq}, head.last_{seq} + 1
      USING ERRCODE = '23514';
  END IF;
  IF NEW.prev_hash <> head.last_hash THEN
    RAISE EXCEPTION '{unchained}', NEW.{seq} USING ERRCODE = '23514';
  END IF;

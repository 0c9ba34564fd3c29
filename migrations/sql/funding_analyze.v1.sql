CREATE FUNCTION funding_analyze(tables text[]) RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
  t text;
BEGIN
  -- Gathering statistics is the owner's right; the service's role, which owns nothing, asks
  -- for it through this function: tables of the schema only, and nothing but ANALYZE.
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY (tables) ORDER BY tablename LOOP
    EXECUTE format('ANALYZE public.%I', t);
    RETURN NEXT t;
  END LOOP;
END $$

-- A line on a member's tab adds its amount to what the tab owes (bar_tabs, one row per site and
-- member): a sale adds, a cancellation (its mirror image, a negative amount) takes back. Run after
-- each insert into bar_sale_lines that names a member. SECURITY DEFINER: the service's role may
-- read bar_tabs, never write it; only the lines move it (funding/grants.py).
CREATE FUNCTION bar_tab_ring() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO bar_tabs AS t (site_id, member_id, org_id, owed) VALUES (NEW.site_id, NEW.member_id, NEW.org_id, NEW.amount)
  ON CONFLICT (site_id, member_id) DO UPDATE SET owed = t.owed + EXCLUDED.owed;
  RETURN NULL;
END $$

-- Lines claimed by a settlement batch leave their tab: what each tab owes drops by the claimed
-- lines' amounts, once per statement (a cut-off claims a member's open lines in one INSERT …
-- SELECT). A claim is never undone (bar_batch_lines is append-only), so neither is this.
CREATE FUNCTION bar_tab_claim() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE bar_tabs t SET owed = t.owed - c.amount
    FROM (SELECT l.site_id, l.member_id, sum(l.amount) AS amount
            FROM new_claims n JOIN bar_sale_lines l ON l.id = n.sale_line_id
           WHERE l.member_id IS NOT NULL
           GROUP BY l.site_id, l.member_id) c
   WHERE t.site_id = c.site_id AND t.member_id = c.member_id;
  RETURN NULL;
END $$

CREATE TRIGGER bar_tab_ring AFTER INSERT ON bar_sale_lines WHEN NEW.member_id IS NOT NULL
BEGIN
  INSERT INTO bar_tabs (site_id, member_id, org_id, owed) VALUES (NEW.site_id, NEW.member_id, NEW.org_id, NEW.amount)
  ON CONFLICT (site_id, member_id) DO UPDATE SET owed = owed + excluded.owed;
END

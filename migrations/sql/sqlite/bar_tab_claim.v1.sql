CREATE TRIGGER bar_tab_claim AFTER INSERT ON bar_batch_lines
BEGIN
  UPDATE bar_tabs SET owed = owed - (SELECT l.amount FROM bar_sale_lines l WHERE l.id = NEW.sale_line_id)
   WHERE (site_id, member_id) = (SELECT l.site_id, l.member_id FROM bar_sale_lines l WHERE l.id = NEW.sale_line_id);
END

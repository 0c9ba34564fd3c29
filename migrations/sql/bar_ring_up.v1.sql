-- template: bar_ring_up
-- owed:
  SELECT coalesce(sum(l.amount), 0) INTO o_owed FROM bar_sale_lines l
   WHERE l.org_id = v_site.org_id AND l.member_id = v_member.id
     AND NOT EXISTS (SELECT 1 FROM bar_batch_lines b WHERE b.sale_line_id = l.id);

-- template: bar_ring_up
-- owed:
  -- What the member owes across the organisation's sites: their tabs (bar_tabs, kept by the
  -- triggers bar_tab_ring and bar_tab_claim), one row per site, not a sum over every line they
  -- were ever served and whether a batch claimed it (v1: a tap cost more with each month of history).
  SELECT coalesce(sum(t.owed), 0) INTO o_owed FROM bar_tabs t
   WHERE t.member_id = v_member.id AND t.org_id = v_site.org_id;

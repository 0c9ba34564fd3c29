-- A tap at the till on a member's tab, whole, in one statement (funding.bar.till.ring_up_at_once):
-- the site within the caller's organisations (p_orgs, NULL for every one: the scope that
-- funding.web.require gave the request), the product and the member, the tab limit, then the
-- site's chain head locked, the line numbered, hashed as funding.bar.canonical writes it
-- (format 1) and inserted; bar_line_insert_guard and bar_line_advance_head run as for any
-- line. Called outside a transaction, the statement is its own: the head's lock is held for
-- the time of this function and its commit, never while the web process does anything else.
-- Locks the member's row before the head, as funding.bar.till.ring_up does (one order).
-- Refusals are an outcome, not an error: nothing is written, and the caller words them.
CREATE FUNCTION bar_ring_up(p_orgs bigint[], p_by text, p_slug text, p_product bigint, p_member bigint,
                            p_quantity integer, p_limit bigint, p_now timestamp, p_today date,
                            OUT o_outcome text, OUT o_line_id integer, OUT o_seq integer, OUT o_label text,
                            OUT o_amount bigint, OUT o_currency text, OUT o_owed bigint, OUT o_name text,
                            OUT o_site_name text)
LANGUAGE plpgsql AS $$
DECLARE
  v_site sites%ROWTYPE;
  v_product bar_products%ROWTYPE;
  v_member users%ROWTYPE;
  v_head bar_heads%ROWTYPE;
  v_day date;
  v_doc text;
  v_hash text;
BEGIN
  SELECT s.* INTO v_site FROM sites s WHERE s.slug = p_slug AND (p_orgs IS NULL OR s.org_id = ANY (p_orgs));
  IF NOT FOUND THEN
    o_outcome := 'elsewhere';  -- no such site for this caller: ring_up's path answers (404)
    RETURN;
  END IF;
  o_site_name := v_site.name;
  SELECT p.* INTO v_product FROM bar_products p WHERE p.id = p_product AND p.site_id = v_site.id;
  IF NOT FOUND THEN
    o_outcome := 'product';
    RETURN;
  END IF;
  o_label := v_product.name;
  o_currency := v_product.currency;
  IF NOT v_product.active THEN
    o_outcome := 'inactive';
    RETURN;
  END IF;
  SELECT u.* INTO v_member FROM users u WHERE u.id = p_member AND u.active
    AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.role = 'member' AND m.org_id = v_site.org_id)
    FOR UPDATE OF u;
  IF NOT FOUND THEN
    o_outcome := 'member';
    RETURN;
  END IF;
  o_name := v_member.name;
  o_amount := v_product.price::bigint * p_quantity;
{owed}
  IF o_owed + o_amount > p_limit THEN
    o_outcome := 'limit';
    RETURN;
  END IF;
  SELECT h.* INTO v_head FROM bar_heads h WHERE h.site_id = v_site.id FOR UPDATE;
  IF NOT FOUND THEN
    o_outcome := 'elsewhere';  -- the site's first line: ring_up makes its head
    RETURN;
  END IF;
  v_day := p_today;
  IF v_head.closed_through IS NOT NULL AND p_today < v_head.closed_through THEN
    v_day := v_head.closed_through;  -- a clock gone back files onto the last closed day (till.business_day)
  END IF;
  o_seq := v_head.last_seq + 1;
  -- funding.bar.canonical.line_document: sorted keys, no spaces, strings as JSON writes them.
  v_doc := '{"a":' || o_amount
    || ',"at":"' || to_char(p_now, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    || '","by":' || to_json(p_by)::text
    || ',"c":' || to_json(v_product.category)::text
    || ',"cur":' || to_json(v_product.currency)::text
    || ',"d":"' || to_char(v_day, 'YYYY-MM-DD')
    || '","k":"sale","l":' || to_json(v_product.name)::text
    || ',"m":' || v_member.id
    || ',"n":' || o_seq
    || ',"org":' || v_site.org_id
    || ',"p":' || v_product.id
    || ',"q":' || p_quantity
    || ',"r":' || v_product.vat_rate
    || ',"site":' || v_site.id
    || ',"t":' || 'null'  -- (never a colon before a word: where migrations run SQL, that is a parameter)
    || ',"u":' || v_product.price
    || ',"v":' || '1'
    || ',"why":"","x":' || 'null}';
  v_hash := encode(sha256(convert_to(v_head.last_hash || E'\n' || v_doc, 'UTF8')), 'hex');
  INSERT INTO bar_sale_lines (site_id, org_id, seq, day, recorded_at, kind, member_id, ticket_id, product_id, label,
                              category, unit_price, quantity, amount, vat_rate, currency, cancels_id, reason,
                              recorded_by, prev_hash, hash)
  VALUES (v_site.id, v_site.org_id, o_seq, v_day, p_now, 'sale', v_member.id, NULL, v_product.id, v_product.name,
          v_product.category, v_product.price, p_quantity, o_amount, v_product.vat_rate, v_product.currency, NULL, '',
          p_by, v_head.last_hash, v_hash)
  RETURNING id INTO o_line_id;
  o_outcome := 'ok';
END $$

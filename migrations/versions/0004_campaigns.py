"""Crowdfunding campaigns: campaigns, tiers, pledges, matchfunding, ledger tags, tax receipts

Triggers, on both engines:
- a published campaign keeps its goal, mode, currency and dates, and its status only moves
  forwards (draft → live → succeeded | failed → closed);
- tax receipts are numbered 1, 2, 3… per organisation and year without gaps, never deleted,
  and once issued only their void fields may be set (once).
"""

from funding import ddl

revision = "0004"
down_revision = "0002"

FUNCTIONS = [
    """CREATE FUNCTION campaign_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'draft' AND (NEW.goal <> OLD.goal OR NEW.mode <> OLD.mode OR NEW.currency <> OLD.currency
      OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at) THEN
    RAISE EXCEPTION 'campaigns: the goal, mode, currency and dates of a published campaign cannot change'
      USING ERRCODE = '23514';
  END IF;
  IF NEW.status <> OLD.status AND NOT (
      (OLD.status = 'draft' AND NEW.status = 'live')
      OR (OLD.status = 'live' AND NEW.status IN ('succeeded', 'failed'))
      OR (OLD.status IN ('succeeded', 'failed') AND NEW.status = 'closed')) THEN
    RAISE EXCEPTION 'campaigns: status cannot go from % to %', OLD.status, NEW.status USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE FUNCTION tax_receipt_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE expected bigint;
BEGIN
  SELECT COALESCE(MAX(number), 0) + 1 INTO expected FROM tax_receipts WHERE org_id = NEW.org_id AND year = NEW.year;
  IF NEW.number <> expected THEN
    RAISE EXCEPTION 'receipts: number % breaks the gap-free series of % (next is %)', NEW.number, NEW.year, expected
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE FUNCTION tax_receipt_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.voided_at IS NOT NULL OR (NEW.org_id, NEW.year, NEW.number, NEW.pledge_id, NEW.revision, NEW.campaign_id,
      NEW.donor_name, NEW.donor_address, NEW.donor_email, NEW.amount, NEW.currency, NEW.paid_on, NEW.method, NEW.issued_at)
      IS DISTINCT FROM (OLD.org_id, OLD.year, OLD.number, OLD.pledge_id, OLD.revision, OLD.campaign_id,
      OLD.donor_name, OLD.donor_address, OLD.donor_email, OLD.amount, OLD.currency, OLD.paid_on, OLD.method, OLD.issued_at) THEN
    RAISE EXCEPTION 'receipts: an issued tax receipt cannot be changed, only voided once' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE FUNCTION tax_receipt_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'receipts: a tax receipt is never deleted; void it' USING ERRCODE = '23001';
END $$""",
]
TRIGGERS = [
    ddl.Trigger("campaigns_update_guard", "BEFORE UPDATE ON campaigns", "campaign_update_guard"),
    *(ddl.Trigger(f"tax_receipts_{event}_guard", f"BEFORE {event.upper()} ON tax_receipts", f"tax_receipt_{event}_guard")
      for event in ("insert", "update", "delete")),
]


SQLITE = [
    f"""CREATE TRIGGER campaigns_terms_guard BEFORE UPDATE ON campaigns
WHEN OLD.status <> 'draft' AND (NEW.goal <> OLD.goal OR NEW.mode <> OLD.mode OR NEW.currency <> OLD.currency
  OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at)
BEGIN {ddl.abort("campaigns: the goal, mode, currency and dates of a published campaign cannot change")}; END""",
    f"""CREATE TRIGGER campaigns_status_guard BEFORE UPDATE ON campaigns
WHEN NEW.status <> OLD.status AND NOT (
  (OLD.status = 'draft' AND NEW.status = 'live')
  OR (OLD.status = 'live' AND NEW.status IN ('succeeded', 'failed'))
  OR (OLD.status IN ('succeeded', 'failed') AND NEW.status = 'closed'))
BEGIN {ddl.abort("campaigns: status only moves forwards")}; END""",
    f"""CREATE TRIGGER tax_receipts_insert_guard BEFORE INSERT ON tax_receipts
WHEN NEW.number <> (SELECT COALESCE(MAX(number), 0) + 1 FROM tax_receipts WHERE org_id = NEW.org_id AND year = NEW.year)
BEGIN {ddl.abort("receipts: number breaks the gap-free series")}; END""",  # noqa: S608 — only a message written here is interpolated, never input
    f"""CREATE TRIGGER tax_receipts_update_guard BEFORE UPDATE ON tax_receipts
WHEN OLD.voided_at IS NOT NULL OR NEW.org_id IS NOT OLD.org_id OR NEW.year IS NOT OLD.year OR NEW.number IS NOT OLD.number
  OR NEW.pledge_id IS NOT OLD.pledge_id OR NEW.revision IS NOT OLD.revision OR NEW.campaign_id IS NOT OLD.campaign_id
  OR NEW.donor_name IS NOT OLD.donor_name OR NEW.donor_address IS NOT OLD.donor_address
  OR NEW.donor_email IS NOT OLD.donor_email OR NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency
  OR NEW.paid_on IS NOT OLD.paid_on OR NEW.method IS NOT OLD.method OR NEW.issued_at IS NOT OLD.issued_at
BEGIN {ddl.abort("receipts: an issued tax receipt cannot be changed, only voided once")}; END""",
    f"""CREATE TRIGGER tax_receipts_delete_guard BEFORE DELETE ON tax_receipts
BEGIN {ddl.abort("receipts: a tax receipt is never deleted; void it")}; END""",
]
GUARDS = ddl.Guards(functions=FUNCTIONS, triggers=TRIGGERS, sqlite=SQLITE)


def upgrade() -> None:
    ddl.create_table("tax_receipt_counters", ddl.ref("org_id", "organisations"),
                     ddl.column("year", autoincrement=False), ddl.column("last_number"), primary_key=("org_id", "year"))
    ddl.create_table("tax_receipt_issuers", ddl.ref("org_id", "organisations", autoincrement=False),
                     ddl.text("purpose"), ddl.string("signatory", 200), ddl.string("signatory_role", 120),
                     ddl.string("place", 120), primary_key=("org_id",))
    ddl.create_table("campaigns", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.column("site_id"),
                     ddl.string("slug", 80), ddl.string("title", 200), ddl.string("summary", 300),
                     ddl.text("description"), ddl.string("image_url", 500, null=True), ddl.column("goal"),
                     ddl.string("currency", 3), ddl.string("mode", 16), ddl.string("status", 10),
                     ddl.timestamp("starts_at"), ddl.timestamp("ends_at"), ddl.column("min_amount"),
                     ddl.column("max_amount"), ddl.boolean("free_amount"), ddl.column("crowd_total"),
                     ddl.column("collected_total"), ddl.column("match_uncapped"), ddl.column("backers_count"),
                     ddl.string("created_by", 200), ddl.timestamp("created_at"), ddl.timestamp("updated_at"),
                     ddl.timestamp("published_at", null=True), ddl.timestamp("decided_at", null=True),
                     ddl.timestamp("closed_at", null=True),
                     ddl.check("mode", "mode IN ('all_or_nothing', 'keep_it_all')"),
                     ddl.check("status", "status IN ('draft', 'live', 'succeeded', 'failed', 'closed')"),
                     ddl.check("totals_not_negative", "crowd_total >= 0 AND match_uncapped >= 0 AND backers_count >= 0 AND collected_total >= 0"),
                     ddl.check("dates_in_order", "ends_at > starts_at"), ddl.check("goal_positive", "goal > 0"),
                     ddl.check("currency_code", "length(currency) = 3"),
                     ddl.check("amount_bounds", "min_amount > 0 AND max_amount >= min_amount"),
                     ddl.foreign_key(["site_id", "org_id"], "sites", ["id", "org_id"]), ddl.unique("slug"),
                     ddl.index("site_id"), ddl.index("status", "ends_at", name="ix_campaigns_status_ends"))
    ddl.create_table("campaign_matches", ddl.column("id"), ddl.ref("campaign_id", "campaigns"),
                     ddl.string("funder_name", 200), ddl.string("funder_siret", 14, null=True),
                     ddl.string("reference", 100), ddl.column("ratio_num"), ddl.column("ratio_den"),
                     ddl.column("cap_per_pledge"), ddl.column("total_cap"), ddl.string("status", 10),
                     ddl.column("released_amount", null=True), ddl.timestamp("released_at", null=True),
                     ddl.ref("grant_id", "grants", null=True), ddl.timestamp("created_at"),
                     ddl.check("status", "status IN ('pledged', 'released', 'cancelled')"),
                     ddl.check("caps", "cap_per_pledge > 0 AND total_cap > 0"),
                     ddl.check("ratio", "ratio_num > 0 AND ratio_den > 0"), ddl.unique("campaign_id"))
    ddl.create_table("campaign_tiers", ddl.column("id"), ddl.ref("campaign_id", "campaigns"), ddl.column("position"),
                     ddl.string("title", 120), ddl.text("description"), ddl.column("amount"), ddl.string("kind", 10),
                     ddl.column("reward_value"), ddl.column("vat_per_mille"), ddl.column("stock", null=True),
                     ddl.column("remaining", null=True), ddl.column("backers_count"), ddl.boolean("active"),
                     ddl.timestamp("created_at"), ddl.check("kind", "kind IN ('gift', 'reward')"),
                     ddl.check("stock", "(stock IS NULL AND remaining IS NULL) OR (remaining >= 0 AND remaining <= stock)"),
                     ddl.check("amount_positive", "amount > 0"), ddl.check("backers", "backers_count >= 0"),
                     ddl.check("reward_value", "reward_value >= 0"),
                     ddl.check("vat_rate", "vat_per_mille IN (0, 55, 100, 200)"),
                     ddl.index("campaign_id", "position", name="ix_campaign_tiers_campaign"))
    ddl.create_table("campaign_pledges", ddl.column("id"), ddl.ref("campaign_id", "campaigns"),
                     ddl.ref("tier_id", "campaign_tiers", null=True), ddl.column("amount"), ddl.string("currency", 3),
                     ddl.string("nature", 5), ddl.column("vat_per_mille"), ddl.column("match_amount"),
                     ddl.string("name", 200), ddl.string("email", 254), ddl.text("address"),
                     ddl.string("public_name", 120, null=True), ddl.string("message", 500), ddl.string("status", 16),
                     ddl.string("access_token", 200, null=True), ddl.string("link_base", 200),
                     ddl.ref("payment_id", "payments", null=True), ddl.string("checkout_session_id", 255, null=True),
                     ddl.string("customer_id", 255, null=True), ddl.string("payment_method_id", 255, null=True),
                     ddl.string("payment_intent_id", 255, null=True), ddl.column("charge_attempt"),
                     ddl.column("card_sessions"), ddl.timestamp("claimed_at", null=True),
                     ddl.timestamp("grace_until", null=True), ddl.column("amount_refunded"),
                     ddl.text("last_error", null=True), ddl.timestamp("created_at"), ddl.timestamp("updated_at"),
                     ddl.timestamp("activated_at", null=True), ddl.timestamp("paid_at", null=True),
                     ddl.timestamp("ended_at", null=True), ddl.timestamp("delivered_at", null=True),
                     ddl.check("nature", "nature IN ('gift', 'sale')"),
                     ddl.check("status", "status IN ('pending', 'active', 'charging', 'action_required', 'card_declined',"
                                         " 'retry', 'paid', 'failed', 'cancelled', 'expired', 'void')"),
                     ddl.check("amount_positive", "amount > 0"),
                     ddl.check("refunded", "amount_refunded >= 0 AND amount_refunded <= amount"),
                     ddl.check("match_amount", "match_amount >= 0"), ddl.unique("access_token"),
                     ddl.unique("checkout_session_id"), ddl.unique("payment_id"),
                     ddl.index("campaign_id", "id", name="ix_campaign_pledges_campaign"), ddl.index("email"),
                     ddl.index("payment_intent_id"),
                     ddl.index("status", "campaign_id", name="ix_campaign_pledges_status"))
    ddl.create_table("campaign_entries", ddl.column("id"), ddl.ref("campaign_id", "campaigns"),
                     ddl.ref("pledge_id", "campaign_pledges", null=True), ddl.string("source_key", 200),
                     ddl.string("kind", 20), ddl.timestamp("created_at"), ddl.unique("source_key"),
                     ddl.index("campaign_id"))
    ddl.create_table("tax_receipts", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.column("year"),
                     ddl.column("number"), ddl.ref("pledge_id", "campaign_pledges"), ddl.column("revision"),
                     ddl.ref("campaign_id", "campaigns"), ddl.string("donor_name", 200), ddl.text("donor_address"),
                     ddl.string("donor_email", 254), ddl.column("amount"), ddl.string("currency", 3),
                     ddl.date("paid_on"), ddl.string("method", 40), ddl.timestamp("issued_at"),
                     ddl.timestamp("voided_at", null=True), ddl.string("void_reason", 200, null=True),
                     ddl.check("amount_positive", "amount > 0"), ddl.check("number_positive", "number > 0"),
                     ddl.unique("org_id", "year", "number"), ddl.unique("pledge_id", "revision"),
                     ddl.index("org_id", "donor_email", "year", name="ix_tax_receipts_donor"))
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    ddl.drop_tables("tax_receipts", "campaign_entries", "campaign_pledges", "campaign_tiers", "campaign_matches",
                    "campaigns", "tax_receipt_issuers", "tax_receipt_counters")

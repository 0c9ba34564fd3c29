"""Crowdfunding campaigns: campaigns, tiers, pledges, matchfunding, ledger tags, tax receipts

Triggers, on both engines:
- a published campaign keeps its goal, mode, currency and dates, and its status only moves
  forwards (draft → live → succeeded | failed → closed);
- tax receipts are numbered 1, 2, 3… per organisation and year without gaps, never deleted,
  and once issued only their void fields may be set (once).
"""

from funding.ddl import (
    Guards,
    Trigger,
    abort,
    boolean,
    check,
    column,
    create_table,
    date,
    drop_tables,
    foreign_key,
    index,
    ref,
    string,
    text,
    timestamp,
    unique,
)

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
    Trigger("campaigns_update_guard", "BEFORE UPDATE ON campaigns", "campaign_update_guard"),
    *(Trigger(f"tax_receipts_{event}_guard", f"BEFORE {event.upper()} ON tax_receipts", f"tax_receipt_{event}_guard")
      for event in ("insert", "update", "delete")),
]


SQLITE = [
    f"""CREATE TRIGGER campaigns_terms_guard BEFORE UPDATE ON campaigns
WHEN OLD.status <> 'draft' AND (NEW.goal <> OLD.goal OR NEW.mode <> OLD.mode OR NEW.currency <> OLD.currency
  OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at)
BEGIN {abort("campaigns: the goal, mode, currency and dates of a published campaign cannot change")}; END""",
    f"""CREATE TRIGGER campaigns_status_guard BEFORE UPDATE ON campaigns
WHEN NEW.status <> OLD.status AND NOT (
  (OLD.status = 'draft' AND NEW.status = 'live')
  OR (OLD.status = 'live' AND NEW.status IN ('succeeded', 'failed'))
  OR (OLD.status IN ('succeeded', 'failed') AND NEW.status = 'closed'))
BEGIN {abort("campaigns: status only moves forwards")}; END""",
    f"""CREATE TRIGGER tax_receipts_insert_guard BEFORE INSERT ON tax_receipts
WHEN NEW.number <> (SELECT COALESCE(MAX(number), 0) + 1 FROM tax_receipts WHERE org_id = NEW.org_id AND year = NEW.year)
BEGIN {abort("receipts: number breaks the gap-free series")}; END""",
    f"""CREATE TRIGGER tax_receipts_update_guard BEFORE UPDATE ON tax_receipts
WHEN OLD.voided_at IS NOT NULL OR NEW.org_id IS NOT OLD.org_id OR NEW.year IS NOT OLD.year OR NEW.number IS NOT OLD.number
  OR NEW.pledge_id IS NOT OLD.pledge_id OR NEW.revision IS NOT OLD.revision OR NEW.campaign_id IS NOT OLD.campaign_id
  OR NEW.donor_name IS NOT OLD.donor_name OR NEW.donor_address IS NOT OLD.donor_address
  OR NEW.donor_email IS NOT OLD.donor_email OR NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency
  OR NEW.paid_on IS NOT OLD.paid_on OR NEW.method IS NOT OLD.method OR NEW.issued_at IS NOT OLD.issued_at
BEGIN {abort("receipts: an issued tax receipt cannot be changed, only voided once")}; END""",
    f"""CREATE TRIGGER tax_receipts_delete_guard BEFORE DELETE ON tax_receipts
BEGIN {abort("receipts: a tax receipt is never deleted; void it")}; END""",
]
GUARDS = Guards(functions=FUNCTIONS, triggers=TRIGGERS, sqlite=SQLITE)


def upgrade() -> None:
    create_table("tax_receipt_counters", ref("org_id", "organisations"), column("year", autoincrement=False),
                 column("last_number"), primary_key=("org_id", "year"))
    create_table("tax_receipt_issuers", ref("org_id", "organisations", autoincrement=False), text("purpose"),
                 string("signatory", 200), string("signatory_role", 120), string("place", 120),
                 primary_key=("org_id",))
    create_table("campaigns", column("id"), ref("org_id", "organisations"), column("site_id"), string("slug", 80),
                 string("title", 200), string("summary", 300), text("description"),
                 string("image_url", 500, null=True), column("goal"), string("currency", 3), string("mode", 16),
                 string("status", 10), timestamp("starts_at"), timestamp("ends_at"), column("min_amount"),
                 column("max_amount"), boolean("free_amount"), column("crowd_total"), column("collected_total"),
                 column("match_uncapped"), column("backers_count"), string("created_by", 200),
                 timestamp("created_at"), timestamp("updated_at"), timestamp("published_at", null=True),
                 timestamp("decided_at", null=True), timestamp("closed_at", null=True),
                 check("mode", "mode IN ('all_or_nothing', 'keep_it_all')"),
                 check("status", "status IN ('draft', 'live', 'succeeded', 'failed', 'closed')"),
                 check("totals_not_negative", "crowd_total >= 0 AND match_uncapped >= 0 AND backers_count >= 0 AND collected_total >= 0"),
                 check("dates_in_order", "ends_at > starts_at"), check("goal_positive", "goal > 0"),
                 check("currency_code", "length(currency) = 3"),
                 check("amount_bounds", "min_amount > 0 AND max_amount >= min_amount"),
                 foreign_key(["site_id", "org_id"], "sites", ["id", "org_id"]), unique("slug"), index("site_id"),
                 index("status", "ends_at", name="ix_campaigns_status_ends"))
    create_table("campaign_matches", column("id"), ref("campaign_id", "campaigns"), string("funder_name", 200),
                 string("funder_siret", 14, null=True), string("reference", 100), column("ratio_num"),
                 column("ratio_den"), column("cap_per_pledge"), column("total_cap"), string("status", 10),
                 column("released_amount", null=True), timestamp("released_at", null=True),
                 ref("grant_id", "grants", null=True), timestamp("created_at"),
                 check("status", "status IN ('pledged', 'released', 'cancelled')"),
                 check("caps", "cap_per_pledge > 0 AND total_cap > 0"),
                 check("ratio", "ratio_num > 0 AND ratio_den > 0"), unique("campaign_id"))
    create_table("campaign_tiers", column("id"), ref("campaign_id", "campaigns"), column("position"),
                 string("title", 120), text("description"), column("amount"), string("kind", 10),
                 column("reward_value"), column("vat_per_mille"), column("stock", null=True),
                 column("remaining", null=True), column("backers_count"), boolean("active"), timestamp("created_at"),
                 check("kind", "kind IN ('gift', 'reward')"),
                 check("stock", "(stock IS NULL AND remaining IS NULL) OR (remaining >= 0 AND remaining <= stock)"),
                 check("amount_positive", "amount > 0"), check("backers", "backers_count >= 0"),
                 check("reward_value", "reward_value >= 0"), check("vat_rate", "vat_per_mille IN (0, 55, 100, 200)"),
                 index("campaign_id", "position", name="ix_campaign_tiers_campaign"))
    create_table("campaign_pledges", column("id"), ref("campaign_id", "campaigns"),
                 ref("tier_id", "campaign_tiers", null=True), column("amount"), string("currency", 3),
                 string("nature", 5), column("vat_per_mille"), column("match_amount"), string("name", 200),
                 string("email", 254), text("address"), string("public_name", 120, null=True),
                 string("message", 500), string("status", 16), string("access_token", 200, null=True),
                 string("link_base", 200), ref("payment_id", "payments", null=True),
                 string("checkout_session_id", 255, null=True), string("customer_id", 255, null=True),
                 string("payment_method_id", 255, null=True), string("payment_intent_id", 255, null=True),
                 column("charge_attempt"), column("card_sessions"), timestamp("claimed_at", null=True),
                 timestamp("grace_until", null=True), column("amount_refunded"), text("last_error", null=True),
                 timestamp("created_at"), timestamp("updated_at"), timestamp("activated_at", null=True),
                 timestamp("paid_at", null=True), timestamp("ended_at", null=True),
                 timestamp("delivered_at", null=True), check("nature", "nature IN ('gift', 'sale')"),
                 check("status", "status IN ('pending', 'active', 'charging', 'action_required', 'card_declined', 'retry', 'paid', 'failed', 'cancelled', 'expired', 'void')"),
                 check("amount_positive", "amount > 0"),
                 check("refunded", "amount_refunded >= 0 AND amount_refunded <= amount"),
                 check("match_amount", "match_amount >= 0"), unique("access_token"), unique("checkout_session_id"),
                 unique("payment_id"), index("campaign_id", "id", name="ix_campaign_pledges_campaign"),
                 index("email"), index("payment_intent_id"),
                 index("status", "campaign_id", name="ix_campaign_pledges_status"))
    create_table("campaign_entries", column("id"), ref("campaign_id", "campaigns"),
                 ref("pledge_id", "campaign_pledges", null=True), string("source_key", 200), string("kind", 20),
                 timestamp("created_at"), unique("source_key"), index("campaign_id"))
    create_table("tax_receipts", column("id"), ref("org_id", "organisations"), column("year"), column("number"),
                 ref("pledge_id", "campaign_pledges"), column("revision"), ref("campaign_id", "campaigns"),
                 string("donor_name", 200), text("donor_address"), string("donor_email", 254), column("amount"),
                 string("currency", 3), date("paid_on"), string("method", 40), timestamp("issued_at"),
                 timestamp("voided_at", null=True), string("void_reason", 200, null=True),
                 check("amount_positive", "amount > 0"), check("number_positive", "number > 0"),
                 unique("org_id", "year", "number"), unique("pledge_id", "revision"),
                 index("org_id", "donor_email", "year", name="ix_tax_receipts_donor"))
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    drop_tables("tax_receipts", "campaign_entries", "campaign_pledges", "campaign_tiers", "campaign_matches",
                "campaigns", "tax_receipt_issuers", "tax_receipt_counters")

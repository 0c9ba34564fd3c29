"""Crowdfunding campaigns: campaigns, tiers, pledges, matchfunding, ledger tags, tax receipts

Triggers, on both engines:
- a published campaign keeps its goal, mode, currency and dates, and its status only moves
  forwards (draft → live → succeeded | failed → closed);
- tax receipts are numbered 1, 2, 3… per organisation and year without gaps, never deleted,
  and once issued only their void fields may be set (once).

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-28 10:16:29.447250
"""

from alembic import op
import sqlalchemy as sa

PG = [
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
    "CREATE TRIGGER campaigns_update_guard BEFORE UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION campaign_update_guard()",
    "CREATE TRIGGER tax_receipts_insert_guard BEFORE INSERT ON tax_receipts FOR EACH ROW"
    " EXECUTE FUNCTION tax_receipt_insert_guard()",
    "CREATE TRIGGER tax_receipts_update_guard BEFORE UPDATE ON tax_receipts FOR EACH ROW"
    " EXECUTE FUNCTION tax_receipt_update_guard()",
    "CREATE TRIGGER tax_receipts_delete_guard BEFORE DELETE ON tax_receipts FOR EACH ROW"
    " EXECUTE FUNCTION tax_receipt_delete_guard()",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS campaigns_update_guard ON campaigns",
    "DROP TRIGGER IF EXISTS tax_receipts_insert_guard ON tax_receipts",
    "DROP TRIGGER IF EXISTS tax_receipts_update_guard ON tax_receipts",
    "DROP TRIGGER IF EXISTS tax_receipts_delete_guard ON tax_receipts",
    "DROP FUNCTION IF EXISTS campaign_update_guard()",
    "DROP FUNCTION IF EXISTS tax_receipt_insert_guard()",
    "DROP FUNCTION IF EXISTS tax_receipt_update_guard()",
    "DROP FUNCTION IF EXISTS tax_receipt_delete_guard()",
]


def _raise(message: str) -> str:
    return f"SELECT RAISE(ABORT, '{message}')"


SQLITE = [
    f"""CREATE TRIGGER campaigns_terms_guard BEFORE UPDATE ON campaigns
WHEN OLD.status <> 'draft' AND (NEW.goal <> OLD.goal OR NEW.mode <> OLD.mode OR NEW.currency <> OLD.currency
  OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at)
BEGIN {_raise("campaigns: the goal, mode, currency and dates of a published campaign cannot change")}; END""",
    f"""CREATE TRIGGER campaigns_status_guard BEFORE UPDATE ON campaigns
WHEN NEW.status <> OLD.status AND NOT (
  (OLD.status = 'draft' AND NEW.status = 'live')
  OR (OLD.status = 'live' AND NEW.status IN ('succeeded', 'failed'))
  OR (OLD.status IN ('succeeded', 'failed') AND NEW.status = 'closed'))
BEGIN {_raise("campaigns: status only moves forwards")}; END""",
    f"""CREATE TRIGGER tax_receipts_insert_guard BEFORE INSERT ON tax_receipts
WHEN NEW.number <> (SELECT COALESCE(MAX(number), 0) + 1 FROM tax_receipts WHERE org_id = NEW.org_id AND year = NEW.year)
BEGIN {_raise("receipts: number breaks the gap-free series")}; END""",
    f"""CREATE TRIGGER tax_receipts_update_guard BEFORE UPDATE ON tax_receipts
WHEN OLD.voided_at IS NOT NULL OR NEW.org_id IS NOT OLD.org_id OR NEW.year IS NOT OLD.year OR NEW.number IS NOT OLD.number
  OR NEW.pledge_id IS NOT OLD.pledge_id OR NEW.revision IS NOT OLD.revision OR NEW.campaign_id IS NOT OLD.campaign_id
  OR NEW.donor_name IS NOT OLD.donor_name OR NEW.donor_address IS NOT OLD.donor_address
  OR NEW.donor_email IS NOT OLD.donor_email OR NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency
  OR NEW.paid_on IS NOT OLD.paid_on OR NEW.method IS NOT OLD.method OR NEW.issued_at IS NOT OLD.issued_at
BEGIN {_raise("receipts: an issued tax receipt cannot be changed, only voided once")}; END""",
    f"""CREATE TRIGGER tax_receipts_delete_guard BEFORE DELETE ON tax_receipts
BEGIN {_raise("receipts: a tax receipt is never deleted; void it")}; END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in ("campaigns_terms_guard", "campaigns_status_guard", "tax_receipts_insert_guard",
                 "tax_receipts_update_guard", "tax_receipts_delete_guard")
]


def _statements(*, drop: bool = False) -> list[str]:
    if op.get_bind().dialect.name == "postgresql":
        return PG_DROP if drop else PG
    return SQLITE_DROP if drop else SQLITE


revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('tax_receipt_counters',
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('year', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_tax_receipt_counters_org_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', 'year', name=op.f('pk_tax_receipt_counters'))
    )
    op.create_table('tax_receipt_issuers',
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('signatory', sa.String(length=200), nullable=False),
    sa.Column('signatory_role', sa.String(length=120), nullable=False),
    sa.Column('place', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_tax_receipt_issuers_org_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_tax_receipt_issuers'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('image_url', sa.String(length=500), nullable=True),
    sa.Column('goal', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('min_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('max_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('free_amount', sa.Boolean(), nullable=False),
    sa.Column('crowd_total', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collected_total', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('match_uncapped', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('backers_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("mode IN ('all_or_nothing', 'keep_it_all')", name=op.f('ck_campaigns_mode')),
    sa.CheckConstraint("status IN ('draft', 'live', 'succeeded', 'failed', 'closed')", name=op.f('ck_campaigns_status')),
    sa.CheckConstraint('crowd_total >= 0 AND match_uncapped >= 0 AND backers_count >= 0 AND collected_total >= 0', name=op.f('ck_campaigns_totals_not_negative')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_campaigns_dates_in_order')),
    sa.CheckConstraint('goal > 0', name=op.f('ck_campaigns_goal_positive')),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_campaigns_currency_code')),
    sa.CheckConstraint('min_amount > 0 AND max_amount >= min_amount', name=op.f('ck_campaigns_amount_bounds')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_campaigns_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id', 'org_id'], ['sites.id', 'sites.org_id'], name=op.f('fk_campaigns_site_id_org_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('slug', name=op.f('uq_campaigns_slug'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_campaigns_status_ends', ['status', 'ends_at'], unique=False)

    op.create_table('campaign_matches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('funder_name', sa.String(length=200), nullable=False),
    sa.Column('funder_siret', sa.String(length=14), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('ratio_num', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ratio_den', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cap_per_pledge', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_cap', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('released_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.Column('grant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('pledged', 'released', 'cancelled')", name=op.f('ck_campaign_matches_status')),
    sa.CheckConstraint('cap_per_pledge > 0 AND total_cap > 0', name=op.f('ck_campaign_matches_caps')),
    sa.CheckConstraint('ratio_num > 0 AND ratio_den > 0', name=op.f('ck_campaign_matches_ratio')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_matches_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_campaign_matches_grant_id_grants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_matches')),
    sa.UniqueConstraint('campaign_id', name=op.f('uq_campaign_matches_campaign_id'))
    )
    op.create_table('campaign_tiers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('reward_value', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vat_per_mille', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stock', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('remaining', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('backers_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('gift', 'reward')", name=op.f('ck_campaign_tiers_kind')),
    sa.CheckConstraint('(stock IS NULL AND remaining IS NULL) OR (remaining >= 0 AND remaining <= stock)', name=op.f('ck_campaign_tiers_stock')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_campaign_tiers_amount_positive')),
    sa.CheckConstraint('backers_count >= 0', name=op.f('ck_campaign_tiers_backers')),
    sa.CheckConstraint('reward_value >= 0', name=op.f('ck_campaign_tiers_reward_value')),
    sa.CheckConstraint('vat_per_mille IN (0, 55, 100, 200)', name=op.f('ck_campaign_tiers_vat_rate')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_tiers_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_tiers'))
    )
    with op.batch_alter_table('campaign_tiers', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_tiers_campaign', ['campaign_id', 'position'], unique=False)

    op.create_table('campaign_pledges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('nature', sa.String(length=5), nullable=False),
    sa.Column('vat_per_mille', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('match_amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('public_name', sa.String(length=120), nullable=True),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('access_token', sa.String(length=200), nullable=True),
    sa.Column('link_base', sa.String(length=200), nullable=False),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('payment_method_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('charge_attempt', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_sessions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('grace_until', sa.DateTime(), nullable=True),
    sa.Column('amount_refunded', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("nature IN ('gift', 'sale')", name=op.f('ck_campaign_pledges_nature')),
    sa.CheckConstraint("status IN ('pending', 'active', 'charging', 'action_required', 'card_declined', 'retry', 'paid', 'failed', 'cancelled', 'expired', 'void')", name=op.f('ck_campaign_pledges_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_campaign_pledges_amount_positive')),
    sa.CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name=op.f('ck_campaign_pledges_refunded')),
    sa.CheckConstraint('match_amount >= 0', name=op.f('ck_campaign_pledges_match_amount')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_pledges_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_campaign_pledges_payment_id_payments')),
    sa.ForeignKeyConstraint(['tier_id'], ['campaign_tiers.id'], name=op.f('fk_campaign_pledges_tier_id_campaign_tiers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_pledges')),
    sa.UniqueConstraint('access_token', name=op.f('uq_campaign_pledges_access_token')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_campaign_pledges_checkout_session_id')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_campaign_pledges_payment_id'))
    )
    with op.batch_alter_table('campaign_pledges', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_pledges_campaign', ['campaign_id', 'id'], unique=False)
        batch_op.create_index('ix_campaign_pledges_email', ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_pledges_payment_intent_id'), ['payment_intent_id'], unique=False)
        batch_op.create_index('ix_campaign_pledges_status', ['status', 'campaign_id'], unique=False)

    op.create_table('campaign_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pledge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_entries_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['pledge_id'], ['campaign_pledges.id'], name=op.f('fk_campaign_entries_pledge_id_campaign_pledges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_entries')),
    sa.UniqueConstraint('source_key', name=op.f('uq_campaign_entries_source_key'))
    )
    with op.batch_alter_table('campaign_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_entries_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('tax_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('year', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pledge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('revision', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('donor_name', sa.String(length=200), nullable=False),
    sa.Column('donor_address', sa.Text(), nullable=False),
    sa.Column('donor_email', sa.String(length=254), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_tax_receipts_amount_positive')),
    sa.CheckConstraint('number > 0', name=op.f('ck_tax_receipts_number_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_tax_receipts_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_tax_receipts_org_id_organisations')),
    sa.ForeignKeyConstraint(['pledge_id'], ['campaign_pledges.id'], name=op.f('fk_tax_receipts_pledge_id_campaign_pledges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_receipts')),
    sa.UniqueConstraint('org_id', 'year', 'number', name=op.f('uq_tax_receipts_org_id_year_number')),
    sa.UniqueConstraint('pledge_id', 'revision', name=op.f('uq_tax_receipts_pledge_id_revision'))
    )
    with op.batch_alter_table('tax_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_tax_receipts_donor', ['org_id', 'donor_email', 'year'], unique=False)

    # ### end Alembic commands ###
    for sql in _statements():
        op.execute(sql)


def downgrade() -> None:
    for sql in _statements(drop=True):
        op.execute(sql)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('tax_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_tax_receipts_donor')

    op.drop_table('tax_receipts')
    with op.batch_alter_table('campaign_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_entries_campaign_id'))

    op.drop_table('campaign_entries')
    with op.batch_alter_table('campaign_pledges', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_pledges_status')
        batch_op.drop_index(batch_op.f('ix_campaign_pledges_payment_intent_id'))
        batch_op.drop_index('ix_campaign_pledges_email')
        batch_op.drop_index('ix_campaign_pledges_campaign')

    op.drop_table('campaign_pledges')
    with op.batch_alter_table('campaign_tiers', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_tiers_campaign')

    op.drop_table('campaign_tiers')
    op.drop_table('campaign_matches')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_status_ends')
        batch_op.drop_index(batch_op.f('ix_campaigns_site_id'))

    op.drop_table('campaigns')
    op.drop_table('tax_receipt_issuers')
    op.drop_table('tax_receipt_counters')
    # ### end Alembic commands ###

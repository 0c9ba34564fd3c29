"""Bar: products, till heads, sale lines (hash-chained, append-only), walk-in tickets, batches, closings, archives

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-28 10:25:27.929424
"""

from alembic import op
import sqlalchemy as sa


# Database-side guards of the till (see funding/bar/models.py): a sale line is numbered
# and chained to its site's head or refused, and never changes afterwards; claims of lines
# by batches, closings and archives are append-only; closings and archives are chained;
# the head only moves forwards.

PG = [
    """
CREATE FUNCTION bar_line_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head bar_heads%ROWTYPE;
BEGIN
  SELECT * INTO head FROM bar_heads WHERE site_id = NEW.site_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'bar: site % has no till', NEW.site_id USING ERRCODE = '23503';
  END IF;
  IF NEW.seq <> head.last_seq + 1 THEN
    RAISE EXCEPTION 'bar: sale line % breaks the gap-free sequence (next is %)', NEW.seq, head.last_seq + 1
      USING ERRCODE = '23514';
  END IF;
  IF NEW.prev_hash <> head.last_hash THEN
    RAISE EXCEPTION 'bar: sale line % is not chained to the previous line', NEW.seq USING ERRCODE = '23514';
  END IF;
  IF head.closed_through IS NOT NULL AND NEW.day <= head.closed_through THEN
    RAISE EXCEPTION 'bar: the day % is closed', NEW.day USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$""",
    """
CREATE FUNCTION bar_line_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_seq = NEW.seq, last_hash = NEW.hash WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION bar_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'bar: % rows are never changed or deleted; record a cancelling line instead', TG_TABLE_NAME
    USING ERRCODE = '23001';
END $$""",
    """
CREATE FUNCTION bar_closing_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head bar_heads%ROWTYPE;
BEGIN
  SELECT * INTO head FROM bar_heads WHERE site_id = NEW.site_id FOR UPDATE;
  IF NOT FOUND OR NEW.prev_hash <> head.last_closing_hash THEN
    RAISE EXCEPTION 'bar: closing % is not chained to the previous closing', NEW.period USING ERRCODE = '23514';
  END IF;
  IF NEW.kind = 'day' AND head.closed_through IS NOT NULL AND NEW.end_date <= head.closed_through THEN
    RAISE EXCEPTION 'bar: the day % is already closed', NEW.end_date USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$""",
    """
CREATE FUNCTION bar_closing_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_closing_hash = NEW.hash,
    closed_through = CASE WHEN NEW.kind = 'day' THEN NEW.end_date ELSE closed_through END
  WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION bar_archive_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.prev_hash <> (SELECT last_archive_hash FROM bar_heads WHERE site_id = NEW.site_id FOR UPDATE) THEN
    RAISE EXCEPTION 'bar: archive % is not chained to the previous archive', NEW.period USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$""",
    """
CREATE FUNCTION bar_archive_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_archive_hash = NEW.hash WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION bar_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'bar: a till head cannot be deleted' USING ERRCODE = '23001';
  END IF;
  IF NEW.last_seq NOT IN (OLD.last_seq, OLD.last_seq + 1)
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through)) THEN
    RAISE EXCEPTION 'bar: a till head only moves forward' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$""",
    "CREATE TRIGGER bar_lines_insert_guard BEFORE INSERT ON bar_sale_lines FOR EACH ROW EXECUTE FUNCTION bar_line_insert_guard()",
    "CREATE TRIGGER bar_lines_advance_head AFTER INSERT ON bar_sale_lines FOR EACH ROW EXECUTE FUNCTION bar_line_advance_head()",
    "CREATE TRIGGER bar_lines_frozen BEFORE UPDATE OR DELETE ON bar_sale_lines FOR EACH ROW EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_lines_no_truncate BEFORE TRUNCATE ON bar_sale_lines EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_claims_frozen BEFORE UPDATE OR DELETE ON bar_batch_lines FOR EACH ROW EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_closings_insert_guard BEFORE INSERT ON bar_closings FOR EACH ROW EXECUTE FUNCTION bar_closing_insert_guard()",
    "CREATE TRIGGER bar_closings_advance_head AFTER INSERT ON bar_closings FOR EACH ROW EXECUTE FUNCTION bar_closing_advance_head()",
    "CREATE TRIGGER bar_closings_frozen BEFORE UPDATE OR DELETE ON bar_closings FOR EACH ROW EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_closings_no_truncate BEFORE TRUNCATE ON bar_closings EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_archives_insert_guard BEFORE INSERT ON bar_archives FOR EACH ROW EXECUTE FUNCTION bar_archive_insert_guard()",
    "CREATE TRIGGER bar_archives_advance_head AFTER INSERT ON bar_archives FOR EACH ROW EXECUTE FUNCTION bar_archive_advance_head()",
    "CREATE TRIGGER bar_archives_frozen BEFORE UPDATE OR DELETE ON bar_archives FOR EACH ROW EXECUTE FUNCTION bar_frozen()",
    "CREATE TRIGGER bar_heads_guard BEFORE UPDATE OR DELETE ON bar_heads FOR EACH ROW EXECUTE FUNCTION bar_head_guard()",
]

PG_DROP = [
    f"DROP TRIGGER IF EXISTS {t} ON {table}"
    for t, table in [
        ("bar_lines_insert_guard", "bar_sale_lines"), ("bar_lines_advance_head", "bar_sale_lines"),
        ("bar_lines_frozen", "bar_sale_lines"), ("bar_lines_no_truncate", "bar_sale_lines"),
        ("bar_claims_frozen", "bar_batch_lines"), ("bar_closings_insert_guard", "bar_closings"),
        ("bar_closings_advance_head", "bar_closings"), ("bar_closings_frozen", "bar_closings"),
        ("bar_closings_no_truncate", "bar_closings"), ("bar_archives_insert_guard", "bar_archives"),
        ("bar_archives_advance_head", "bar_archives"), ("bar_archives_frozen", "bar_archives"),
        ("bar_heads_guard", "bar_heads"),
    ]
] + [
    f"DROP FUNCTION IF EXISTS {f}()"
    for f in ("bar_line_insert_guard", "bar_line_advance_head", "bar_frozen", "bar_closing_insert_guard",
              "bar_closing_advance_head", "bar_archive_insert_guard", "bar_archive_advance_head", "bar_head_guard")
]


def _raise(message: str) -> str:
    return f"SELECT RAISE(ABORT, '{message}')"


FROZEN = "bar: rows are never changed or deleted; record a cancelling line instead"

SQLITE = [
    f"""CREATE TRIGGER bar_lines_insert_guard BEFORE INSERT ON bar_sale_lines
BEGIN
  {_raise("bar: site has no till")}
    WHERE NOT EXISTS (SELECT 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {_raise("bar: sale line breaks the gap-free sequence")}
    WHERE NEW.seq <> (SELECT last_seq + 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {_raise("bar: sale line is not chained to the previous line")}
    WHERE NEW.prev_hash <> (SELECT last_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {_raise("bar: the day is closed")}
    WHERE NEW.day <= (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END""",
    """CREATE TRIGGER bar_lines_advance_head AFTER INSERT ON bar_sale_lines
BEGIN
  UPDATE bar_heads SET last_seq = NEW.seq, last_hash = NEW.hash WHERE site_id = NEW.site_id;
END""",
    f"CREATE TRIGGER bar_lines_no_update BEFORE UPDATE ON bar_sale_lines BEGIN {_raise(FROZEN)}; END",
    f"CREATE TRIGGER bar_lines_no_delete BEFORE DELETE ON bar_sale_lines BEGIN {_raise(FROZEN)}; END",
    f"CREATE TRIGGER bar_claims_no_update BEFORE UPDATE ON bar_batch_lines BEGIN {_raise(FROZEN)}; END",
    f"CREATE TRIGGER bar_claims_no_delete BEFORE DELETE ON bar_batch_lines BEGIN {_raise(FROZEN)}; END",
    f"""CREATE TRIGGER bar_closings_insert_guard BEFORE INSERT ON bar_closings
BEGIN
  {_raise("bar: closing is not chained to the previous closing")}
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {_raise("bar: the day is already closed")}
    WHERE NEW.kind = 'day' AND NEW.end_date <= (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END""",
    """CREATE TRIGGER bar_closings_advance_head AFTER INSERT ON bar_closings
BEGIN
  UPDATE bar_heads SET last_closing_hash = NEW.hash,
    closed_through = CASE WHEN NEW.kind = 'day' THEN NEW.end_date ELSE closed_through END
  WHERE site_id = NEW.site_id;
END""",
    f"CREATE TRIGGER bar_closings_no_update BEFORE UPDATE ON bar_closings BEGIN {_raise(FROZEN)}; END",
    f"CREATE TRIGGER bar_closings_no_delete BEFORE DELETE ON bar_closings BEGIN {_raise(FROZEN)}; END",
    f"""CREATE TRIGGER bar_archives_insert_guard BEFORE INSERT ON bar_archives
BEGIN
  {_raise("bar: archive is not chained to the previous archive")}
    WHERE NEW.prev_hash IS NOT (SELECT last_archive_hash FROM bar_heads WHERE site_id = NEW.site_id);
END""",
    """CREATE TRIGGER bar_archives_advance_head AFTER INSERT ON bar_archives
BEGIN
  UPDATE bar_heads SET last_archive_hash = NEW.hash WHERE site_id = NEW.site_id;
END""",
    f"CREATE TRIGGER bar_archives_no_update BEFORE UPDATE ON bar_archives BEGIN {_raise(FROZEN)}; END",
    f"CREATE TRIGGER bar_archives_no_delete BEFORE DELETE ON bar_archives BEGIN {_raise(FROZEN)}; END",
    f"""CREATE TRIGGER bar_heads_guard BEFORE UPDATE ON bar_heads
WHEN NEW.last_seq NOT IN (OLD.last_seq, OLD.last_seq + 1)
  OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))
BEGIN {_raise("bar: a till head only moves forward")}; END""",
    f"CREATE TRIGGER bar_heads_no_delete BEFORE DELETE ON bar_heads BEGIN {_raise('bar: a till head cannot be deleted')}; END",
]

SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "bar_lines_insert_guard", "bar_lines_advance_head", "bar_lines_no_update", "bar_lines_no_delete",
        "bar_claims_no_update", "bar_claims_no_delete", "bar_closings_insert_guard", "bar_closings_advance_head",
        "bar_closings_no_update", "bar_closings_no_delete", "bar_archives_insert_guard", "bar_archives_advance_head",
        "bar_archives_no_update", "bar_archives_no_delete", "bar_heads_guard", "bar_heads_no_delete",
    )
]


def statements(dialect: str, *, drop: bool = False) -> list[str]:
    if dialect == "postgresql":
        return PG_DROP if drop else PG
    return SQLITE_DROP if drop else SQLITE


revision = '0006'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('bar_archives',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=120), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('line_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_archives_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_archives_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_archives')),
    sa.UniqueConstraint('site_id', 'period', name=op.f('uq_bar_archives_site_id_period'))
    )
    op.create_table('bar_closings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=5), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('first_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('line_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cancel_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('totals', sa.Text(), nullable=False),
    sa.Column('by_mode', sa.Text(), nullable=False),
    sa.Column('cancellations', sa.Text(), nullable=False),
    sa.Column('period_total', sa.Text(), nullable=False),
    sa.Column('fiscal_year_total', sa.Text(), nullable=False),
    sa.Column('grand_total', sa.Text(), nullable=False),
    sa.Column('entry_key', sa.String(length=200), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('day', 'month', 'year')", name=op.f('ck_bar_closings_kind')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_closings_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_closings_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_closings')),
    sa.UniqueConstraint('site_id', 'kind', 'period', name=op.f('uq_bar_closings_site_id_kind_period'))
    )
    op.create_table('bar_heads',
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('last_closing_hash', sa.String(length=64), nullable=False),
    sa.Column('last_archive_hash', sa.String(length=64), nullable=False),
    sa.Column('closed_through', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_heads_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_heads_site_id_sites')),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_bar_heads'))
    )
    op.create_table('bar_products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('price', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('price > 0', name=op.f('ck_bar_products_price_positive')),
    sa.CheckConstraint('vat_rate IN (55, 100, 200)', name=op.f('ck_bar_products_vat_rate')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_products_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_products')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_bar_products_site_id_name'))
    )
    with op.batch_alter_table('bar_products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bar_products_site_id'), ['site_id'], unique=False)

    op.create_table('bar_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('line_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=True),
    sa.Column('stripe_invoice_item_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('billed_at', sa.DateTime(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('ready', 'billed', 'due', 'paid', 'empty')", name=op.f('ck_bar_batches_status')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_bar_batches_amount_not_negative')),
    sa.ForeignKeyConstraint(['member_id'], ['users.id'], name=op.f('fk_bar_batches_member_id_users')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_batches_org_id_organisations')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_bar_batches_payment_id_payments')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_batches_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_batches')),
    sa.UniqueConstraint('site_id', 'member_id', 'key', name=op.f('uq_bar_batches_site_id_member_id_key')),
    sa.UniqueConstraint('stripe_invoice_item_id', name=op.f('uq_bar_batches_stripe_invoice_item_id')),
    sa.UniqueConstraint('stripe_payment_intent_id', name=op.f('uq_bar_batches_stripe_payment_intent_id'))
    )
    with op.batch_alter_table('bar_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bar_batches_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_bar_batches_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_bar_batches_stripe_invoice_id'), ['stripe_invoice_id'], unique=False)

    op.create_table('bar_tickets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'paid', 'cancelled')", name=op.f('ck_bar_tickets_status')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_tickets_org_id_organisations')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_bar_tickets_payment_id_payments')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_tickets_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_tickets')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_bar_tickets_payment_id'))
    )
    with op.batch_alter_table('bar_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bar_tickets_site_id'), ['site_id'], unique=False)

    op.create_table('bar_sale_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=6), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('unit_price', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('quantity', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vat_rate', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cancels_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("(kind = 'sale' AND cancels_id IS NULL AND quantity > 0) OR (kind = 'cancel' AND cancels_id IS NOT NULL AND quantity < 0 AND length(reason) > 0)", name=op.f('ck_bar_sale_lines_shape')),
    sa.CheckConstraint("kind IN ('sale', 'cancel')", name=op.f('ck_bar_sale_lines_kind')),
    sa.CheckConstraint('(member_id IS NULL) <> (ticket_id IS NULL)', name=op.f('ck_bar_sale_lines_one_holder')),
    sa.CheckConstraint('amount = unit_price * quantity', name=op.f('ck_bar_sale_lines_amount')),
    sa.CheckConstraint('unit_price > 0', name=op.f('ck_bar_sale_lines_unit_price_positive')),
    sa.CheckConstraint('vat_rate IN (55, 100, 200)', name=op.f('ck_bar_sale_lines_vat_rate')),
    sa.ForeignKeyConstraint(['cancels_id'], ['bar_sale_lines.id'], name=op.f('fk_bar_sale_lines_cancels_id_bar_sale_lines')),
    sa.ForeignKeyConstraint(['member_id'], ['users.id'], name=op.f('fk_bar_sale_lines_member_id_users')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_bar_sale_lines_org_id_organisations')),
    sa.ForeignKeyConstraint(['product_id'], ['bar_products.id'], name=op.f('fk_bar_sale_lines_product_id_bar_products')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_bar_sale_lines_site_id_sites')),
    sa.ForeignKeyConstraint(['ticket_id'], ['bar_tickets.id'], name=op.f('fk_bar_sale_lines_ticket_id_bar_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bar_sale_lines')),
    sa.UniqueConstraint('cancels_id', name=op.f('uq_bar_sale_lines_cancels_id')),
    sa.UniqueConstraint('site_id', 'seq', name=op.f('uq_bar_sale_lines_site_id_seq'))
    )
    with op.batch_alter_table('bar_sale_lines', schema=None) as batch_op:
        batch_op.create_index('ix_bar_sale_lines_site_day', ['site_id', 'day'], unique=False)
        batch_op.create_index('ix_bar_sale_lines_site_member', ['site_id', 'member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bar_sale_lines_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('bar_batch_lines',
    sa.Column('sale_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['bar_batches.id'], name=op.f('fk_bar_batch_lines_batch_id_bar_batches')),
    sa.ForeignKeyConstraint(['sale_line_id'], ['bar_sale_lines.id'], name=op.f('fk_bar_batch_lines_sale_line_id_bar_sale_lines')),
    sa.PrimaryKeyConstraint('sale_line_id', name=op.f('pk_bar_batch_lines'))
    )
    with op.batch_alter_table('bar_batch_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bar_batch_lines_batch_id'), ['batch_id'], unique=False)

    # ### end Alembic commands ###
    for sql in statements(op.get_bind().dialect.name):
        op.execute(sql)


def downgrade() -> None:
    for sql in statements(op.get_bind().dialect.name, drop=True):
        op.execute(sql)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('bar_batch_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bar_batch_lines_batch_id'))

    op.drop_table('bar_batch_lines')
    with op.batch_alter_table('bar_sale_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bar_sale_lines_ticket_id'))
        batch_op.drop_index('ix_bar_sale_lines_site_member')
        batch_op.drop_index('ix_bar_sale_lines_site_day')

    op.drop_table('bar_sale_lines')
    with op.batch_alter_table('bar_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bar_tickets_site_id'))

    op.drop_table('bar_tickets')
    with op.batch_alter_table('bar_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bar_batches_stripe_invoice_id'))
        batch_op.drop_index('ix_bar_batches_status')
        batch_op.drop_index(batch_op.f('ix_bar_batches_member_id'))

    op.drop_table('bar_batches')
    with op.batch_alter_table('bar_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bar_products_site_id'))

    op.drop_table('bar_products')
    op.drop_table('bar_heads')
    op.drop_table('bar_closings')
    op.drop_table('bar_archives')
    # ### end Alembic commands ###

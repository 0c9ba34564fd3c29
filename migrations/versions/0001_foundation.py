"""foundation: organisations, ledger, users, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 09:34:25.818379
"""

from alembic import op
import sqlalchemy as sa

from funding.migrate import sql_function

# Database-side guards of the ledger (see funding/ledger/models.py): they refuse an
# unbalanced validation, a gap in numbering, a broken chain link, a post into a closed
# period, and any change to a validated entry, its postings or a closing.


PG = [
    sql_function("ledger_entry_insert_guard", 1),
    sql_function("ledger_entry_update_guard", 1),
    sql_function("ledger_entry_advance_head", 1),
    sql_function("ledger_entry_delete_guard", 1),
    sql_function("ledger_posting_guard", 1),
    sql_function("ledger_frozen", 1),
    sql_function("ledger_closing_insert_guard", 1),
    sql_function("ledger_closing_advance_head", 1),
    sql_function("ledger_head_guard", 1),
    "CREATE TRIGGER entries_insert_guard BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION ledger_entry_insert_guard()",
    "CREATE TRIGGER entries_update_guard BEFORE UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_entry_update_guard()",
    "CREATE TRIGGER entries_advance_head AFTER UPDATE ON entries FOR EACH ROW"
    " WHEN (OLD.number IS NULL AND NEW.number IS NOT NULL) EXECUTE FUNCTION ledger_entry_advance_head()",
    "CREATE TRIGGER entries_delete_guard BEFORE DELETE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_entry_delete_guard()",
    "CREATE TRIGGER postings_guard BEFORE INSERT OR UPDATE OR DELETE ON postings FOR EACH ROW EXECUTE FUNCTION ledger_posting_guard()",
    "CREATE TRIGGER closings_insert_guard BEFORE INSERT ON closings FOR EACH ROW EXECUTE FUNCTION ledger_closing_insert_guard()",
    "CREATE TRIGGER closings_advance_head AFTER INSERT ON closings FOR EACH ROW EXECUTE FUNCTION ledger_closing_advance_head()",
    "CREATE TRIGGER closings_frozen BEFORE UPDATE OR DELETE ON closings FOR EACH ROW EXECUTE FUNCTION ledger_frozen()",
    "CREATE TRIGGER ledger_heads_guard BEFORE UPDATE OR DELETE ON ledger_heads FOR EACH ROW EXECUTE FUNCTION ledger_head_guard()",
    "CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries EXECUTE FUNCTION ledger_frozen()",
    "CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings EXECUTE FUNCTION ledger_frozen()",
    "CREATE TRIGGER closings_no_truncate BEFORE TRUNCATE ON closings EXECUTE FUNCTION ledger_frozen()",
]

PG_DROP = [
    "DROP TRIGGER IF EXISTS {t} ON {table}".format(t=t, table=table)
    for t, table in [
        ("entries_insert_guard", "entries"), ("entries_update_guard", "entries"),
        ("entries_advance_head", "entries"), ("entries_delete_guard", "entries"),
        ("postings_guard", "postings"), ("closings_insert_guard", "closings"),
        ("closings_advance_head", "closings"), ("closings_frozen", "closings"),
        ("ledger_heads_guard", "ledger_heads"), ("entries_no_truncate", "entries"),
        ("postings_no_truncate", "postings"), ("closings_no_truncate", "closings"),
    ]
] + [
    f"DROP FUNCTION IF EXISTS {f}()"
    for f in (
        "ledger_entry_insert_guard", "ledger_entry_update_guard", "ledger_entry_advance_head",
        "ledger_entry_delete_guard", "ledger_posting_guard", "ledger_frozen",
        "ledger_closing_insert_guard", "ledger_closing_advance_head", "ledger_head_guard",
    )
]


def _raise(message: str) -> str:
    return f"SELECT RAISE(ABORT, '{message}')"


SQLITE = [
    f"""CREATE TRIGGER entries_insert_guard BEFORE INSERT ON entries
WHEN NEW.number IS NOT NULL OR NEW.hash IS NOT NULL
BEGIN {_raise("ledger: entries are inserted as drafts and validated afterwards")}; END""",
    f"""CREATE TRIGGER entries_frozen BEFORE UPDATE ON entries WHEN OLD.number IS NOT NULL
BEGIN {_raise("ledger: a validated entry cannot be modified; post a reversing entry instead")}; END""",
    f"""CREATE TRIGGER entries_validate BEFORE UPDATE ON entries
WHEN OLD.number IS NULL AND NEW.number IS NOT NULL
BEGIN
  {_raise("ledger: organisation has no ledger")}
    WHERE NOT EXISTS (SELECT 1 FROM ledger_heads WHERE org_id = NEW.org_id);
  {_raise("ledger: entry number breaks the gap-free sequence")}
    WHERE NEW.number <> (SELECT last_number + 1 FROM ledger_heads WHERE org_id = NEW.org_id);
  {_raise("ledger: entry is not chained to the previous entry")}
    WHERE NEW.prev_hash <> (SELECT last_hash FROM ledger_heads WHERE org_id = NEW.org_id);
  {_raise("ledger: the period is closed; date the entry after it")}
    WHERE NEW.entry_date <= (SELECT closed_through FROM ledger_heads WHERE org_id = NEW.org_id);
  {_raise("ledger: an entry cannot be validated before its date")}
    WHERE NEW.entry_date > date(NEW.validated_at);
  {_raise("ledger: an entry needs at least two postings")}
    WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
  {_raise("ledger: unbalanced entry (debits and credits differ)")}
    WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0);
END""",
    """CREATE TRIGGER entries_advance_head AFTER UPDATE ON entries
WHEN OLD.number IS NULL AND NEW.number IS NOT NULL
BEGIN
  UPDATE ledger_heads SET last_number = NEW.number, last_hash = NEW.hash WHERE org_id = NEW.org_id;
END""",
    f"""CREATE TRIGGER entries_delete_guard BEFORE DELETE ON entries WHEN OLD.number IS NOT NULL
BEGIN {_raise("ledger: a validated entry cannot be deleted; post a reversing entry instead")}; END""",
    f"""CREATE TRIGGER postings_insert_guard BEFORE INSERT ON postings
WHEN (SELECT number FROM entries WHERE id = NEW.entry_id) IS NOT NULL
BEGIN {_raise("ledger: postings of a validated entry cannot be added, changed or deleted")}; END""",
    f"""CREATE TRIGGER postings_update_guard BEFORE UPDATE ON postings
WHEN (SELECT number FROM entries WHERE id = OLD.entry_id) IS NOT NULL
  OR (SELECT number FROM entries WHERE id = NEW.entry_id) IS NOT NULL
BEGIN {_raise("ledger: postings of a validated entry cannot be added, changed or deleted")}; END""",
    f"""CREATE TRIGGER postings_delete_guard BEFORE DELETE ON postings
WHEN (SELECT number FROM entries WHERE id = OLD.entry_id) IS NOT NULL
BEGIN {_raise("ledger: postings of a validated entry cannot be added, changed or deleted")}; END""",
    f"""CREATE TRIGGER closings_insert_guard BEFORE INSERT ON closings
BEGIN
  {_raise("ledger: closing is not chained to the previous closing")}
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM ledger_heads WHERE org_id = NEW.org_id);
  {_raise("ledger: closing does not follow the last closed period")}
    WHERE NEW.start_date <> date((SELECT closed_through FROM ledger_heads WHERE org_id = NEW.org_id), '+1 day');
END""",
    """CREATE TRIGGER closings_advance_head AFTER INSERT ON closings
BEGIN
  UPDATE ledger_heads SET closed_through = NEW.end_date, last_closing_hash = NEW.hash WHERE org_id = NEW.org_id;
END""",
    f"""CREATE TRIGGER closings_frozen_update BEFORE UPDATE ON closings
BEGIN {_raise("ledger: closings rows are append-only")}; END""",
    f"""CREATE TRIGGER closings_frozen_delete BEFORE DELETE ON closings
BEGIN {_raise("ledger: closings rows are append-only")}; END""",
    f"""CREATE TRIGGER ledger_heads_guard BEFORE UPDATE ON ledger_heads
WHEN NEW.last_number NOT IN (OLD.last_number, OLD.last_number + 1)
  OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))
BEGIN {_raise("ledger: a ledger head only moves forward")}; END""",
    f"""CREATE TRIGGER ledger_heads_no_delete BEFORE DELETE ON ledger_heads
BEGIN {_raise("ledger: a ledger head cannot be deleted")}; END""",
]

SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "entries_insert_guard", "entries_frozen", "entries_validate", "entries_advance_head",
        "entries_delete_guard", "postings_insert_guard", "postings_update_guard", "postings_delete_guard",
        "closings_insert_guard", "closings_advance_head", "closings_frozen_update", "closings_frozen_delete",
        "ledger_heads_guard", "ledger_heads_no_delete",
    )
]


def statements(dialect: str, *, drop: bool = False) -> list[str]:
    if dialect == "postgresql":
        return PG_DROP if drop else PG
    return SQLITE_DROP if drop else SQLITE


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('journals',
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_journals'))
    )
    op.create_table('organisations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=False),
    sa.Column('rna', sa.String(length=10), nullable=True),
    sa.Column('vat_number', sa.String(length=20), nullable=True),
    sa.Column('vat_liable', sa.Boolean(), nullable=False),
    sa.Column('general_interest', sa.Boolean(), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('fiscal_year_start_month', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('fiscal_year_start_month BETWEEN 1 AND 12', name=op.f('ck_organisations_fiscal_year_start')),
    sa.CheckConstraint('length(siren) = 9', name=op.f('ck_organisations_siren_length')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('siren', name=op.f('uq_organisations_siren'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('length(number) >= 3', name=op.f('ck_accounts_number_length')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_accounts_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('org_id', 'number', name=op.f('uq_accounts_org_id_number'))
    )
    op.create_table('aux_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_aux_accounts_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aux_accounts')),
    sa.UniqueConstraint('org_id', 'code', name=op.f('uq_aux_accounts_org_id_code'))
    )
    op.create_table('closings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('first_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('entry_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('totals', sa.Text(), nullable=False),
    sa.Column('period_total', sa.Text(), nullable=False),
    sa.Column('fiscal_year_total', sa.Text(), nullable=False),
    sa.Column('grand_total', sa.Text(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_closings_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closings')),
    sa.UniqueConstraint('org_id', 'kind', 'period', name=op.f('uq_closings_org_id_kind_period'))
    )
    op.create_table('ledger_heads',
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('closed_through', sa.Date(), nullable=True),
    sa.Column('last_closing_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_ledger_heads_org_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_ledger_heads'))
    )
    op.create_table('sites',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slug', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('town', sa.String(length=120), nullable=False),
    sa.Column('is_central', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_sites_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('id', 'org_id', name=op.f('uq_sites_id_org_id')),
    sa.UniqueConstraint('slug', name=op.f('uq_sites_slug'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sites_org_id'), ['org_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('locale', sa.String(length=5), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'staff', 'accountant', 'member')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_users_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('emails',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('to_addr', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'unknown')", name=op.f('ck_emails_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_emails_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emails')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_emails_dedupe_key'))
    )
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.create_index('ix_emails_status_next', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_emails_user_id'), ['user_id'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('funder_name', sa.String(length=200), nullable=False),
    sa.Column('funder_siret', sa.String(length=14), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('convention_date', sa.Date(), nullable=False),
    sa.Column('object', sa.String(length=256), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('conditions', sa.String(length=20), nullable=False),
    sa.Column('payment_dates', sa.String(length=60), nullable=False),
    sa.Column('scheme', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_grants_amount_positive')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_grants_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_grants_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants')),
    sa.UniqueConstraint('org_id', 'reference', name=op.f('uq_grants_org_id_reference'))
    )
    op.create_table('login_tokens',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_tokens'))
    )
    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('journal_code', sa.String(length=4), nullable=False),
    sa.Column('number', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('entry_date', sa.Date(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('piece_ref', sa.String(length=100), nullable=False),
    sa.Column('piece_date', sa.Date(), nullable=False),
    sa.Column('funding_source', sa.String(length=16), nullable=False),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_key', sa.String(length=200), nullable=True),
    sa.Column('grant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('validated_at', sa.DateTime(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.CheckConstraint("funding_source IN ('public', 'private', 'crowdfunding', 'self', 'internal')", name=op.f('ck_entries_funding_source')),
    sa.CheckConstraint('(number IS NULL AND hash IS NULL AND validated_at IS NULL) OR (number IS NOT NULL AND hash IS NOT NULL AND prev_hash IS NOT NULL AND validated_at IS NOT NULL)', name=op.f('ck_entries_validated_fields')),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_entries_grant_id_grants')),
    sa.ForeignKeyConstraint(['journal_code'], ['journals.code'], name=op.f('fk_entries_journal_code_journals')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_entries_org_id_organisations')),
    sa.ForeignKeyConstraint(['reverses_id'], ['entries.id'], name=op.f('fk_entries_reverses_id_entries')),
    sa.ForeignKeyConstraint(['site_id', 'org_id'], ['sites.id', 'sites.org_id'], name=op.f('fk_entries_site_id_org_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries')),
    sa.UniqueConstraint('id', 'org_id', name=op.f('uq_entries_id_org_id')),
    sa.UniqueConstraint('org_id', 'number', name=op.f('uq_entries_org_id_number')),
    sa.UniqueConstraint('org_id', 'source_key', name=op.f('uq_entries_org_id_source_key')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_entries_reverses_id'))
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index('ix_entries_org_date', ['org_id', 'entry_date'], unique=False)

    op.create_table('postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.SmallInteger(), nullable=False),
    sa.Column('account_number', sa.String(length=20), nullable=False),
    sa.Column('aux_code', sa.String(length=30), nullable=True),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_postings_amount_nonzero')),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_postings_currency_code')),
    sa.ForeignKeyConstraint(['entry_id', 'org_id'], ['entries.id', 'entries.org_id'], name=op.f('fk_postings_entry_id_org_id_entries')),
    sa.ForeignKeyConstraint(['org_id', 'account_number'], ['accounts.org_id', 'accounts.number'], name=op.f('fk_postings_org_id_account_number_accounts')),
    sa.ForeignKeyConstraint(['org_id', 'aux_code'], ['aux_accounts.org_id', 'aux_accounts.code'], name=op.f('fk_postings_org_id_aux_code_aux_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_postings')),
    sa.UniqueConstraint('entry_id', 'line_no', name=op.f('uq_postings_entry_id_line_no'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_org_account', ['org_id', 'account_number'], unique=False)

    # ### end Alembic commands ###

    op.bulk_insert(
        sa.table("journals", sa.column("code", sa.String), sa.column("label", sa.String)),
        [
            {"code": "ST", "label": "Stripe"},
            {"code": "VT", "label": "Ventes"},
            {"code": "CA", "label": "Caisse (bar)"},
            {"code": "BQ", "label": "Banque"},
            {"code": "OD", "label": "Opérations diverses"},
            {"code": "AN", "label": "À-nouveaux"},
        ],
    )
    for sql in statements(op.get_bind().dialect.name):
        op.execute(sql)


def downgrade() -> None:
    for sql in statements(op.get_bind().dialect.name, drop=True):
        op.execute(sql)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_org_account')

    op.drop_table('postings')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_org_date')
        batch_op.drop_index(batch_op.f('ix_entries_grant_id'))

    op.drop_table('entries')
    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_tokens_user_id'))

    op.drop_table('login_tokens')
    op.drop_table('grants')
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emails_user_id'))
        batch_op.drop_index('ix_emails_status_next')

    op.drop_table('emails')
    op.drop_table('users')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_org_id'))

    op.drop_table('sites')
    op.drop_table('ledger_heads')
    op.drop_table('closings')
    op.drop_table('aux_accounts')
    op.drop_table('accounts')
    op.drop_table('organisations')
    op.drop_table('journals')
    # ### end Alembic commands ###

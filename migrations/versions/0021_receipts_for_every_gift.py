"""receipts for every gift: a one-off gift on /soutenir gets its tax receipt too; donors' address and company

A tax receipt is now for a campaign pledge or for a one-off payment (a gift on /soutenir), exactly
one of the two, in the same gap-free series per organisation and year. A receipt names the
company that gave (its SIREN: the receipt for companies, article 238 bis) or the person. Pledges
and payments keep what the donor gave for the receipt: the company and its SIREN, and on a
payment the postal address (a pledge has had one since 0004) and the donor's signed link to
their receipt (a pledge has its own page).
The update guard covers the new columns (an issued receipt never changes, only voided once).
SQLite changes a NOT NULL by rebuilding the table, and makes its triggers again (as 0016).
"""

import sqlalchemy as sa
from alembic import op

from funding import ddl

revision = "0021"
down_revision = "0023"

NEW_COLUMNS = ("org_id", "year", "number", "pledge_id", "revision", "campaign_id", "donor_name", "donor_address",
               "donor_email", "amount", "currency", "paid_on", "method", "issued_at", "payment_id", "donor_siren")


def _pg_update_guard(columns: tuple[str, ...]) -> str:
    new = ", ".join(f"NEW.{c}" for c in columns)
    old = ", ".join(f"OLD.{c}" for c in columns)
    return f"""CREATE OR REPLACE FUNCTION tax_receipt_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.voided_at IS NOT NULL OR ({new})
      IS DISTINCT FROM ({old}) THEN
    RAISE EXCEPTION 'receipts: an issued tax receipt cannot be changed, only voided once' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$"""


def _sqlite_update_guard(columns: tuple[str, ...]) -> str:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    return f"""CREATE TRIGGER tax_receipts_update_guard BEFORE UPDATE ON tax_receipts
WHEN OLD.voided_at IS NOT NULL OR {changed}
BEGIN {ddl.abort("receipts: an issued tax receipt cannot be changed, only voided once")}; END"""


def _sqlite_triggers(update_guard: str | None) -> list[str]:
    """0004's triggers of tax_receipts, with this update guard (None: 0004's own)."""
    made = [sql for sql in ddl.revision_module("0004").SQLITE if "ON tax_receipts" in sql]
    return [update_guard if update_guard and "tax_receipts_update_guard" in sql else sql for sql in made]


def _pg_update_guard_0004() -> str:
    (sql,) = [sql for sql in ddl.revision_module("0004").FUNCTIONS if "tax_receipt_update_guard" in sql]
    return sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    for table in ("campaign_pledges", "payments"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("company_name", sa.String(length=200), nullable=True))
            batch_op.add_column(sa.Column("company_siren", sa.String(length=9), nullable=True))
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("donor_address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("donor_link", sa.String(length=300), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with ddl.sqlite_rebuild("tax_receipts", _sqlite_triggers(_sqlite_update_guard(NEW_COLUMNS))) as batch_op:
            _alter(batch_op)
    else:
        with op.batch_alter_table("tax_receipts") as batch_op:
            _alter(batch_op)
        op.execute(_pg_update_guard(NEW_COLUMNS))


def _alter(batch_op) -> None:
    batch_op.add_column(ddl.ref("payment_id", "payments", null=True))
    batch_op.add_column(sa.Column("donor_siren", sa.String(length=9), nullable=True))
    batch_op.alter_column("pledge_id", existing_type=ddl.BIGINT, nullable=True)
    batch_op.alter_column("campaign_id", existing_type=ddl.BIGINT, nullable=True)
    batch_op.create_foreign_key(op.f("fk_tax_receipts_payment_id_payments"), "payments", ["payment_id"], ["id"])
    batch_op.create_unique_constraint(op.f("uq_tax_receipts_payment_id_revision"), ["payment_id", "revision"])
    batch_op.create_check_constraint(op.f("ck_tax_receipts_one_gift"),
                                     "(pledge_id IS NULL AND payment_id IS NOT NULL) OR (pledge_id IS NOT NULL AND payment_id IS NULL)")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with ddl.sqlite_rebuild("tax_receipts", _sqlite_triggers(None)) as batch_op:
            _unalter(batch_op)
    else:
        op.execute(_pg_update_guard_0004())
        with op.batch_alter_table("tax_receipts") as batch_op:
            _unalter(batch_op)
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("donor_link")
        batch_op.drop_column("donor_address")
    for table in ("payments", "campaign_pledges"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("company_siren")
            batch_op.drop_column("company_name")


def _unalter(batch_op) -> None:
    batch_op.drop_constraint(op.f("ck_tax_receipts_one_gift"), type_="check")
    batch_op.drop_constraint(op.f("uq_tax_receipts_payment_id_revision"), type_="unique")
    batch_op.drop_constraint(op.f("fk_tax_receipts_payment_id_payments"), type_="foreignkey")
    batch_op.alter_column("campaign_id", existing_type=ddl.BIGINT, nullable=False)
    batch_op.alter_column("pledge_id", existing_type=ddl.BIGINT, nullable=False)
    batch_op.drop_column("donor_siren")
    batch_op.drop_column("payment_id")

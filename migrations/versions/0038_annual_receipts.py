"""annual tax receipts: one per donor and year for their recurring gifts

A tax receipt is now for a campaign pledge, a one-off payment, or a donor's year of recurring
gifts (``annual_year``: the year the instalments were paid; the receipt's own ``year`` is the
year of its series, when it is issued), exactly one of the three, in the same gap-free series.
One receipt in force per donor, organisation and year of gifts (``revision`` as for the others).
The update guard covers the new column. SQLite rebuilds the table and makes its triggers again (as 0021).
"""

import sqlalchemy as sa
from alembic import op

from funding import ddl

revision = "0038"
down_revision = "0037"

COLUMNS = ("org_id", "year", "number", "pledge_id", "revision", "campaign_id", "donor_name", "donor_address",
           "donor_email", "amount", "currency", "paid_on", "method", "issued_at", "payment_id", "donor_siren")
NEW_COLUMNS = (*COLUMNS, "annual_year")
ONE_GIFT_BEFORE = "(pledge_id IS NULL AND payment_id IS NOT NULL) OR (pledge_id IS NOT NULL AND payment_id IS NULL)"
ONE_GIFT = ("(pledge_id IS NOT NULL AND payment_id IS NULL AND annual_year IS NULL) "
            "OR (pledge_id IS NULL AND payment_id IS NOT NULL AND annual_year IS NULL) "
            "OR (pledge_id IS NULL AND payment_id IS NULL AND annual_year IS NOT NULL)")


def _guards():
    return ddl.revision_module("0021")


def upgrade() -> None:
    before = _guards()
    if op.get_bind().dialect.name == "sqlite":
        with ddl.sqlite_rebuild("tax_receipts", before._sqlite_triggers(before._sqlite_update_guard(NEW_COLUMNS))) as batch_op:
            _alter(batch_op)
    else:
        with op.batch_alter_table("tax_receipts") as batch_op:
            _alter(batch_op)
        op.execute(before._pg_update_guard(NEW_COLUMNS))


def _alter(batch_op) -> None:
    batch_op.add_column(sa.Column("annual_year", ddl.BIGINT, nullable=True))
    batch_op.drop_constraint(op.f("ck_tax_receipts_one_gift"), type_="check")
    batch_op.create_check_constraint(op.f("ck_tax_receipts_one_gift"), ONE_GIFT)
    batch_op.create_unique_constraint(op.f("uq_tax_receipts_org_id_donor_email_annual_year_revision"),
                                      ["org_id", "donor_email", "annual_year", "revision"])


def downgrade() -> None:
    before = _guards()
    if op.get_bind().dialect.name == "sqlite":
        with ddl.sqlite_rebuild("tax_receipts", before._sqlite_triggers(before._sqlite_update_guard(COLUMNS))) as batch_op:
            _unalter(batch_op)
    else:
        op.execute(before._pg_update_guard(COLUMNS))
        with op.batch_alter_table("tax_receipts") as batch_op:
            _unalter(batch_op)


def _unalter(batch_op) -> None:
    batch_op.drop_constraint(op.f("uq_tax_receipts_org_id_donor_email_annual_year_revision"), type_="unique")
    batch_op.drop_constraint(op.f("ck_tax_receipts_one_gift"), type_="check")
    batch_op.create_check_constraint(op.f("ck_tax_receipts_one_gift"), ONE_GIFT_BEFORE)
    batch_op.drop_column("annual_year")

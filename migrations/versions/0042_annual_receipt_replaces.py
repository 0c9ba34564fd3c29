"""annual receipts replace the year's one-off receipts; what Stripe took back from a one-off gift

A donor's annual receipt sums their recurring and one-off gifts of the year (issue 18): the one-off
receipts it takes in are voided with it, ``replaced_by_id`` naming the annual receipt that now
states them (the donor declares one receipt). Set only when the receipt is voided (the update
guard refuses any change after that). ``payments.taken_back``: what refunds and a lost dispute took
back from a one-off gift (``amount_refunded`` mirrors the charge's refunds only), so that the
annual sum counts what remains given whichever receipt states it. SQLite rebuilds tax_receipts and
makes its triggers again (as 0038), with 0038's guard unchanged.
"""

import sqlalchemy as sa
from alembic import op

from funding import ddl

revision = "0042"
down_revision = "0041"


def _triggers():
    before = ddl.revision_module("0021")
    return before._sqlite_triggers(before._sqlite_update_guard(ddl.revision_module("0038").NEW_COLUMNS))


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("taken_back", ddl.BIGINT, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "sqlite":
        with ddl.sqlite_rebuild("tax_receipts", _triggers()) as batch_op:
            _alter(batch_op)
    else:
        with op.batch_alter_table("tax_receipts") as batch_op:
            _alter(batch_op)


def _alter(batch_op) -> None:
    batch_op.add_column(sa.Column("replaced_by_id", ddl.BIGINT, nullable=True))
    batch_op.create_foreign_key(op.f("fk_tax_receipts_replaced_by_id_tax_receipts"), "tax_receipts", ["replaced_by_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with ddl.sqlite_rebuild("tax_receipts", _triggers()) as batch_op:
            _unalter(batch_op)
    else:
        with op.batch_alter_table("tax_receipts") as batch_op:
            _unalter(batch_op)
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("taken_back")


def _unalter(batch_op) -> None:
    batch_op.drop_constraint(op.f("fk_tax_receipts_replaced_by_id_tax_receipts"), type_="foreignkey")
    batch_op.drop_column("replaced_by_id")

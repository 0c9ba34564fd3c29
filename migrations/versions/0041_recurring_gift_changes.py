"""recurring gifts: the donor changes the amount or skips the next instalment (issue 18)

Each change the donor asks for is a row first (its id keys the subscription update at Stripe),
settled when Stripe confirms it. The gift mirrors the new amount from its subscription's price,
and ``collection_resumes_at`` from its ``pause_collection`` (a skipped instalment: collection
paused, invoices voided, until just after that billing date).
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import check, column, create_table, index, ref, string, timestamp

revision = "0041"
down_revision = "0040"


def upgrade() -> None:
    with op.batch_alter_table("recurring_gifts") as batch_op:
        batch_op.add_column(sa.Column("collection_resumes_at", sa.DateTime(), nullable=True))
    create_table("recurring_gift_changes", column("id"), ref("org_id", "organisations"), ref("gift_id", "recurring_gifts"),
                 string("kind", 10), column("amount", null=True), column("previous_amount", null=True),
                 timestamp("instalment_at"), timestamp("resumes_at", null=True), string("status", 10),
                 timestamp("created_at"), timestamp("applied_at", null=True),
                 check("kind", "kind IN ('amount', 'skip')"),
                 check("status", "status IN ('requested', 'applied', 'refused', 'unknown')"),
                 check("amount_positive", "amount IS NULL OR amount > 0"), index("gift_id"))


def downgrade() -> None:
    op.drop_table("recurring_gift_changes")
    with op.batch_alter_table("recurring_gifts") as batch_op:
        batch_op.drop_column("collection_resumes_at")

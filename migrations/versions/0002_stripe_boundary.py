"""Stripe boundary: event inbox, outbound requests, mirrored objects, payments, payouts"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import bigint, boolean, check, column, create_table, drop_tables, index, ref, string, text, timestamp, unique

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_table("stripe_events", string("id", 255), string("type", 120), boolean("livemode"),
                 string("api_version", 40, null=True), bigint("created"), string("object_id", 255, null=True),
                 text("payload"), string("source", 10), string("status", 12), column("attempts"),
                 timestamp("next_attempt_at"), timestamp("lease_until", null=True), text("last_error", null=True),
                 timestamp("received_at"), timestamp("processed_at", null=True),
                 check("status", "status IN ('pending', 'processing', 'processed', 'failed', 'dead')"),
                 index("status", "next_attempt_at", name="ix_stripe_events_due"), index("object_id"), index("type"))
    create_table("stripe_objects", string("id", 255), string("type", 60), string("status", 40, null=True),
                 boolean("livemode"), bigint("version"), text("data"), timestamp("updated_at"), index("type"))
    create_table("stripe_payouts", string("id", 255), column("amount"), string("currency", 3), string("status", 20),
                 bigint("arrival_date", null=True), boolean("reconciled"), column("transactions_net", null=True),
                 column("difference", null=True), text("missing_entries"), timestamp("checked_at", null=True))
    create_table("stripe_requests", column("id"), string("ref", 200), string("resource", 60), column("attempt"),
                 string("idempotency_key", 255), text("params"), string("status", 10),
                 string("stripe_id", 255, null=True), text("error", null=True), timestamp("created_at"),
                 timestamp("updated_at"), check("status", "status IN ('pending', 'succeeded', 'failed', 'unknown')"),
                 unique("idempotency_key"), unique("ref", "resource", "attempt"), index("status"),
                 index("stripe_id"))
    create_table("payments", column("id"), ref("org_id", "organisations"), ref("site_id", "sites"),
                 string("purpose", 40), string("ref", 100, null=True), column("amount"), string("currency", 3),
                 string("description", 200), string("email", 254, null=True), string("name", 200, null=True),
                 string("status", 10), string("checkout_session_id", 255, null=True),
                 string("payment_intent_id", 255, null=True), column("amount_refunded"), text("extra"),
                 timestamp("created_at"), timestamp("paid_at", null=True),
                 check("status", "status IN ('created', 'open', 'paid', 'failed', 'expired', 'unknown')"),
                 check("amount_positive", "amount > 0"), unique("checkout_session_id"), unique("payment_intent_id"))
    with op.batch_alter_table("organisations") as batch_op:
        batch_op.add_column(sa.Column("uses_stripe", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch_op:
        batch_op.drop_column("uses_stripe")
    drop_tables("payments", "stripe_requests", "stripe_payouts", "stripe_objects", "stripe_events")

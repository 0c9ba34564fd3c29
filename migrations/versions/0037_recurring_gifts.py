"""recurring gifts: monthly or yearly gifts through Stripe subscriptions, and their paid instalments

A recurring gift is a subscription of its own Stripe customer; its state is mirrored forwards
only (``version``), and each paid invoice is an instalment, once (unique invoice id); what Stripe took back of it (refunds, a lost dispute) only grows.
"""

from alembic import op

from funding.ddl import bigint, check, column, create_table, index, ref, string, text, timestamp, unique

revision = "0037"
down_revision = "0036"

GIFT_STATUSES = ("created", "open", "unknown", "expired", "incomplete", "incomplete_expired", "trialing", "active",
                 "past_due", "unpaid", "paused", "canceled")


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in GIFT_STATUSES)
    create_table("recurring_gifts", column("id"), ref("org_id", "organisations"), ref("site_id", "sites"), column("amount"),
                 string("currency", 3), string("interval", 5), string("email", 254), string("name", 200),
                 text("donor_address", null=True), string("company_name", 200, null=True), string("company_siren", 9, null=True),
                 string("status", 20), string("checkout_session_id", 255, null=True),
                 string("stripe_subscription_id", 255, null=True), string("stripe_customer_id", 255, null=True),
                 bigint("version"), timestamp("created_at"), timestamp("canceled_at", null=True),
                 check("status", f"status IN ({statuses})"), check("interval", "interval IN ('month', 'year')"),
                 check("amount_positive", "amount > 0"),
                 unique("checkout_session_id"), unique("stripe_subscription_id"), index("email"))
    create_table("recurring_gift_payments", column("id"), ref("org_id", "organisations"), ref("gift_id", "recurring_gifts"),
                 string("stripe_invoice_id", 255), string("payment_intent_id", 255, null=True), column("amount"),
                 string("currency", 3), timestamp("paid_at"), column("amount_refunded"),
                 check("amount_positive", "amount > 0"), check("refunded", "amount_refunded >= 0 AND amount_refunded <= amount"),
                 unique("stripe_invoice_id"), index("gift_id"))


def downgrade() -> None:
    op.drop_table("recurring_gift_payments")
    op.drop_table("recurring_gifts")

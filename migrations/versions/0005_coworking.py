"""Coworking: plans per site and their Stripe prices, members, subscriptions, invoices,
subscription checkouts, passes and pass days
"""

from funding.ddl import (
    bigint,
    boolean,
    check,
    column,
    create_table,
    date,
    drop_tables,
    index,
    ref,
    string,
    text,
    timestamp,
    unique,
)

revision = "0005"
down_revision = "0002"


def upgrade() -> None:
    create_table("coworking_members", column("id"), ref("user_id", "users"), ref("site_id", "sites"),
                 ref("org_id", "organisations"), string("stripe_customer_id", 255, null=True),
                 string("company_name", 200, null=True), string("siren", 9, null=True),
                 string("vat_number", 20, null=True), string("phone", 30, null=True), timestamp("created_at"),
                 timestamp("updated_at"), unique("stripe_customer_id"), unique("user_id"), index("site_id"))
    create_table("coworking_plans", column("id"), ref("site_id", "sites"), string("code", 40), string("name", 120),
                 text("description"), string("kind", 12), string("interval", 8, null=True),
                 column("pass_days", null=True), column("price_ht"), column("vat_rate"), string("account", 20),
                 string("currency", 3), boolean("company_only"), boolean("active"), column("position"),
                 string("stripe_product_id", 255, null=True), timestamp("created_at"), timestamp("updated_at"),
                 check("shape", "(kind = 'pass' AND pass_days > 0 AND interval IS NULL) OR (kind <> 'pass' AND pass_days IS NULL AND interval IN ('month', 'year'))"),
                 check("kind", "kind IN ('workspace', 'membership', 'pass')"),
                 check("price_positive", "price_ht > 0"), check("vat_rate", "vat_rate >= 0 AND vat_rate < 1000"),
                 unique("site_id", "code"), unique("stripe_product_id"), index("site_id"))
    create_table("coworking_invoices", column("id"), ref("member_id", "coworking_members"), ref("site_id", "sites"),
                 string("stripe_invoice_id", 255), string("stripe_subscription_id", 255, null=True),
                 string("number", 60, null=True), string("status", 16), string("billing_reason", 40, null=True),
                 string("currency", 3), column("total"), column("amount_due"), column("amount_paid"),
                 column("amount_remaining"), column("attempt_count"), text("hosted_invoice_url", null=True),
                 text("invoice_pdf", null=True), timestamp("issued_at"), timestamp("paid_at", null=True),
                 text("lines"), bigint("version"), timestamp("updated_at"),
                 check("status", "status IN ('draft', 'open', 'paid', 'void', 'uncollectible')"),
                 unique("stripe_invoice_id"),
                 index("member_id", "status", name="ix_coworking_invoices_member_status"),
                 index("stripe_subscription_id"))
    create_table("coworking_passes", column("id"), ref("member_id", "coworking_members"),
                 ref("plan_id", "coworking_plans"), ref("site_id", "sites"), ref("payment_id", "payments"),
                 column("days_total"), column("days_used"), timestamp("purchased_at"), date("expires_on"),
                 check("days", "days_used >= 0 AND days_used <= days_total"), unique("payment_id"),
                 index("member_id"))
    create_table("coworking_plan_prices", column("id"), ref("plan_id", "coworking_plans"), column("seq"),
                 column("amount"), column("price_ht"), column("vat_rate"), string("currency", 3),
                 string("interval", 8, null=True), string("stripe_price_id", 255, null=True), string("status", 10),
                 timestamp("created_at"), timestamp("archived_at", null=True),
                 check("status", "status IN ('pending', 'active', 'archived')"),
                 check("amount_positive", "amount > 0"), unique("plan_id", "seq"), unique("stripe_price_id"),
                 index("plan_id"))
    create_table("coworking_subscriptions", column("id"), ref("member_id", "coworking_members"),
                 ref("site_id", "sites"), ref("plan_id", "coworking_plans", null=True), string("kind", 12),
                 string("stripe_subscription_id", 255), string("stripe_price_id", 255, null=True),
                 string("status", 20), timestamp("current_period_start", null=True),
                 timestamp("current_period_end", null=True), boolean("cancel_at_period_end"),
                 timestamp("cancel_at", null=True), timestamp("canceled_at", null=True),
                 timestamp("ended_at", null=True), timestamp("started_at"), timestamp("past_due_since", null=True),
                 bigint("version"), timestamp("created_at"), timestamp("updated_at"),
                 check("status", "status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused')"),
                 unique("stripe_subscription_id"),
                 index("member_id", "status", name="ix_coworking_subscriptions_member_status"))
    create_table("coworking_checkouts", column("id"), ref("member_id", "coworking_members"),
                 ref("plan_id", "coworking_plans"), ref("price_id", "coworking_plan_prices"), string("status", 10),
                 string("checkout_session_id", 255, null=True), string("stripe_subscription_id", 255, null=True),
                 timestamp("created_at"),
                 check("status", "status IN ('created', 'open', 'complete', 'expired', 'unknown')"),
                 unique("checkout_session_id"), index("member_id"))
    create_table("coworking_pass_days", column("id"), ref("pass_id", "coworking_passes"),
                 ref("member_id", "coworking_members"), date("day"), string("recorded_by", 200),
                 timestamp("created_at"), unique("member_id", "day"), index("pass_id"))


def downgrade() -> None:
    drop_tables("coworking_pass_days", "coworking_checkouts", "coworking_subscriptions", "coworking_plan_prices",
                "coworking_passes", "coworking_invoices", "coworking_plans", "coworking_members")

"""Coworking: plans per site and their Stripe prices, members, subscriptions, invoices,
subscription checkouts, passes and pass days
"""

from funding import ddl

revision = "0005"
down_revision = "0002"


def upgrade() -> None:
    ddl.create_table("coworking_members", ddl.column("id"), ddl.ref("user_id", "users"), ddl.ref("site_id", "sites"),
                     ddl.ref("org_id", "organisations"), ddl.string("stripe_customer_id", 255, null=True),
                     ddl.string("company_name", 200, null=True), ddl.string("siren", 9, null=True),
                     ddl.string("vat_number", 20, null=True), ddl.string("phone", 30, null=True),
                     ddl.timestamp("created_at"), ddl.timestamp("updated_at"), ddl.unique("stripe_customer_id"),
                     ddl.unique("user_id"), ddl.index("site_id"))
    ddl.create_table("coworking_plans", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.string("code", 40),
                     ddl.string("name", 120), ddl.text("description"), ddl.string("kind", 12),
                     ddl.string("interval", 8, null=True), ddl.column("pass_days", null=True), ddl.column("price_ht"),
                     ddl.column("vat_rate"), ddl.string("account", 20), ddl.string("currency", 3),
                     ddl.boolean("company_only"), ddl.boolean("active"), ddl.column("position"),
                     ddl.string("stripe_product_id", 255, null=True), ddl.timestamp("created_at"),
                     ddl.timestamp("updated_at"),
                     ddl.check("shape", "(kind = 'pass' AND pass_days > 0 AND interval IS NULL)"
                                        " OR (kind <> 'pass' AND pass_days IS NULL AND interval IN ('month', 'year'))"),
                     ddl.check("kind", "kind IN ('workspace', 'membership', 'pass')"),
                     ddl.check("price_positive", "price_ht > 0"),
                     ddl.check("vat_rate", "vat_rate >= 0 AND vat_rate < 1000"), ddl.unique("site_id", "code"),
                     ddl.unique("stripe_product_id"), ddl.index("site_id"))
    ddl.create_table("coworking_invoices", ddl.column("id"), ddl.ref("member_id", "coworking_members"),
                     ddl.ref("site_id", "sites"), ddl.string("stripe_invoice_id", 255),
                     ddl.string("stripe_subscription_id", 255, null=True), ddl.string("number", 60, null=True),
                     ddl.string("status", 16), ddl.string("billing_reason", 40, null=True), ddl.string("currency", 3),
                     ddl.column("total"), ddl.column("amount_due"), ddl.column("amount_paid"),
                     ddl.column("amount_remaining"), ddl.column("attempt_count"),
                     ddl.text("hosted_invoice_url", null=True), ddl.text("invoice_pdf", null=True),
                     ddl.timestamp("issued_at"), ddl.timestamp("paid_at", null=True), ddl.text("lines"),
                     ddl.bigint("version"), ddl.timestamp("updated_at"),
                     ddl.check("status", "status IN ('draft', 'open', 'paid', 'void', 'uncollectible')"),
                     ddl.unique("stripe_invoice_id"),
                     ddl.index("member_id", "status", name="ix_coworking_invoices_member_status"),
                     ddl.index("stripe_subscription_id"))
    ddl.create_table("coworking_passes", ddl.column("id"), ddl.ref("member_id", "coworking_members"),
                     ddl.ref("plan_id", "coworking_plans"), ddl.ref("site_id", "sites"),
                     ddl.ref("payment_id", "payments"), ddl.column("days_total"), ddl.column("days_used"),
                     ddl.timestamp("purchased_at"), ddl.date("expires_on"),
                     ddl.check("days", "days_used >= 0 AND days_used <= days_total"), ddl.unique("payment_id"),
                     ddl.index("member_id"))
    ddl.create_table("coworking_plan_prices", ddl.column("id"), ddl.ref("plan_id", "coworking_plans"),
                     ddl.column("seq"), ddl.column("amount"), ddl.column("price_ht"), ddl.column("vat_rate"),
                     ddl.string("currency", 3), ddl.string("interval", 8, null=True),
                     ddl.string("stripe_price_id", 255, null=True), ddl.string("status", 10),
                     ddl.timestamp("created_at"), ddl.timestamp("archived_at", null=True),
                     ddl.check("status", "status IN ('pending', 'active', 'archived')"),
                     ddl.check("amount_positive", "amount > 0"), ddl.unique("plan_id", "seq"),
                     ddl.unique("stripe_price_id"), ddl.index("plan_id"))
    ddl.create_table("coworking_subscriptions", ddl.column("id"), ddl.ref("member_id", "coworking_members"),
                     ddl.ref("site_id", "sites"), ddl.ref("plan_id", "coworking_plans", null=True),
                     ddl.string("kind", 12), ddl.string("stripe_subscription_id", 255),
                     ddl.string("stripe_price_id", 255, null=True), ddl.string("status", 20),
                     ddl.timestamp("current_period_start", null=True), ddl.timestamp("current_period_end", null=True),
                     ddl.boolean("cancel_at_period_end"), ddl.timestamp("cancel_at", null=True),
                     ddl.timestamp("canceled_at", null=True), ddl.timestamp("ended_at", null=True),
                     ddl.timestamp("started_at"), ddl.timestamp("past_due_since", null=True), ddl.bigint("version"),
                     ddl.timestamp("created_at"), ddl.timestamp("updated_at"),
                     ddl.check("status", "status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused')"),
                     ddl.unique("stripe_subscription_id"),
                     ddl.index("member_id", "status", name="ix_coworking_subscriptions_member_status"))
    ddl.create_table("coworking_checkouts", ddl.column("id"), ddl.ref("member_id", "coworking_members"),
                     ddl.ref("plan_id", "coworking_plans"), ddl.ref("price_id", "coworking_plan_prices"),
                     ddl.string("status", 10), ddl.string("checkout_session_id", 255, null=True),
                     ddl.string("stripe_subscription_id", 255, null=True), ddl.timestamp("created_at"),
                     ddl.check("status", "status IN ('created', 'open', 'complete', 'expired', 'unknown')"),
                     ddl.unique("checkout_session_id"), ddl.index("member_id"))
    ddl.create_table("coworking_pass_days", ddl.column("id"), ddl.ref("pass_id", "coworking_passes"),
                     ddl.ref("member_id", "coworking_members"), ddl.date("day"), ddl.string("recorded_by", 200),
                     ddl.timestamp("created_at"), ddl.unique("member_id", "day"), ddl.index("pass_id"))


def downgrade() -> None:
    ddl.drop_tables("coworking_pass_days", "coworking_checkouts", "coworking_subscriptions", "coworking_plan_prices",
                    "coworking_passes", "coworking_invoices", "coworking_plans", "coworking_members")

"""coworking: a join waits for its first payment before it becomes an account (issue 15)

Following the join email's link used to create the account and its member record before
Checkout; an address that never paid kept an account. Now the link records a join request (the
details typed, the Stripe customer Checkout charges), and the account and member record are
created when Stripe reports the payment.
"""

from alembic import op

from funding.ddl import check, column, create_table, index, ref, string, timestamp, unique

revision = "0040"
down_revision = "0039"


def upgrade() -> None:
    create_table("coworking_join_requests", column("id"), ref("org_id", "organisations"), ref("site_id", "sites"),
                 ref("plan_id", "coworking_plans"), string("link_digest", 64), string("email", 254), string("name", 200),
                 string("phone", 30, null=True), string("company_name", 200, null=True), string("siren", 9, null=True),
                 string("vat_number", 20, null=True), string("locale", 5), column("attempts"),
                 string("stripe_customer_id", 255, null=True),
                 string("checkout_session_id", 255, null=True), ref("member_id", "coworking_members", null=True),
                 string("status", 10), timestamp("created_at"), timestamp("joined_at", null=True),
                 check("status", "status IN ('open', 'joined')"), unique("link_digest"), unique("stripe_customer_id"),
                 index("email"))


def downgrade() -> None:
    op.drop_table("coworking_join_requests")

"""invoices: French VAT rates as Stripe Tax Rates; members' postal address for their invoices

An invoice must state the VAT per rate and the buyer's address. Each VAT rate we bill
(per mille, inclusive or not of the price) becomes one Stripe Tax Rate, created once under
an idempotency key derived from its row here, then put on subscription items, invoice items
and Checkout lines. Members get an address (empty until they or the staff give it).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from funding.ddl import boolean, check, column, create_table, string, timestamp, unique

revision = "0017"
down_revision = "0016"

# Accounts the invoices now need, in every organisation's chart (as new ones get them).
ACCOUNTS = [("445714", "TVA collectée 2,1 %"), ("654", "Pertes sur créances irrécouvrables")]


def upgrade() -> None:
    create_table("stripe_tax_rates", column("id"), column("vat_rate"), boolean("inclusive"),
                 string("stripe_id", 255, null=True), timestamp("created_at"),
                 check("vat_rate", "vat_rate IN (0, 21, 55, 100, 200)"),
                 unique("vat_rate", "inclusive"), unique("stripe_id"))
    with op.batch_alter_table("coworking_members") as batch_op:
        batch_op.add_column(sa.Column("address", sa.Text(), nullable=False, server_default=""))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for number, label in ACCOUNTS:
        op.get_bind().execute(sa.text(
            "INSERT INTO accounts (org_id, number, label, active, created_at) "
            "SELECT id, CAST(:number AS VARCHAR(20)), CAST(:label AS VARCHAR(200)), :yes, :now "
            "FROM organisations o WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = o.id AND a.number = CAST(:number AS VARCHAR(20)))")
            .bindparams(sa.bindparam("now", type_=sa.DateTime()), sa.bindparam("yes", type_=sa.Boolean()),
                       sa.bindparam("number", type_=sa.String()), sa.bindparam("label", type_=sa.String())),
            {"number": number, "label": label, "yes": True, "now": now})


def downgrade() -> None:
    # The accounts stay: the chart only grows (an account in use cannot go, one unused harms nothing).
    with op.batch_alter_table("coworking_members") as batch_op:
        batch_op.drop_column("address")
    op.drop_table("stripe_tax_rates")

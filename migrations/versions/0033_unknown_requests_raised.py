"""unknown Stripe requests raised to staff; the installation's own facts

``stripe_requests.raised_at``: an unknown request the sweep could neither find at Stripe nor
safely create again is handed to staff (the Stripe page of the back office says what to check).
``installation_facts``: written once at first use, e.g. the prefix of our idempotency keys
(``STRIPE_IDEMPOTENCY_PREFIX`` overrides it), so two databases on one Stripe account never collide.
"""

from alembic import op

from funding.ddl import create_table, string, timestamp

revision = "0033"
down_revision = "0028"


def upgrade() -> None:
    op.add_column("stripe_requests", timestamp("raised_at", null=True))
    create_table("installation_facts", string("name", 40), string("value", 200), primary_key=("name",))


def downgrade() -> None:
    op.drop_table("installation_facts")
    op.drop_column("stripe_requests", "raised_at")  # SQLite ≥ 3.35 drops a column in place

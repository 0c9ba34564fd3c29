"""process heartbeats, and who holds a webhook event's lease

A worker (or a web process that drains events) writes its heartbeat every few seconds; the
lease of an event records the process that took it, so an event orphaned by a crash is taken
again as soon as its process is known dead (its heartbeat stale, or its pid gone on the same
host) instead of after the whole five-minute lease.
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import bigint, create_table, index, string, timestamp

revision = "0036"
down_revision = "0033"


def upgrade() -> None:
    create_table("process_heartbeats", string("id", 80), string("kind", 10), string("host", 64), bigint("pid"),
                 timestamp("started_at"), timestamp("beat_at"), index("beat_at"), primary_key=("id",))
    with op.batch_alter_table("stripe_events") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stripe_events") as batch:
        batch.drop_column("leased_by")
    op.drop_table("process_heartbeats")

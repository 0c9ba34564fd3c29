"""rate limits: counters shared by every web process

What an anonymous visitor or a member may repeat at our cost (login links, joins, contributions,
donations, receipts re-sent, the public API) is counted per action, per hashed key (an address,
a client IP) and per fixed window. The service increments a row and deletes windows that are
over; the key is a keyed hash, never the address or the IP itself.
"""

from alembic import op

from funding.ddl import check, column, create_table, index, string, timestamp

revision = "0026"
down_revision = "0024"


def upgrade() -> None:
    create_table("rate_limits", string("action", 40), string("key_hash", 64), timestamp("window_start"), column("hits"),
                 check("hits", "hits > 0"), index("window_start"), primary_key=("action", "key_hash", "window_start"))


def downgrade() -> None:
    op.drop_table("rate_limits")

"""bar: a tap on a member's tab in one statement (issue 19)

PostgreSQL only: ``bar_ring_up`` does what funding.bar.till.ring_up does for a member's tab
(the site within the caller's scope, the product, the member, the tab limit, the chain head, the
hashed line) in one call, its own transaction, so that the site's head is locked for the time of one
statement instead of three round trips and the web process's turns in between. SQLite (one
writer at a time) keeps the ORM path.
"""

from alembic import op

from funding import ddl

revision = "0043"
down_revision = "0042"


def upgrade() -> None:
    if ddl.is_postgresql():
        from funding.migrate import sql_function

        op.execute(sql_function("bar_ring_up", 1))


def downgrade() -> None:
    if ddl.is_postgresql():
        op.execute("DROP FUNCTION bar_ring_up")  # its arguments need not be spelt: the name is unique

"""ledger: an entry is validated on or after its date as a Paris day, not a UTC one

An entry's date is a Paris day (funding.clock); ``validated_at`` is naive UTC. The database's
guard compared the UTC day: from Paris midnight to UTC's (23:00-24:00 UTC in winter, 22:00-24:00
in summer) it refused every entry of the new Paris day, so the hour's Stripe payments were
booked only after UTC's midnight (seen in the end-to-end tests on 2026-12-06 at 23:1x UTC). The
service's own check had the same mistake (funding.ledger.service). PostgreSQL's guard now takes
the Paris day of ``validated_at``. SQLite has no time zones: its trigger allows the UTC day two
hours on (Paris is UTC+1 or UTC+2), a bound no wider than an hour in winter; the service checks
the exact Paris day before any entry reaches it.
"""

from alembic import op

from funding.ddl import GuardChange, is_postgresql
from funding.migrate import sqlite_trigger

revision = "0045"
down_revision = "0044"

CHANGE = GuardChange(functions={"ledger_entry_update_guard": (2, 5)})


def upgrade() -> None:
    if is_postgresql():
        CHANGE.upgrade()
    else:
        op.execute("DROP TRIGGER entries_validate")
        op.execute(sqlite_trigger("entries_validate", 2))


def downgrade() -> None:
    if is_postgresql():
        CHANGE.downgrade()
    else:
        op.execute("DROP TRIGGER entries_validate")
        op.execute(sqlite_trigger("entries_validate", 1))

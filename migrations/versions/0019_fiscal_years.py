"""fiscal years: a year closes after its twelve months, chained and sealed like them

``funding ledger close-year`` stores a closing of kind ``year`` (the year's totals, chained with
the months' closings) and a seal of kind ``year``; the checks on both kinds admit it. A year's
closing covers months already closed: its guard asks that it end on the last closed day (no
later month closed before it), where a month's closing must start the day after.
SQLite changes a CHECK by rebuilding the table, and makes its triggers again (as 0016).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from funding.ddl import GuardChange, sqlite_rebuild
from funding.migrate import sqlite_trigger

revision = "0019"
down_revision = "0018"

CHECKS = {  # table: (constraint, values before, values after)
    "closings": ("ck_closings_kind", ("month",), ("month", "year")),
    "ledger_seals": ("ck_ledger_seals_kind", ("month", "bar-day", "bar-month", "bar-year"),
                     ("month", "bar-day", "bar-month", "bar-year", "year")),
}
TRIGGERS = {  # SQLite triggers of the rebuilt tables: (name, version before, version after)
    "closings": (("closings_insert_guard", 1, 2), ("closings_advance_head", 1, 1), ("closings_frozen_update", 1, 1),
                 ("closings_frozen_delete", 1, 1)),
    "ledger_seals": (("ledger_seals_frozen_update", 1, 1), ("ledger_seals_frozen_delete", 1, 1)),
}
# The accounts a year's closing posts to (result and report à nouveau), in every organisation's chart.
ACCOUNTS = [("110", "Report à nouveau (solde créditeur)"), ("119", "Report à nouveau (solde débiteur)"),
            ("120", "Résultat de l'exercice (excédent)"), ("129", "Résultat de l'exercice (déficit)")]
GUARD = GuardChange(functions={"ledger_closing_insert_guard": (1, 2)})


def _in(values: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _checks(after: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, (name, before, now) in CHECKS.items():
        values = now if after else before
        if sqlite:
            triggers = [sqlite_trigger(trigger, new if after else old) for trigger, old, new in TRIGGERS[table]]
            with sqlite_rebuild(table, triggers) as batch_op:
                batch_op.drop_constraint(op.f(name), type_="check")
                batch_op.create_check_constraint(op.f(name), _in(values))
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({_in(values)})")


def upgrade() -> None:
    _checks(after=True)
    GUARD.upgrade()
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
    # The accounts stay: the chart only grows.
    GUARD.downgrade()
    _checks(after=False)

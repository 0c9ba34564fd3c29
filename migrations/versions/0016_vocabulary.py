"""vocabulary: one spelling per word, and every status and kind checked by the database

Statuses and kinds are StrEnums in the code (funding.db.EnumText); the database checks the
same values. Our own "cancelled" becomes "canceled", Stripe's spelling, which the
subscriptions already used (pledges, matches and walk-in tickets). The columns that had no
check get one: closings' and seals' kinds, campaign entries' kinds, batches' billing
methods, exports' formats and channels, subscriptions' kinds, payments' purposes, payouts'
statuses (Stripe's).

SQLite changes a CHECK by rebuilding the table (foreign keys off meanwhile, see env.py; the
legacy rename leaves other tables' triggers be); the triggers of a rebuilt table are made
again from migrations/sql/sqlite.
"""

from alembic import op

from funding.ddl import sqlite_rebuild
from funding.migrate import sqlite_trigger

revision = "0016"
down_revision = "0015"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


PLEDGE = ("pending", "active", "charging", "action_required", "card_declined", "retry", "paid", "failed", "{x}",
          "expired", "void")
RENAMED = [  # (table, values with {x} where the canceled state stands)
    ("campaign_pledges", PLEDGE),
    ("campaign_matches", ("pledged", "released", "{x}")),
    ("bar_tickets", ("open", "paid", "{x}")),
]
NEW_CHECKS = [  # (table, constraint suffix, column, values)
    ("closings", "kind", "kind", ("month",)),
    ("ledger_seals", "kind", "kind", ("month", "bar-day", "bar-month", "bar-year")),
    ("campaign_entries", "kind", "kind", ("payment", "refund", "dispute", "delivery", "match")),
    ("bar_batches", "method", "method", ("invoice_item", "payment_intent", "due", "checkout")),
    ("export_logs", "format", "format", ("fec", "csv", "beancount", "hledger", "trial-balance", "general-ledger")),
    ("export_logs", "channel", "channel", ("web", "cli", "email", "link")),
    ("coworking_subscriptions", "kind", "kind", ("workspace", "membership", "pass")),
    ("payments", "purpose", "purpose", ("donation", "pledge", "pass", "invoice", "bar_sale", "bar_tab")),
    ("stripe_payouts", "status", "status", ("pending", "in_transit", "paid", "failed", "canceled")),
]
TRIGGERS = {  # SQLite triggers of the tables rebuilt here
    "closings": ("closings_insert_guard", "closings_advance_head", "closings_frozen_update", "closings_frozen_delete"),
    "ledger_seals": ("ledger_seals_frozen_update", "ledger_seals_frozen_delete"),
}


def _sqlite(table: str, *, drop: list[str] = (), add: list[tuple[str, str]] = ()) -> None:
    with sqlite_rebuild(table, [sqlite_trigger(name, 1) for name in TRIGGERS.get(table, ())]) as batch_op:
        for name in drop:
            batch_op.drop_constraint(op.f(name), type_="check")
        for name, sql in add:
            batch_op.create_check_constraint(op.f(name), sql)


def _rename(old: str, new: str) -> None:
    """The canceled state from ``old`` to ``new``: its check dropped, the rows moved, the check made again."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, values in RENAMED:
        name = f"ck_{table}_status"
        after = _in("status", tuple(v.replace("{x}", new) for v in values))
        if sqlite:
            _sqlite(table, drop=[name])
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"UPDATE {table} SET status = '{new}' WHERE status = '{old}'")  # noqa: S608 — RENAMED's tables and this file's states, never input
        if sqlite:
            _sqlite(table, add=[(name, after)])
        else:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({after})")


def upgrade() -> None:
    _rename("cancelled", "canceled")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, suffix, column, values in NEW_CHECKS:
        name = f"ck_{table}_{suffix}"
        if sqlite:
            _sqlite(table, add=[(name, _in(column, values))])
        else:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({_in(column, values)})")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, suffix, _column, _values in NEW_CHECKS:
        name = f"ck_{table}_{suffix}"
        if sqlite:
            _sqlite(table, drop=[name])
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    _rename("canceled", "cancelled")

"""grant reports: the granted action's budget beside each grant; the FEC in ISO 8859-15

The financial report a public funder asks for (compte rendu financier, cerfa 15059) sets the
action's budget against what was spent and received: the budget's lines live in their own
table, one per category of the form (two digits of the chart), never on the grant's row.
Export logs admit the FEC written in ISO 8859-15 (``fec-latin9``). SQLite changes a CHECK by
rebuilding the table (as 0016; export_logs has no trigger there).
"""

from alembic import op

from funding.ddl import check, column, create_table, index, ref, sqlite_rebuild, string, timestamp, unique

revision = "0023"
down_revision = "0019"

CATEGORIES = ("60", "61", "62", "63", "64", "65", "66", "67", "68", "69", "86",
              "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "87")
FORMATS_BEFORE = ("fec", "csv", "beancount", "hledger", "trial-balance", "general-ledger")
FORMATS_AFTER = ("fec", "fec-latin9", "csv", "beancount", "hledger", "trial-balance", "general-ledger")


def _in(column_name: str, values: tuple[str, ...]) -> str:
    return f"{column_name} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _formats(values: tuple[str, ...]) -> None:
    name = "ck_export_logs_format"
    if op.get_bind().dialect.name == "sqlite":
        with sqlite_rebuild("export_logs") as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
            batch_op.create_check_constraint(op.f(name), _in("format", values))
    else:
        op.execute(f"ALTER TABLE export_logs DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE export_logs ADD CONSTRAINT {name} CHECK ({_in('format', values)})")


def upgrade() -> None:
    create_table("grant_budget_lines", column("id"), ref("org_id", "organisations"), ref("grant_id", "grants"),
                 string("category", 2), string("label", 200), column("amount"), string("currency", 3),
                 string("created_by", 254), timestamp("created_at"),
                 check("amount_not_negative", "amount >= 0"), check("category", _in("category", CATEGORIES)),
                 unique("grant_id", "category", "label"), index("grant_id"))
    _formats(FORMATS_AFTER)


def downgrade() -> None:
    # Logs of ISO 8859-15 FECs make this refuse: history is not deleted to go back.
    _formats(FORMATS_BEFORE)
    op.drop_table("grant_budget_lines")

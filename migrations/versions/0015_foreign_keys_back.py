"""ledger: the foreign keys are back on PostgreSQL; statistics through the owner

Migrations 0011 and 0012 replaced five foreign keys of entries and postings with
statement-level triggers, for speed. A trigger reads the rows it checks without locking
them: a concurrent DELETE of an account or a site beside an uncommitted posting committed
both, leaving an orphan. A foreign key locks the row it references (FOR KEY SHARE), so the
database refuses the race. The keys come back; the triggers that stood in for them go, and
the guards they had grown return to their earlier versions (migrations/sql): a posting still
cannot be added to a validated entry, an entry with postings or an account, journal or site
in use still cannot be deleted (now by the keys). The entries' three keys are deferrable
(immediate by default): a batch of postings defers them until its entries are numbered, so
each is checked once instead of at the draft's INSERT and again at its numbering UPDATE.
SQLite rebuilds the entries table for that, and its triggers with it.

The service's role owns no table (funding/grants.py), and only an owner may ANALYZE: the
webhook drain now asks ``funding_analyze``, a SECURITY DEFINER function that runs ANALYZE
on the schema's tables it is given, and nothing else.
"""

from alembic import op

from funding.ddl import GuardChange, revision_module, sqlite_rebuild
from funding.migrate import sql_function, sqlite_trigger

revision = "0015"
down_revision = "0014"

KEYS = [
    ("postings", "fk_postings_entry_id_org_id_entries", "(entry_id, org_id) REFERENCES entries (id, org_id)"),
    ("postings", "fk_postings_org_id_account_number_accounts", "(org_id, account_number) REFERENCES accounts (org_id, number)"),
    ("entries", "fk_entries_journal_code_journals", "(journal_code) REFERENCES journals (code) DEFERRABLE INITIALLY IMMEDIATE"),
    ("entries", "fk_entries_org_id_organisations", "(org_id) REFERENCES organisations (id) DEFERRABLE INITIALLY IMMEDIATE"),
    ("entries", "fk_entries_site_id_org_id_sites", "(site_id, org_id) REFERENCES sites (id, org_id) DEFERRABLE INITIALLY IMMEDIATE"),
]
ENTRY_TRIGGERS = ("entries_insert_guard", "entries_frozen", "entries_validate", "entries_advance_head", "entries_delete_guard")
ENTRY_KEYS = [  # (name, columns, referred table, referred columns)
    ("fk_entries_journal_code_journals", ["journal_code"], "journals", ["code"]),
    ("fk_entries_org_id_organisations", ["org_id"], "organisations", ["id"]),
    ("fk_entries_site_id_org_id_sites", ["site_id", "org_id"], "sites", ["id", "org_id"]),
]
ANALYZE = "funding_analyze(text[])"


def _postgresql() -> GuardChange:
    """The stand-ins that 0011 and 0012 added in the keys' place go, the guards they had grown
    return to their earlier versions, the keys come back."""
    stand_ins = [*revision_module("0011").TRIGGERS, *revision_module("0012").TRIGGERS]
    return GuardChange(
        functions={"ledger_account_guard": (1, None), "ledger_entries_insert_refs": (1, None),
                   "ledger_journal_guard": (1, None), "ledger_site_guard": (1, None),
                   "ledger_postings_insert_guard": (2, 1), "ledger_entry_delete_guard": (2, 1),
                   "ledger_entry_update_guard": (4, 2)},
        triggers=[(trigger, None) for trigger in stand_ins],
        sql=[*((f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {spec}",
                f"ALTER TABLE {table} DROP CONSTRAINT {name}") for table, name, spec in KEYS),
             (sql_function("funding_analyze", 1), f"DROP FUNCTION {ANALYZE}"),
             (f"REVOKE ALL ON FUNCTION {ANALYZE} FROM PUBLIC", None)],
    )


def _sqlite_entry_keys(deferrable: bool) -> None:
    """The postings' triggers name the entries table: see sqlite_rebuild."""
    with sqlite_rebuild("entries", [sqlite_trigger(name, 1) for name in ENTRY_TRIGGERS]) as batch_op:
        for name, columns, table, referred in ENTRY_KEYS:
            batch_op.drop_constraint(op.f(name), type_="foreignkey")
            batch_op.create_foreign_key(op.f(name), table, columns, referred,
                                        **({"deferrable": True, "initially": "IMMEDIATE"} if deferrable else {}))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_entry_keys(deferrable=True)
    _postgresql().upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_entry_keys(deferrable=False)
    _postgresql().downgrade()

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

Revision ID: 0015
Create Date: 2026-12-03 17:00:00
"""

from alembic import op

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
STAND_INS = [  # (trigger, table, function) that 0011 and 0012 added in the keys' place
    ("postings_update_refs", "postings", None),
    ("accounts_guard", "accounts", "ledger_account_guard"),
    ("entries_insert_refs", "entries", "ledger_entries_insert_refs"),
    ("journals_guard", "journals", "ledger_journal_guard"),
    ("sites_ledger_guard", "sites", "ledger_site_guard"),
]


def _sqlite_entry_keys(deferrable: bool) -> None:
    """SQLite alters a key by rebuilding the table (foreign keys off meanwhile, see env.py); the
    table's triggers go with the old one and are made again. The postings' triggers name the
    entries table: the legacy rename leaves them be instead of checking them against a table
    that is, for that moment, gone."""
    op.execute("PRAGMA legacy_alter_table = ON")
    with op.batch_alter_table("entries", recreate="always") as batch_op:
        for name, columns, table, referred in ENTRY_KEYS:
            batch_op.drop_constraint(op.f(name), type_="foreignkey")
            batch_op.create_foreign_key(op.f(name), table, columns, referred,
                                        **({"deferrable": True, "initially": "IMMEDIATE"} if deferrable else {}))
    op.execute("PRAGMA legacy_alter_table = OFF")
    for name in ENTRY_TRIGGERS:
        op.execute(sqlite_trigger(name, 1))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _sqlite_entry_keys(deferrable=True)
        return
    for trigger, table, function in STAND_INS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
        if function:
            op.execute(f"DROP FUNCTION {function}()")
    op.execute(sql_function("ledger_postings_insert_guard", 1))
    op.execute(sql_function("ledger_entry_delete_guard", 1))
    op.execute(sql_function("ledger_entry_update_guard", 2))
    for table, name, spec in KEYS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {spec}")
    op.execute(sql_function("funding_analyze", 1))
    op.execute("REVOKE ALL ON FUNCTION funding_analyze(text[]) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _sqlite_entry_keys(deferrable=False)
        return
    op.execute("DROP FUNCTION funding_analyze(text[])")
    for table, name, _spec in KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute(sql_function("ledger_entry_update_guard", 4))
    op.execute(sql_function("ledger_entry_delete_guard", 2))
    op.execute(sql_function("ledger_postings_insert_guard", 2))
    for name in ("ledger_account_guard", "ledger_entries_insert_refs", "ledger_journal_guard", "ledger_site_guard"):
        op.execute(sql_function(name, 1))
    op.execute("CREATE TRIGGER postings_update_refs AFTER UPDATE ON postings REFERENCING NEW TABLE AS new_postings "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_insert_guard()")
    op.execute("CREATE TRIGGER accounts_guard BEFORE UPDATE OR DELETE ON accounts FOR EACH ROW "
               "EXECUTE FUNCTION ledger_account_guard()")
    op.execute("CREATE TRIGGER entries_insert_refs AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_insert_refs()")
    op.execute("CREATE TRIGGER journals_guard BEFORE UPDATE OR DELETE ON journals FOR EACH ROW "
               "EXECUTE FUNCTION ledger_journal_guard()")
    op.execute("CREATE TRIGGER sites_ledger_guard BEFORE UPDATE OR DELETE ON sites FOR EACH ROW "
               "EXECUTE FUNCTION ledger_site_guard()")

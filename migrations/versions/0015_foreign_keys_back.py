"""ledger: the foreign keys are back on PostgreSQL; statistics through the owner

Migrations 0011 and 0012 replaced five foreign keys of entries and postings with
statement-level triggers, for speed. A trigger reads the rows it checks without locking
them: a concurrent DELETE of an account or a site beside an uncommitted posting committed
both, leaving an orphan. A foreign key locks the row it references (FOR KEY SHARE), so the
database refuses the race. The keys come back; the triggers that stood in for them go, and
the guards they had grown return to their earlier versions (migrations/sql): a posting still
cannot be added to a validated entry, an entry with postings or an account, journal or site
in use still cannot be deleted (now by the keys).

The service's role owns no table (funding/grants.py), and only an owner may ANALYZE: the
webhook drain now asks ``funding_analyze``, a SECURITY DEFINER function that runs ANALYZE
on the schema's tables it is given, and nothing else.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:00:00
"""

from alembic import op

from funding.migrate import sql_function

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

KEYS = [
    ("postings", "fk_postings_entry_id_org_id_entries", "(entry_id, org_id) REFERENCES entries (id, org_id)"),
    ("postings", "fk_postings_org_id_account_number_accounts", "(org_id, account_number) REFERENCES accounts (org_id, number)"),
    ("entries", "fk_entries_journal_code_journals", "(journal_code) REFERENCES journals (code)"),
    ("entries", "fk_entries_org_id_organisations", "(org_id) REFERENCES organisations (id)"),
    ("entries", "fk_entries_site_id_org_id_sites", "(site_id, org_id) REFERENCES sites (id, org_id)"),
]
STAND_INS = [  # (trigger, table, function) that 0011 and 0012 added in the keys' place
    ("postings_update_refs", "postings", None),
    ("accounts_guard", "accounts", "ledger_account_guard"),
    ("entries_insert_refs", "entries", "ledger_entries_insert_refs"),
    ("journals_guard", "journals", "ledger_journal_guard"),
    ("sites_ledger_guard", "sites", "ledger_site_guard"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
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

"""entries: on PostgreSQL, journal, site and organisation checked once per statement

An entry is inserted as a draft and numbered by an UPDATE in the same transaction. Its
three foreign keys (journal, organisation, site of that organisation) each ran a query
for every inserted row, and again for every numbered row: PostgreSQL re-checks a foreign
key on UPDATE when the row was inserted by the same transaction, keys unchanged or not.
A statement-level trigger now checks a whole INSERT at once (every journal exists, every
(site, organisation) pair is a site of that organisation, which also proves the
organisation exists), and the three keys go. What they also protected is guarded where
it can happen: a draft keeps its journal and site (the row guard, which already kept its
id and organisation); a journal or a site used by entries cannot be deleted or change
its key (an organisation with entries has sites, whose own key keeps it). SQLSTATE 23503,
as before. SQLite keeps its foreign keys.

Revision ID: 0012
Create Date: 2026-12-02 02:05:00
"""

from alembic import op

from funding.migrate import sql_function

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_function("ledger_entries_insert_refs", 1))
    op.execute(sql_function("ledger_entry_update_guard", 4))
    op.execute(sql_function("ledger_journal_guard", 1))
    op.execute(sql_function("ledger_site_guard", 1))
    op.execute("CREATE TRIGGER entries_insert_refs AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_insert_refs()")
    op.execute("CREATE TRIGGER journals_guard BEFORE UPDATE OR DELETE ON journals FOR EACH ROW "
               "EXECUTE FUNCTION ledger_journal_guard()")
    op.execute("CREATE TRIGGER sites_ledger_guard BEFORE UPDATE OR DELETE ON sites FOR EACH ROW "
               "EXECUTE FUNCTION ledger_site_guard()")
    for name in ("fk_entries_journal_code_journals", "fk_entries_org_id_organisations", "fk_entries_site_id_org_id_sites"):
        op.execute(f"ALTER TABLE entries DROP CONSTRAINT {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE entries ADD CONSTRAINT fk_entries_site_id_org_id_sites "
               "FOREIGN KEY (site_id, org_id) REFERENCES sites (id, org_id)")
    op.execute("ALTER TABLE entries ADD CONSTRAINT fk_entries_org_id_organisations FOREIGN KEY (org_id) REFERENCES organisations (id)")
    op.execute("ALTER TABLE entries ADD CONSTRAINT fk_entries_journal_code_journals "
               "FOREIGN KEY (journal_code) REFERENCES journals (code)")
    op.execute("DROP TRIGGER sites_ledger_guard ON sites")
    op.execute("DROP TRIGGER journals_guard ON journals")
    op.execute("DROP TRIGGER entries_insert_refs ON entries")
    op.execute("DROP FUNCTION ledger_site_guard()")
    op.execute("DROP FUNCTION ledger_journal_guard()")
    op.execute("DROP FUNCTION ledger_entries_insert_refs()")
    op.execute(sql_function("ledger_entry_update_guard", 3))

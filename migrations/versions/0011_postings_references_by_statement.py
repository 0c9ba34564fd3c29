"""postings: on PostgreSQL, their entry and account checked once per statement

A foreign key checks every inserted row with its own query: the 1,500 postings of a batch
of 500 webhook events cost 1,500 lookups of their entry and 1,500 of their account, the
largest part of that INSERT. The statement-level guard of 0009 already reads the
statement's postings: it now also checks, with one query each, that every posting's
entry exists in the same organisation (and is still a draft) and that every account
exists in the organisation's chart, and the two foreign keys go. What they also
protected is guarded where it can happen: an entry cannot be deleted while it has
postings, nor change its id or organisation; an account with postings cannot be deleted
or renumbered; an UPDATE of postings is checked like an INSERT. SQLSTATE 23503
(foreign_key_violation), as before. SQLite keeps its foreign keys.

The models still declare both keys (SQLite uses them): PG_TRIGGER_CHECKED_FKS in
funding.ledger.models tells autogenerate and the drift test not to add them back.

Revision ID: 0011
Create Date: 2026-12-02 01:45:00
"""

from alembic import op

from funding.migrate import sql_function

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_function("ledger_postings_insert_guard", 2))
    op.execute(sql_function("ledger_entry_update_guard", 3))
    op.execute(sql_function("ledger_entry_delete_guard", 2))
    op.execute(sql_function("ledger_account_guard", 1))
    op.execute("CREATE TRIGGER postings_update_refs AFTER UPDATE ON postings REFERENCING NEW TABLE AS new_postings "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_insert_guard()")
    op.execute("CREATE TRIGGER accounts_guard BEFORE UPDATE OR DELETE ON accounts FOR EACH ROW "
               "EXECUTE FUNCTION ledger_account_guard()")
    op.execute("ALTER TABLE postings DROP CONSTRAINT fk_postings_entry_id_org_id_entries")
    op.execute("ALTER TABLE postings DROP CONSTRAINT fk_postings_org_id_account_number_accounts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE postings ADD CONSTRAINT fk_postings_org_id_account_number_accounts "
               "FOREIGN KEY (org_id, account_number) REFERENCES accounts (org_id, number)")
    op.execute("ALTER TABLE postings ADD CONSTRAINT fk_postings_entry_id_org_id_entries "
               "FOREIGN KEY (entry_id, org_id) REFERENCES entries (id, org_id)")
    op.execute("DROP TRIGGER accounts_guard ON accounts")
    op.execute("DROP TRIGGER postings_update_refs ON postings")
    op.execute("DROP FUNCTION ledger_account_guard()")
    op.execute(sql_function("ledger_entry_delete_guard", 1))
    op.execute(sql_function("ledger_postings_insert_guard", 1))
    op.execute(sql_function("ledger_entry_update_guard", 2))

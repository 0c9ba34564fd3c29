"""entries: on PostgreSQL, validate a whole numbering UPDATE at once

Validating an entry (giving it its number, hash and link to the previous hash) ran, for
every row, a PL/pgSQL function with three queries (lock the head, count the postings,
check the balance) and a second trigger that moved the head by one, itself guarded. A
batch of webhook events validates a hundred entries in one statement, so the same rules
are now checked once per statement, over the transition table of the updated rows:

- the numbers of an organisation's newly validated entries follow its head without a gap
  (with the unique (org_id, number) constraint, consecutive);
- each one's prev_hash is the hash of the entry numbered just before it (the head's hash
  for the first);
- none is dated in a closed period, each has two postings or more and balances per currency;
- then the head moves once, to the last of them.

What needs no query stays a row trigger: a validated entry cannot change, an entry cannot
be validated before its date. The head's guard, which only let the head move by one, now
lets it move forward to an entry that exists with that number and hash. Same messages and
SQLSTATEs as before. SQLite is unchanged (no statement-level triggers).

Revision ID: 0010
Create Date: 2026-12-02 00:45:00
"""

from alembic import op

from funding.migrate import sql_function

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_function("ledger_entry_update_guard", 2))
    op.execute(sql_function("ledger_entries_validate", 1))
    op.execute(sql_function("ledger_head_guard", 2))
    op.execute("DROP TRIGGER entries_advance_head ON entries")
    op.execute("CREATE TRIGGER entries_advance_head AFTER UPDATE ON entries REFERENCING NEW TABLE AS new_entries "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_validate()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER entries_advance_head ON entries")
    op.execute("CREATE TRIGGER entries_advance_head AFTER UPDATE ON entries FOR EACH ROW"
               " WHEN (OLD.number IS NULL AND NEW.number IS NOT NULL) EXECUTE FUNCTION ledger_entry_advance_head()")
    op.execute("DROP FUNCTION ledger_entries_validate()")
    op.execute(sql_function("ledger_head_guard", 1))
    op.execute(sql_function("ledger_entry_update_guard", 1))

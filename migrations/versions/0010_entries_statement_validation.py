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
"""

from funding.ddl import GuardChange, Trigger, statement_trigger

revision = "0010"
down_revision = "0009"

CHANGE = GuardChange(
    functions={"ledger_entry_update_guard": (1, 2), "ledger_entries_validate": (None, 1), "ledger_head_guard": (1, 2)},
    triggers=[(
        Trigger("entries_advance_head", "AFTER UPDATE ON entries", "ledger_entry_advance_head",
                when="OLD.number IS NULL AND NEW.number IS NOT NULL"),
        statement_trigger("entries_advance_head", "AFTER UPDATE ON entries", "new_entries", "ledger_entries_validate"),
    )],
)
upgrade, downgrade = CHANGE.upgrade, CHANGE.downgrade

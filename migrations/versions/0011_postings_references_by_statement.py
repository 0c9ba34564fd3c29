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
"""

from funding.ddl import GuardChange, Trigger, keys_dropped, statement_trigger

revision = "0011"
down_revision = "0010"

TRIGGERS = [
    statement_trigger("postings_update_refs", "AFTER UPDATE ON postings", "new_postings", "ledger_postings_insert_guard"),
    Trigger("accounts_guard", "BEFORE UPDATE OR DELETE ON accounts", "ledger_account_guard"),
]
KEYS = [  # (name, definition) of the foreign keys the guards stand in for
    ("fk_postings_entry_id_org_id_entries", "FOREIGN KEY (entry_id, org_id) REFERENCES entries (id, org_id)"),
    ("fk_postings_org_id_account_number_accounts",
     "FOREIGN KEY (org_id, account_number) REFERENCES accounts (org_id, number)"),
]
CHANGE = GuardChange(
    functions={"ledger_postings_insert_guard": (1, 2), "ledger_entry_update_guard": (2, 3),
               "ledger_entry_delete_guard": (1, 2), "ledger_account_guard": (None, 1)},
    triggers=[(None, trigger) for trigger in TRIGGERS],
    sql=keys_dropped("postings", KEYS),
)
upgrade, downgrade = CHANGE.upgrade, CHANGE.downgrade

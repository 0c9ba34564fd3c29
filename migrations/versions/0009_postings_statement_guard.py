"""postings: on PostgreSQL, check a whole INSERT at once

The row-level guard ran a PL/pgSQL function and an index probe for every posting; a batch
of webhook events posts hundreds at a time, and that guard was most of the cost. An AFTER
INSERT … FOR EACH STATEMENT trigger sees every new posting in a transition table and checks
them with one primary-key probe per entry: postings can still never be added to a validated entry (same message,
same SQLSTATE). UPDATE and DELETE keep their row-level guard. SQLite is unchanged (it has
no statement-level triggers).
"""

from funding.ddl import GuardChange, Trigger, statement_trigger

revision = "0009"
down_revision = "0008"

CHANGE = GuardChange(
    functions={"ledger_postings_insert_guard": (None, 1)},
    triggers=[
        (Trigger("postings_guard", "BEFORE INSERT OR UPDATE OR DELETE ON postings", "ledger_posting_guard"),
         Trigger("postings_guard", "BEFORE UPDATE OR DELETE ON postings", "ledger_posting_guard")),
        (None, statement_trigger("postings_insert_guard", "AFTER INSERT ON postings", "new_postings",
                                 "ledger_postings_insert_guard")),
    ],
)
upgrade, downgrade = CHANGE.upgrade, CHANGE.downgrade

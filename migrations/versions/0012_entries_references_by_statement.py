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
"""

from funding.ddl import GuardChange, Trigger, keys_dropped, statement_trigger

revision = "0012"
down_revision = "0011"

TRIGGERS = [
    statement_trigger("entries_insert_refs", "AFTER INSERT ON entries", "new_entries", "ledger_entries_insert_refs"),
    Trigger("journals_guard", "BEFORE UPDATE OR DELETE ON journals", "ledger_journal_guard"),
    Trigger("sites_ledger_guard", "BEFORE UPDATE OR DELETE ON sites", "ledger_site_guard"),
]
KEYS = [  # (name, definition) of the foreign keys the guards stand in for
    ("fk_entries_journal_code_journals", "FOREIGN KEY (journal_code) REFERENCES journals (code)"),
    ("fk_entries_org_id_organisations", "FOREIGN KEY (org_id) REFERENCES organisations (id)"),
    ("fk_entries_site_id_org_id_sites", "FOREIGN KEY (site_id, org_id) REFERENCES sites (id, org_id)"),
]
CHANGE = GuardChange(
    functions={"ledger_entries_insert_refs": (None, 1), "ledger_entry_update_guard": (3, 4),
               "ledger_journal_guard": (None, 1), "ledger_site_guard": (None, 1)},
    triggers=[(None, trigger) for trigger in TRIGGERS],
    sql=keys_dropped("entries", KEYS),
)
upgrade, downgrade = CHANGE.upgrade, CHANGE.downgrade

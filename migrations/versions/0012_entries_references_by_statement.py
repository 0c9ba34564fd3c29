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
Revises: 0011
Create Date: 2026-12-02 02:05:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

REFS = """
CREATE FUNCTION ledger_entries_insert_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  journal varchar;
  site bigint;
BEGIN
  SELECT n.journal_code INTO journal FROM (SELECT DISTINCT journal_code FROM new_entries) n
    WHERE NOT EXISTS (SELECT 1 FROM journals j WHERE j.code = n.journal_code) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: journal % does not exist', journal USING ERRCODE = '23503';
  END IF;
  SELECT n.site_id INTO site FROM (SELECT DISTINCT site_id, org_id FROM new_entries) n
    WHERE NOT EXISTS (SELECT 1 FROM sites s WHERE s.id = n.site_id AND s.org_id = n.org_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: site % is not a site of the entry''s organisation', site USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$"""

KEEPS = """
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id THEN
    RAISE EXCEPTION 'ledger: an entry keeps its id and organisation' USING ERRCODE = '23503';
  END IF;"""
KEEPS_ALL = """
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.journal_code <> OLD.journal_code OR NEW.site_id <> OLD.site_id THEN
    RAISE EXCEPTION 'ledger: an entry keeps its id, organisation, journal and site' USING ERRCODE = '23503';
  END IF;"""


def update_guard(keeps: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION ledger_entry_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be modified; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;{keeps}
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$"""


JOURNAL_GUARD = """
CREATE FUNCTION ledger_journal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' OR NEW.code <> OLD.code) AND EXISTS (SELECT 1 FROM entries WHERE journal_code = OLD.code) THEN
    RAISE EXCEPTION 'ledger: journal % has entries', OLD.code USING ERRCODE = '23503';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$"""

SITE_GUARD = """
CREATE FUNCTION ledger_site_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id)
     AND EXISTS (SELECT 1 FROM entries WHERE org_id = OLD.org_id AND site_id = OLD.id) THEN
    RAISE EXCEPTION 'ledger: site % has entries', OLD.id USING ERRCODE = '23503';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REFS)
    op.execute(update_guard(KEEPS_ALL))
    op.execute(JOURNAL_GUARD)
    op.execute(SITE_GUARD)
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
    op.execute(update_guard(KEEPS))  # as 0011 left it

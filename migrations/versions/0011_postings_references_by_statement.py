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
Revises: 0010
Create Date: 2026-12-02 01:45:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FROZEN = "ledger: postings of a validated entry cannot be added, changed or deleted"

POSTINGS_GUARD = f"""
CREATE OR REPLACE FUNCTION ledger_postings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  eid bigint;
  missing boolean;
  acct varchar;
BEGIN
  -- Joined on the id alone, so only the primary key can serve each probe: with the org_id
  -- in the join, a planner without statistics took the (org_id, entry_date) index instead
  -- and filtered every entry of the organisation, for every posting's entry.
  SELECT p.entry_id, e.id IS NULL OR e.org_id <> p.org_id INTO eid, missing
    FROM (SELECT DISTINCT entry_id, org_id FROM new_postings) p
    LEFT JOIN entries e ON e.id = p.entry_id
    WHERE e.id IS NULL OR e.org_id <> p.org_id OR e.number IS NOT NULL
    LIMIT 1;
  IF FOUND AND missing THEN
    RAISE EXCEPTION 'ledger: a posting refers to entry %, which its organisation does not have', eid
      USING ERRCODE = '23503';
  ELSIF FOUND THEN
    RAISE EXCEPTION '{FROZEN}' USING ERRCODE = '23001';
  END IF;
  SELECT p.account_number INTO acct
    FROM (SELECT DISTINCT org_id, account_number FROM new_postings) p
    WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = p.org_id AND a.number = p.account_number)
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger: account % is not in the chart of accounts', acct USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$"""

ENTRY_KEEPS_ID = """
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id THEN
    RAISE EXCEPTION 'ledger: an entry keeps its id and organisation' USING ERRCODE = '23503';
  END IF;"""
ENTRY_UPDATE_GUARD = f"""
CREATE OR REPLACE FUNCTION ledger_entry_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be modified; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;{ENTRY_KEEPS_ID}
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$"""

ENTRY_DELETE_GUARD = """
CREATE OR REPLACE FUNCTION ledger_entry_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be deleted; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
  IF EXISTS (SELECT 1 FROM postings WHERE entry_id = OLD.id) THEN
    RAISE EXCEPTION 'ledger: entry % still has postings', OLD.id USING ERRCODE = '23503';
  END IF;
  RETURN OLD;
END $$"""

ACCOUNT_GUARD = """
CREATE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' OR NEW.org_id <> OLD.org_id OR NEW.number <> OLD.number)
     AND EXISTS (SELECT 1 FROM postings WHERE org_id = OLD.org_id AND account_number = OLD.number) THEN
    RAISE EXCEPTION 'ledger: account % has postings', OLD.number USING ERRCODE = '23503';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$"""

# As in 0009 and 0010, for the downgrade.
OLD_POSTINGS_GUARD = f"""
CREATE OR REPLACE FUNCTION ledger_postings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  eid bigint;
BEGIN
  FOR eid IN SELECT DISTINCT entry_id FROM new_postings LOOP
    IF EXISTS (SELECT 1 FROM entries WHERE id = eid AND number IS NOT NULL) THEN
      RAISE EXCEPTION '{FROZEN}' USING ERRCODE = '23001';
    END IF;
  END LOOP;
  RETURN NULL;
END $$"""

OLD_ENTRY_DELETE_GUARD = """
CREATE OR REPLACE FUNCTION ledger_entry_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be deleted; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
  RETURN OLD;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(POSTINGS_GUARD)
    op.execute(ENTRY_UPDATE_GUARD)
    op.execute(ENTRY_DELETE_GUARD)
    op.execute(ACCOUNT_GUARD)
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
    op.execute(OLD_ENTRY_DELETE_GUARD)
    op.execute(OLD_POSTINGS_GUARD)
    op.execute(ENTRY_UPDATE_GUARD.replace(ENTRY_KEEPS_ID, ""))  # as 0010 left it

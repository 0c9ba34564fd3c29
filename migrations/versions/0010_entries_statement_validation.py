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
Revises: 0009
Create Date: 2026-12-02 00:45:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROW_GUARD = """
CREATE OR REPLACE FUNCTION ledger_entry_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be modified; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$"""

# Every row of new_entries with a number was validated by this statement: the row guard
# refuses any update of an entry that already had one.
VALIDATE = """
CREATE FUNCTION ledger_entries_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
  head ledger_heads%ROWTYPE;
  bad bigint;
  lines bigint;
BEGIN
  FOR r IN SELECT org_id, count(*) AS n, min(number) AS lo, max(number) AS hi
           FROM new_entries WHERE number IS NOT NULL GROUP BY org_id ORDER BY org_id LOOP
    SELECT * INTO head FROM ledger_heads WHERE org_id = r.org_id FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'ledger: organisation % has no ledger', r.org_id USING ERRCODE = '23503';
    END IF;
    IF r.lo <> head.last_number + 1 OR r.hi - r.lo + 1 <> r.n THEN
      RAISE EXCEPTION 'ledger: entry number % breaks the gap-free sequence (next is %)',
        CASE WHEN r.lo <> head.last_number + 1 THEN r.lo ELSE r.hi END, head.last_number + 1 USING ERRCODE = '23514';
    END IF;
    SELECT n.number INTO bad FROM new_entries n
      LEFT JOIN new_entries p ON p.org_id = n.org_id AND p.number = n.number - 1 AND p.number IS NOT NULL
      WHERE n.org_id = r.org_id AND n.number IS NOT NULL
        AND n.prev_hash IS DISTINCT FROM CASE WHEN n.number = r.lo THEN head.last_hash ELSE p.hash END
      ORDER BY n.number LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ledger: entry % is not chained to the previous entry', bad USING ERRCODE = '23514';
    END IF;
    IF head.closed_through IS NOT NULL AND EXISTS (
        SELECT 1 FROM new_entries WHERE org_id = r.org_id AND number IS NOT NULL AND entry_date <= head.closed_through) THEN
      RAISE EXCEPTION 'ledger: the period is closed through %; date the entry after it', head.closed_through
        USING ERRCODE = '23514';
    END IF;
    SELECT n.id, (SELECT count(*) FROM postings p WHERE p.entry_id = n.id) INTO bad, lines FROM new_entries n
      WHERE n.org_id = r.org_id AND n.number IS NOT NULL
        AND ((SELECT count(*) FROM postings p WHERE p.entry_id = n.id) < 2
             OR EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = n.id GROUP BY p.currency HAVING sum(p.amount) <> 0))
      LIMIT 1;
    IF FOUND AND lines < 2 THEN
      RAISE EXCEPTION 'ledger: an entry needs at least two postings' USING ERRCODE = '23514';
    ELSIF FOUND THEN
      RAISE EXCEPTION 'ledger: unbalanced entry (debits and credits differ)' USING ERRCODE = '23514';
    END IF;
    UPDATE ledger_heads SET last_number = r.hi,
                            last_hash = (SELECT hash FROM new_entries WHERE org_id = r.org_id AND number = r.hi)
      WHERE org_id = r.org_id;
  END LOOP;
  RETURN NULL;
END $$"""

HEAD_GUARD = """
CREATE OR REPLACE FUNCTION ledger_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'ledger: a ledger head cannot be deleted' USING ERRCODE = '23001';
  END IF;
  IF NEW.last_number < OLD.last_number
     OR (NEW.last_number = OLD.last_number AND NEW.last_hash IS DISTINCT FROM OLD.last_hash)
     OR (NEW.last_number > OLD.last_number AND NOT EXISTS (
           SELECT 1 FROM entries WHERE org_id = NEW.org_id AND number = NEW.last_number AND hash = NEW.last_hash))
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through)) THEN
    RAISE EXCEPTION 'ledger: a ledger head only moves forward' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$"""

# As in 0001, for the downgrade.
OLD_ROW_GUARD = """
CREATE OR REPLACE FUNCTION ledger_entry_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head ledger_heads%ROWTYPE;
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be modified; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
  SELECT * INTO head FROM ledger_heads WHERE org_id = NEW.org_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'ledger: organisation % has no ledger', NEW.org_id USING ERRCODE = '23503';
  END IF;
  IF NEW.number <> head.last_number + 1 THEN
    RAISE EXCEPTION 'ledger: entry number % breaks the gap-free sequence (next is %)', NEW.number, head.last_number + 1
      USING ERRCODE = '23514';
  END IF;
  IF NEW.prev_hash <> head.last_hash THEN
    RAISE EXCEPTION 'ledger: entry % is not chained to the previous entry', NEW.number USING ERRCODE = '23514';
  END IF;
  IF head.closed_through IS NOT NULL AND NEW.entry_date <= head.closed_through THEN
    RAISE EXCEPTION 'ledger: the period is closed through %; date the entry after it', head.closed_through
      USING ERRCODE = '23514';
  END IF;
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
  IF (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2 THEN
    RAISE EXCEPTION 'ledger: an entry needs at least two postings' USING ERRCODE = '23514';
  END IF;
  IF EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'ledger: unbalanced entry (debits and credits differ)' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$"""

OLD_HEAD_GUARD = """
CREATE OR REPLACE FUNCTION ledger_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'ledger: a ledger head cannot be deleted' USING ERRCODE = '23001';
  END IF;
  IF NEW.last_number NOT IN (OLD.last_number, OLD.last_number + 1)
     OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through)) THEN
    RAISE EXCEPTION 'ledger: a ledger head only moves forward' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ROW_GUARD)
    op.execute(VALIDATE)
    op.execute(HEAD_GUARD)
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
    op.execute(OLD_HEAD_GUARD)
    op.execute(OLD_ROW_GUARD)

"""postings: on PostgreSQL, check a whole INSERT at once

The row-level guard ran a PL/pgSQL function and an index probe for every posting; a batch
of webhook events posts hundreds at a time, and that guard was most of the cost. An AFTER
INSERT … FOR EACH STATEMENT trigger sees every new posting in a transition table and checks
them with one primary-key probe per entry: postings can still never be added to a validated entry (same message,
same SQLSTATE). UPDATE and DELETE keep their row-level guard. SQLite is unchanged (it has
no statement-level triggers).

Revision ID: 0009
Create Date: 2026-12-01 21:20:00
"""

from alembic import op

from funding.migrate import sql_function

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_function("ledger_postings_insert_guard", 1))
    op.execute("DROP TRIGGER postings_guard ON postings")
    op.execute("CREATE TRIGGER postings_guard BEFORE UPDATE OR DELETE ON postings FOR EACH ROW "
               "EXECUTE FUNCTION ledger_posting_guard()")
    op.execute("CREATE TRIGGER postings_insert_guard AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_insert_guard()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER postings_insert_guard ON postings")
    op.execute("DROP TRIGGER postings_guard ON postings")
    op.execute("CREATE TRIGGER postings_guard BEFORE INSERT OR UPDATE OR DELETE ON postings FOR EACH ROW "
               "EXECUTE FUNCTION ledger_posting_guard()")
    op.execute("DROP FUNCTION ledger_postings_insert_guard()")

"""seals: every closing anchored outside the database; closings freeze the labels they export with

A seal records the organisation's chain heads at a closing, the row counts of the
append-only tables without a chain of their own, chained and signed with a key the
database never holds (funding.ledger.seals). Seals are append-only like closings.
Closings now keep the labels their period exports with (accounts, auxiliaries, journals,
sites, grants, the organisation), hashed into the closing: a closed period exports
identically forever, renamed account or not.
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import Guards, Trigger, column, create_table, no_truncate, ref, string, text, timestamp, unique
from funding.migrate import sqlite_trigger

revision = "0014"
down_revision = "0013"

GUARDS = Guards(triggers=[Trigger("ledger_seals_frozen", "BEFORE UPDATE OR DELETE ON ledger_seals", "ledger_frozen"),
                          no_truncate("ledger_seals", "ledger_frozen")],
                sqlite=[sqlite_trigger(f"ledger_seals_frozen_{when}", 1) for when in ("update", "delete")])


def upgrade() -> None:
    create_table("ledger_seals", column("id"), ref("org_id", "organisations"), column("seq"), string("kind", 12),
                 string("period", 10), ref("site_id", "sites", null=True), column("entry_number"),
                 string("entry_hash", 64), string("closing_hash", 64), column("bar_seq", null=True),
                 string("bar_hash", 64, null=True), string("bar_closing_hash", 64, null=True),
                 string("bar_archive_hash", 64, null=True), text("counts"), timestamp("sealed_at"),
                 string("key_id", 16), string("prev_hash", 64), string("hash", 64), string("signature", 100),
                 unique("org_id", "prev_hash"), unique("org_id", "seq"))
    with op.batch_alter_table("closings") as batch_op:
        batch_op.add_column(sa.Column("labels", sa.Text(), nullable=True))
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    with op.batch_alter_table("closings") as batch_op:
        batch_op.drop_column("labels")
    op.drop_table("ledger_seals")

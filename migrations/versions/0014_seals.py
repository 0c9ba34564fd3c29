"""seals: every closing anchored outside the database; closings freeze the labels they export with

A seal records the organisation's chain heads at a closing, the row counts of the
append-only tables without a chain of their own, chained and signed with a key the
database never holds (funding.ledger.seals). Seals are append-only like closings.
Closings now keep the labels their period exports with (accounts, auxiliaries, journals,
sites, grants, the organisation), hashed into the closing: a closed period exports
identically forever, renamed account or not.

Revision ID: 0014
Create Date: 2026-12-03 16:00:00
"""

from alembic import op
import sqlalchemy as sa

from funding.migrate import sqlite_trigger

revision = "0014"
down_revision = "0013"

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_seals",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("org_id", BIGINT, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("site_id", BIGINT, nullable=True),
        sa.Column("entry_number", BIGINT, nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("closing_hash", sa.String(length=64), nullable=False),
        sa.Column("bar_seq", BIGINT, nullable=True),
        sa.Column("bar_hash", sa.String(length=64), nullable=True),
        sa.Column("bar_closing_hash", sa.String(length=64), nullable=True),
        sa.Column("bar_archive_hash", sa.String(length=64), nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_ledger_seals_org_id_organisations")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_ledger_seals_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_seals")),
        sa.UniqueConstraint("org_id", "prev_hash", name=op.f("uq_ledger_seals_org_id_prev_hash")),
        sa.UniqueConstraint("org_id", "seq", name=op.f("uq_ledger_seals_org_id_seq")),
    )
    with op.batch_alter_table("closings") as batch_op:
        batch_op.add_column(sa.Column("labels", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER ledger_seals_frozen BEFORE UPDATE OR DELETE ON ledger_seals FOR EACH ROW "
                   "EXECUTE FUNCTION ledger_frozen()")
        op.execute("CREATE TRIGGER ledger_seals_no_truncate BEFORE TRUNCATE ON ledger_seals EXECUTE FUNCTION ledger_frozen()")
    else:
        for when in ("update", "delete"):
            op.execute(sqlite_trigger(f"ledger_seals_frozen_{when}", 1))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_seals_no_truncate ON ledger_seals")
        op.execute("DROP TRIGGER ledger_seals_frozen ON ledger_seals")
    else:
        op.execute("DROP TRIGGER ledger_seals_frozen_update")
        op.execute("DROP TRIGGER ledger_seals_frozen_delete")
    with op.batch_alter_table("closings") as batch_op:
        batch_op.drop_column("labels")
    op.drop_table("ledger_seals")

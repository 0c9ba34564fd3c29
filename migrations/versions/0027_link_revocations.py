"""link revocations: every emailed link of an address can be revoked at once

A backer or donor who forwarded an email by mistake (or staff, for them) revokes the links of
contributions and tax receipts sent to their address: a link signed before ``revoked_before``
no longer opens, and fresh links go out by email. One row per hashed address (a keyed hash,
never the address itself), moved forward at each revocation.
"""

from alembic import op

from funding.ddl import create_table, string, timestamp

revision = "0027"
down_revision = "0020"


def upgrade() -> None:
    create_table("link_revocations", string("email_hash", 64), timestamp("revoked_before"), primary_key=("email_hash",))


def downgrade() -> None:
    op.drop_table("link_revocations")

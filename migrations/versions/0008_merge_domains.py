"""one head: the campaigns, coworking, bar and exports branches

Revision ID: 0008
Create Date: 2026-11-28 11:46:51.026676
"""

revision = "0008"
down_revision = ("0004", "0005", "0006", "0007")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

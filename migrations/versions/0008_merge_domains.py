"""one head: the campaigns, coworking, bar and exports branches"""

revision = "0008"
down_revision = ("0004", "0005", "0006", "0007")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

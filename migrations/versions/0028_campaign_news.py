"""campaigns that travel: news to backers who agreed, reminders before an all-or-nothing deadline

A campaign's staff publish updates (shown on its page, emailed to the backers who ticked the
box when they contributed: ``campaign_pledges.wants_updates``); a visitor may ask to be
reminded 48 hours before an all-or-nothing campaign ends (one email, then ``sent_at``).
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import column, create_table, index, ref, string, text, timestamp, unique

revision = "0028"
down_revision = "0027"


def upgrade() -> None:
    with op.batch_alter_table("campaign_pledges") as batch_op:
        batch_op.add_column(sa.Column("wants_updates", sa.Boolean(), nullable=False, server_default=sa.false()))
    create_table("campaign_updates", column("id"), ref("campaign_id", "campaigns"), string("title", 200), text("body"),
                 string("author", 254), timestamp("published_at"), column("recipients"),
                 index("campaign_id", "published_at", name="ix_campaign_updates_campaign"))
    create_table("campaign_reminders", column("id"), ref("campaign_id", "campaigns"), string("email", 254),
                 string("locale", 5), timestamp("created_at"), timestamp("sent_at", null=True), unique("campaign_id", "email"))


def downgrade() -> None:
    op.drop_table("campaign_reminders")
    op.drop_table("campaign_updates")
    with op.batch_alter_table("campaign_pledges") as batch_op:
        batch_op.drop_column("wants_updates")

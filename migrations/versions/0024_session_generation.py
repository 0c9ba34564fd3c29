"""session generation: a person's sessions can be ended, every one at once

A session cookie named the person only, and stayed good for 14 days whatever happened: a
copied cookie outlived a logout. Each person now has a session generation, written into
the signed cookie at login and compared on every request; logging out, a role given or
taken away, "log out everywhere" (the person, or staff for them) move it on, and every
cookie carrying an older one is logged out.
"""

from alembic import op

from funding.ddl import column

revision = "0024"
down_revision = "0022"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(column("session_generation", server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")

"""memberships: roles held in an organisation (or the network), not on the person; emails know their organisation

A person held one role, with at most one organisation, and routes checked the role only:
an accountant of one organisation could read another's books. A membership is a role in
one organisation (``org_id``), or in every one (``org_id`` NULL: the network, granted
explicitly). Existing accounts keep exactly what they could do: a role with an
organisation becomes a membership there; a team role without one becomes a membership
of the only organisation if there is one, else a network role (it already saw them all);
a member without one becomes a member of the organisations they have a coworking record,
a bar sale or a tab at. Emails now say which organisation they are about, so that each
organisation's staff see only theirs.
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import BIGINT, check, column, create_table, index, ref, string, timestamp, unique

revision = "0013"
down_revision = "0012"

# Who held what, as memberships. :now is the migration's time.
COPY = [
    # A role named with its organisation.
    """INSERT INTO memberships (user_id, org_id, role, granted_at, granted_by)
       SELECT id, org_id, role, :now, 'migration 0013' FROM users WHERE org_id IS NOT NULL""",
    # A team role without an organisation, where there is only one organisation: that one.
    """INSERT INTO memberships (user_id, org_id, role, granted_at, granted_by)
       SELECT u.id, o.id, u.role, :now, 'migration 0013' FROM users u, organisations o
       WHERE u.org_id IS NULL AND u.role <> 'member' AND (SELECT count(*) FROM organisations) = 1""",
    # … where there are several: the network, as before.
    """INSERT INTO memberships (user_id, org_id, role, granted_at, granted_by)
       SELECT id, NULL, role, :now, 'migration 0013' FROM users
       WHERE org_id IS NULL AND role <> 'member' AND (SELECT count(*) FROM organisations) > 1""",
    # A member without an organisation: where they have a coworking record, a bar line or a tab.
    """INSERT INTO memberships (user_id, org_id, role, granted_at, granted_by)
       SELECT DISTINCT u.id, x.org_id, 'member', :now, 'migration 0013' FROM users u JOIN (
           SELECT user_id, org_id FROM coworking_members
           UNION SELECT member_id, org_id FROM bar_sale_lines WHERE member_id IS NOT NULL
           UNION SELECT member_id, org_id FROM bar_batches
           UNION SELECT u2.id, o.id FROM users u2, organisations o WHERE (SELECT count(*) FROM organisations) = 1
       ) x ON x.user_id = u.id
       WHERE u.org_id IS NULL AND u.role = 'member'""",
]


def upgrade() -> None:
    create_table("memberships", column("id"), ref("user_id", "users"), ref("org_id", "organisations", null=True),
                 string("role", 20), timestamp("granted_at"), string("granted_by", 254),
                 check("role", "role IN ('admin', 'staff', 'accountant', 'member')"),
                 check("member_of_an_organisation", "org_id IS NOT NULL OR role <> 'member'"),
                 unique("user_id", "org_id", "role"), index("org_id"), index("user_id"),
                 index("user_id", "role", name="uq_memberships_network", unique=True,
                       sqlite_where=sa.text("org_id IS NULL"), postgresql_where=sa.text("org_id IS NULL")))

    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for sql in COPY:
        op.get_bind().execute(sa.text(sql).bindparams(sa.bindparam("now", type_=sa.DateTime())), {"now": now})

    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.drop_constraint(op.f("fk_users_org_id_organisations"), type_="foreignkey")
        batch_op.drop_column("role")
        batch_op.drop_column("org_id")

    with op.batch_alter_table("emails") as batch_op:
        batch_op.add_column(sa.Column("org_id", BIGINT, nullable=True))
        batch_op.create_index(batch_op.f("ix_emails_org_id"), ["org_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_emails_org_id_organisations"), "organisations", ["org_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("emails") as batch_op:
        batch_op.drop_constraint(op.f("fk_emails_org_id_organisations"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_emails_org_id"))
        batch_op.drop_column("org_id")
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=20), nullable=False, server_default="member"))
        batch_op.add_column(sa.Column("org_id", BIGINT, nullable=True))
    # Back to one role per person: the strongest they hold, with its organisation.
    op.execute("""UPDATE users SET
        role = coalesce((SELECT m.role FROM memberships m WHERE m.user_id = users.id ORDER BY
                         CASE m.role WHEN 'admin' THEN 0 WHEN 'staff' THEN 1 WHEN 'accountant' THEN 2 ELSE 3 END LIMIT 1),
                        'member'),
        org_id = (SELECT m.org_id FROM memberships m WHERE m.user_id = users.id ORDER BY
                  CASE m.role WHEN 'admin' THEN 0 WHEN 'staff' THEN 1 WHEN 'accountant' THEN 2 ELSE 3 END LIMIT 1)""")
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("role", server_default=None)
        batch_op.create_check_constraint(op.f("ck_users_role"), "role IN ('admin', 'staff', 'accountant', 'member')")
        batch_op.create_foreign_key(op.f("fk_users_org_id_organisations"), "organisations", ["org_id"], ["id"])
    with op.batch_alter_table("memberships") as batch_op:
        batch_op.drop_index("uq_memberships_network")
        batch_op.drop_index(batch_op.f("ix_memberships_user_id"))
        batch_op.drop_index(batch_op.f("ix_memberships_org_id"))
    op.drop_table("memberships")

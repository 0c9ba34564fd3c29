"""Exports: log of exports taken, monthly recipients and sendings; email attachments by reference"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import boolean, column, create_table, date, drop_tables, index, ref, string, timestamp, unique

revision = "0007"
down_revision = "0002"


def upgrade() -> None:
    create_table("export_recipients", column("id"), ref("org_id", "organisations"), string("email", 254),
                 string("name", 200), string("formats", 100), boolean("active"), timestamp("created_at"),
                 unique("org_id", "email"))
    create_table("export_runs", column("id"), ref("org_id", "organisations"), string("period", 7), column("emails"),
                 string("created_by", 254), timestamp("created_at"), unique("org_id", "period"))
    create_table("export_logs", column("id"), ref("org_id", "organisations", null=True),
                 ref("site_id", "sites", null=True), string("format", 20), date("start_date"), date("end_date"),
                 string("filename", 200), string("sha256", 64), column("size"), column("rows"), boolean("closed"),
                 string("taken_by", 254), string("channel", 10), timestamp("taken_at"), index("taken_at"))
    with op.batch_alter_table("emails") as batch_op:
        batch_op.add_column(sa.Column("attachments", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("emails") as batch_op:
        batch_op.drop_column("attachments")
    drop_tables("export_logs", "export_runs", "export_recipients")

"""bar: what each tab owes, kept as lines are rung and claimed (issue 19)

The tab limit (each tap) and a tab's balance summed every line the member was ever served at
the organisation's sites, claimed by a batch or not: a tap cost more with each month of
history (0.65 ms of PostgreSQL for 250 lines, in the bar bench). ``bar_tabs`` holds, per site and
member, the amount of the lines no batch has claimed: a line on a tab adds its amount (a
cancellation, negative, takes it back), a batch's claim takes the claimed lines' amounts off;
both by triggers, so that every way a line or a claim is written keeps it. The service's role
reads it and never writes it (PostgreSQL: the triggers' functions are SECURITY DEFINER).
``bar_ring_up`` v2 reads it. Filled here from the lines and claims as they stand.
"""

from alembic import op

from funding import ddl
from funding.migrate import sql_function, sqlite_trigger

revision = "0044"
down_revision = "0043"

TRIGGERS = (
    ddl.Trigger("bar_tab_ring", "AFTER INSERT ON bar_sale_lines", "bar_tab_ring", when="NEW.member_id IS NOT NULL"),
    ddl.statement_trigger("bar_tab_claim", "AFTER INSERT ON bar_batch_lines", "new_claims", "bar_tab_claim"),
)
FILL = """INSERT INTO bar_tabs (site_id, member_id, org_id, owed)
SELECT l.site_id, l.member_id, min(l.org_id), sum(l.amount) FROM bar_sale_lines l
 WHERE l.member_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bar_batch_lines b WHERE b.sale_line_id = l.id)
 GROUP BY l.site_id, l.member_id"""


def upgrade() -> None:
    ddl.create_table("bar_tabs", ddl.ref("site_id", "sites"), ddl.ref("member_id", "users"),
                     ddl.ref("org_id", "organisations"), ddl.column("owed"), ddl.index("member_id"),
                     primary_key=("site_id", "member_id"))
    if ddl.is_postgresql():
        op.execute("LOCK TABLE bar_sale_lines, bar_batch_lines IN SHARE MODE")  # no line nor claim while it fills
        op.execute(sql_function("bar_tab_ring", 1))
        op.execute(sql_function("bar_tab_claim", 1))
        for trigger in TRIGGERS:
            op.execute(trigger.create())
        op.execute(sql_function("bar_ring_up", 2))
    else:
        op.execute(sqlite_trigger("bar_tab_ring", 1))
        op.execute(sqlite_trigger("bar_tab_claim", 1))
    op.execute(FILL)


def downgrade() -> None:
    if ddl.is_postgresql():
        op.execute(sql_function("bar_ring_up", 1))
        for trigger in TRIGGERS:
            op.execute(trigger.drop())
        op.execute("DROP FUNCTION bar_tab_claim()")
        op.execute("DROP FUNCTION bar_tab_ring()")
    else:
        op.execute("DROP TRIGGER bar_tab_claim")
        op.execute("DROP TRIGGER bar_tab_ring")
    op.drop_table("bar_tabs")

"""bar: a day closed before midnight keeps its later lines, closed again (issue 17)

Closing the till at noon filed the afternoon's lines under tomorrow: a line could not be dated
on a closed day. Now a line is dated on its Paris day even when that day was closed already
(never on an earlier one), and a further closing of that day covers the lines rung after the
previous one (period ``2026-12-05/2``…, hence 16 characters). The guards refuse a line dated
before the last closed day, and a day's closing of a day before it.
"""

from alembic import op

from funding import ddl
from funding.ddl import GuardChange

revision = "0039"
down_revision = "0038"

GUARD = GuardChange(functions={"bar_line_insert_guard": (1, 2), "bar_closing_insert_guard": (1, 2)})


def _line_guard(strict: bool) -> str:
    compare = "<" if strict else "<="
    return f"""CREATE TRIGGER bar_lines_insert_guard BEFORE INSERT ON bar_sale_lines
BEGIN
  {ddl.abort("bar: site has no till")}
    WHERE NOT EXISTS (SELECT 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: sale line breaks the gap-free sequence")}
    WHERE NEW.seq <> (SELECT last_seq + 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: sale line is not chained to the previous line")}
    WHERE NEW.prev_hash <> (SELECT last_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: the day is closed")}
    WHERE NEW.day {compare} (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END"""  # noqa: S608 — only messages written here are interpolated, never input


def _closing_guard(strict: bool) -> str:
    compare = "<" if strict else "<="
    return f"""CREATE TRIGGER bar_closings_insert_guard BEFORE INSERT ON bar_closings
BEGIN
  {ddl.abort("bar: closing is not chained to the previous closing")}
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: the day is already closed")}
    WHERE NEW.kind = 'day' AND NEW.end_date {compare} (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END"""  # noqa: S608 — only messages written here are interpolated, never input


def _change(after: bool) -> None:
    if ddl.is_postgresql():
        op.execute(f"ALTER TABLE bar_closings ALTER COLUMN period TYPE varchar({16 if after else 10})")
        (GUARD.upgrade if after else GUARD.downgrade)()
        return
    # SQLite does not hold a VARCHAR to its length (the model says so for it): only the triggers change.
    op.execute("DROP TRIGGER bar_lines_insert_guard")
    op.execute(_line_guard(strict=after))
    op.execute("DROP TRIGGER bar_closings_insert_guard")
    op.execute(_closing_guard(strict=after))


def upgrade() -> None:
    _change(after=True)


def downgrade() -> None:
    _change(after=False)

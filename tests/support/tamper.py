"""What an intruder with database access does, for the tests of the books' defences."""

from __future__ import annotations

from sqlalchemy import text


async def without_triggers(engine, statements: list[str]) -> None:
    """What an intruder with database access does: switch the guards off and edit rows."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for sql in statements:
                await conn.execute(text(sql))
        else:
            triggers = (await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))).all()
            for name, _ in triggers:
                await conn.execute(text(f"DROP TRIGGER {name}"))
            for sql in statements:
                await conn.execute(text(sql))
            for _, sql in triggers:
                await conn.execute(text(sql))

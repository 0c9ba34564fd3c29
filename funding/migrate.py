"""Run the Alembic migrations that live at the root of the source tree."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from funding.settings import PROJECT_ROOT


SQL_DIR = PROJECT_ROOT / "migrations" / "sql"


def sql_function(name: str, version: int) -> str:
    """A database function as one version of it stands in ``migrations/sql/<name>.v<N>.sql``.

    Migrations name the version they install (and the one their downgrade restores): a
    changed function is a new file, so that a diff shows what changed, and no body is
    written twice."""
    text_ = (SQL_DIR / f"{name}.v{version}.sql").read_text(encoding="utf-8")
    return text_.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def sqlite_trigger(name: str, version: int) -> str:
    """A SQLite trigger (``migrations/sql/sqlite/<name>.v<N>.sql``): SQLite has no functions, its
    triggers carry their bodies, kept once per version in the same way."""
    return (SQL_DIR / "sqlite" / f"{name}.v{version}.sql").read_text(encoding="utf-8")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Blocking: call it from a thread when an event loop is running. Domains may add
    migrations on branches of their own; ``heads`` applies every branch."""
    command.upgrade(alembic_config(database_url), revision)


def upgrade_and_grant(settings) -> str | None:
    """``funding db upgrade``: the migrations as the owner (MIGRATION_DATABASE_URL), then the
    service's role (DATABASE_URL) created if missing and granted what funding.grants says.
    Returns that role, or None with a single role (SQLite, or a platform's one role)."""
    import asyncio

    from funding import grants

    upgrade(settings.migration_database_url or settings.database_url)
    return asyncio.run(grants.apply(settings.migration_database_url or settings.database_url, settings.database_url))


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(conn: AsyncConnection) -> frozenset[str] | None:
    try:
        return frozenset((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all())
    except Exception:
        return None

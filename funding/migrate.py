"""Run the Alembic migrations that live at the root of the source tree."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from funding.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "migrations" / "sql"
TEMPLATES_DIR = SQL_DIR / "templates"


def sql_function(name: str, version: int) -> str:
    """A database function as one version of it stands in ``migrations/sql/<name>.v<N>.sql``.

    Migrations name the version they install (and the one their downgrade restores): a
    changed function is a new file, so that a diff shows what changed, and no body is
    written twice: a version may be a template's sections (see migrations/README.md)."""
    text_ = render_sql(SQL_DIR / f"{name}.v{version}.sql", {"function": name})
    return text_.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


_SECTION = re.compile(r"^-- (\w+):(?: (.+))?\n", re.M)
_PLACEHOLDER = re.compile(r"^[ \t]*\{(\w+)\}\n|\{(\w+)\}", re.M)


def render_sql(path: Path, values: dict[str, str]) -> str:
    """The file as it stands, or, when it opens with ``-- template: <name>``, the template
    ``migrations/sql/templates/<name>.sql`` (itself a file of either kind) with each ``{section}``
    filled from the file's ``-- section:`` blocks (``-- section: value`` for a value on one line).
    A placeholder alone on its line takes a block of lines: the section of that name, else the
    template of that name (a block that several functions share), else nothing. One within a line
    takes a value."""
    frame, sections = _frame(path)
    used: set[str] = set()
    text_ = _fill(frame, {**values, **sections}, path, used)
    if set(sections) - used:
        raise ValueError(f"{path.name}: its template has no place for {sorted(set(sections) - used)}")
    return text_


def _frame(path: Path) -> tuple[str, dict[str, str]]:
    source = path.read_text(encoding="utf-8")
    if not source.startswith("-- template: "):
        return source, {}
    parts = _SECTION.split(source)  # ["", "template", name, "", section, None, text, …]
    frame, inherited = _frame(TEMPLATES_DIR / f"{parts[2]}.sql")
    own = {name: text_ if value is None else value
           for name, value, text_ in zip(parts[4::3], parts[5::3], parts[6::3], strict=True)}
    return frame, {**inherited, **own}


def _fill(text_: str, values: dict[str, str], path: Path, used: set[str]) -> str:
    def one(match: re.Match[str]) -> str:
        block, inline = match.groups()
        if block is not None:
            used.add(block)
            return _fill(values[block] if block in values else _shared_block(block), values, path, used)
        if inline not in values:
            raise ValueError(f"{path.name}: nothing to put in {{{inline}}}")
        used.add(inline)
        return values[inline].rstrip("\n")

    return _PLACEHOLDER.sub(one, text_)


def _shared_block(name: str) -> str:
    shared = TEMPLATES_DIR / f"{name}.sql"
    return shared.read_text(encoding="utf-8") if shared.is_file() else ""


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

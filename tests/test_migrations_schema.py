"""A revision, once it has run on a deployed database, makes the same schema forever.

Migrations may be rewritten (to say something once, to read better), never changed in what
they make. On each engine a fresh database is migrated one revision at a time, then taken
back down to nothing, and a second one straight to the heads (as ``funding db upgrade``
does); after every step its schema is read (SQLite: ``sqlite_master``; PostgreSQL:
``pg_dump --schema-only`` less its comments and session settings) and its SHA-256 compared
with the one recorded in ``tests/migrations_schema.json``. Steps not recorded there (a
revision still being written) are not compared: record them when the revision ships,

    python -m tests.test_migrations_schema --record

and never re-record a shipped revision to make this test pass. When a fingerprint differs,
``python -m tests.test_migrations_schema --dump DIR`` on both commits writes the schemas
themselves, to diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

RECORD = Path(__file__).with_name("migrations_schema.json")


def _steps(config) -> list[tuple[str, str, str]]:
    """(label, command, target): every revision up one at a time, then down through each
    revision that every path passes (a merge's branches come down together), to nothing."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    order = [s.revision for s in script.walk_revisions()][::-1]
    below = {rev: {s.revision for s in script.iterate_revisions(rev, "base")} - {rev} for rev in order}
    trunk = [rev for rev in order if all(rev in below[o] or o in below[rev] or o == rev for o in order)]
    steps = [(f"up {rev}", "upgrade", rev) for rev in order]
    steps += [(f"down {rev}", "downgrade", rev) for rev in trunk[-2::-1]]
    return [*steps, ("down base", "downgrade", "base")]


def sqlite_schema(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return "".join(f"-- {kind} {name} ON {table}\n{_constraints_sorted(sql or '')};\n" for kind, name, table, sql in rows)


def _constraints_sorted(sql: str) -> str:
    """A CREATE TABLE with its table constraints in name order: Alembic's batch rebuild writes
    them in an order that means nothing and changes from one run to the next."""
    lines = sql.split("\n")
    at = [i for i, line in enumerate(lines) if line.startswith("\tCONSTRAINT ")]
    if not at:
        return sql
    first, last = at[0], at[-1]
    if last - first + 1 != len(at):  # not one run after the columns: leave it as written
        return sql
    items = sorted(line.removesuffix(", ") for line in lines[first:last + 1])
    tail = ", " if lines[last].endswith(", ") else ""
    lines[first:last + 1] = [f"{item}, " for item in items[:-1]] + [items[-1] + tail]
    return "\n".join(lines)


def pg_schema(libpq_url: str) -> str:
    out = subprocess.run(["pg_dump", "--schema-only", "--no-owner", libpq_url],
                         check=True, capture_output=True, text=True).stdout
    kept = [line for line in out.splitlines()
            if line.strip() and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict"))]
    return "\n".join(kept) + "\n"


class _Database:
    """A fresh, empty database of one engine: its URL for the migrations, and its schema."""

    def __init__(self, dialect: str, workdir: Path):
        self.dialect = dialect
        if dialect == "sqlite":
            self.path = workdir / f"schema-{secrets.token_hex(3)}.db"
            self.url = f"sqlite+aiosqlite:///{self.path}"
            return
        from tests.support.db import PG_ADMIN_URL, pg_admin, run_async

        self.name = f"funding_schema_{os.getpid()}_{secrets.token_hex(3)}"
        run_async(lambda: pg_admin(f'CREATE DATABASE "{self.name}"'))
        self.libpq_url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.name}".replace("postgresql+asyncpg://", "postgresql://")
        self.url = self.libpq_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def schema(self) -> str:
        return sqlite_schema(self.path) if self.dialect == "sqlite" else pg_schema(self.libpq_url)

    def drop(self) -> None:
        if self.dialect == "postgresql":
            from tests.support.db import pg_admin, run_async

            run_async(lambda: pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def schemas(dialect: str, workdir: Path) -> dict[str, str]:
    """Every step's schema on ``dialect``, by its label (see _steps), and ``heads at once``."""
    from alembic import command

    from funding.migrate import alembic_config

    found = {}
    stepwise, at_once = _Database(dialect, workdir), _Database(dialect, workdir)
    try:
        config = alembic_config(stepwise.url)
        for label, verb, target in _steps(config):
            getattr(command, verb)(config, target)
            found[label] = stepwise.schema()
        command.upgrade(alembic_config(at_once.url), "heads")
        found["heads at once"] = at_once.schema()
    finally:
        stepwise.drop()
        at_once.drop()
    return found


def fingerprint(schema: str) -> str:
    return hashlib.sha256(schema.encode()).hexdigest()


def _run_blocking(fn, *args):
    from tests.support.db import run_blocking

    return run_blocking(fn, *args)  # the migrations run their own event loop


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_revision_makes_the_schema_it_always_made(dialect, tmp_path, request):
    if dialect == "postgresql":
        url, reason = request.getfixturevalue("pg_database")
        if url is None:
            from tests.support.db import skip_or_fail

            skip_or_fail(reason)
        if shutil.which("pg_dump") is None:
            from tests.support.db import skip_or_fail

            skip_or_fail("pg_dump (postgresql-client) is needed to read the schema")
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))[dialect]
    found = {label: fingerprint(schema) for label, schema in _run_blocking(schemas, dialect, tmp_path).items()}
    changed = sorted(label for label in found.keys() & recorded.keys() if found[label] != recorded[label])
    assert not changed, (
        f"{dialect}: these steps no longer make the schema they made: {changed}. A shipped revision must "
        "not change what it makes; diff `python -m tests.test_migrations_schema --dump DIR` before and after.")
    assert recorded.keys() <= found.keys(), f"recorded steps that no longer exist: {sorted(recorded.keys() - found.keys())}"


def main(argv: list[str]) -> None:
    if argv[:1] == ["--record"]:
        with tempfile.TemporaryDirectory() as tmp:
            record = {dialect: {label: fingerprint(s) for label, s in schemas(dialect, Path(tmp)).items()}
                      for dialect in ("sqlite", "postgresql")}
        RECORD.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"recorded {sum(map(len, record.values()))} steps in {RECORD}")
    elif argv[:1] == ["--dump"] and len(argv) == 2:
        out = Path(argv[1])
        with tempfile.TemporaryDirectory() as tmp:
            for dialect in ("sqlite", "postgresql"):
                (out / dialect).mkdir(parents=True, exist_ok=True)
                for label, schema in schemas(dialect, Path(tmp)).items():
                    (out / dialect / f"{label.replace(' ', '_')}.sql").write_text(schema, encoding="utf-8")
        print(f"schemas written under {out}")
    else:
        raise SystemExit("usage: python -m tests.test_migrations_schema --record | --dump DIR")


if __name__ == "__main__":
    main(sys.argv[1:])

"""What the migrations write again and again, written once.

A table is made by :func:`create_table` from its columns and the constraints that are its
own; the names of its constraints and indexes follow the project's convention (``pk_``,
``fk_``, ``ck_``, ``uq_``, ``ix_`` with the table's name, as funding.models names them), and
they are made in the order Alembic's autogenerate wrote them, so that a migration rewritten
with these helpers sends the databases the same DDL it always did (tests/test_migrations_schema.py
holds every revision to that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import op

# The project's integer: BIGINT on PostgreSQL, INTEGER on SQLite (where only that is a rowid).
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def column(name: str, type_: sa.types.TypeEngine = BIGINT, *, null: bool = False, **kw) -> sa.Column:
    return sa.Column(name, type_, nullable=null, **kw)


def string(name: str, length: int, *, null: bool = False) -> sa.Column:
    return column(name, sa.String(length=length), null=null)


def text(name: str, *, null: bool = False) -> sa.Column:
    return column(name, sa.Text(), null=null)


def boolean(name: str) -> sa.Column:
    return column(name, sa.Boolean())


def date(name: str, *, null: bool = False) -> sa.Column:
    return column(name, sa.Date(), null=null)


def timestamp(name: str, *, null: bool = False) -> sa.Column:
    return column(name, sa.DateTime(), null=null)


def bigint(name: str, *, null: bool = False) -> sa.Column:
    """A BIGINT on SQLite too (Stripe's timestamps and versions)."""
    return column(name, sa.BigInteger(), null=null)


def ref(name: str, table: str, *, null: bool = False, **kw) -> sa.Column:
    """An integer column that refers to ``table``'s id: its foreign key is made with the table."""
    result = column(name, null=null, **kw)
    result.info["refers_to"] = table
    return result


@dataclass(frozen=True)
class _Constraint:
    kind: str  # "check", "foreign_key", "unique"
    args: tuple
    kw: dict = field(default_factory=dict)


def check(suffix: str, sql: str) -> _Constraint:
    """``ck_<table>_<suffix>``."""
    return _Constraint("check", (suffix, sql))


def unique(*columns: str) -> _Constraint:
    return _Constraint("unique", columns)


def foreign_key(columns: list[str], table: str, referred: list[str]) -> _Constraint:
    """A key of several columns (one column: :func:`ref`)."""
    return _Constraint("foreign_key", (tuple(columns), table, tuple(referred)))


@dataclass(frozen=True)
class _Index:
    columns: tuple[str, ...]
    name: str | None
    kw: dict


def index(*columns: str, name: str | None = None, **kw) -> _Index:
    """``ix_<table>_<column>`` for one column; an index of several is named."""
    return _Index(columns, name, kw)


def create_table(name: str, *items, primary_key: tuple[str, ...] = ("id",)) -> None:
    """The table, then its indexes. Constraints are made checks first (as listed), then foreign
    keys (by their columns), the primary key, the unique ones (as listed)."""
    columns = [item for item in items if isinstance(item, sa.Column)]
    given = [item for item in items if isinstance(item, _Constraint)]
    keys = [((c.name,), c.info["refers_to"], ("id",)) for c in columns if "refers_to" in c.info]
    keys += [c.args for c in given if c.kind == "foreign_key"]
    constraints: list[sa.Constraint] = [sa.CheckConstraint(sql, name=op.f(f"ck_{name}_{suffix}"))
                                        for suffix, sql in (c.args for c in given if c.kind == "check")]
    constraints += [
        sa.ForeignKeyConstraint(list(cols), [f"{table}.{r}" for r in referred],
                                name=op.f(f"fk_{name}_{'_'.join(cols)}_{table}"))
        for cols, table, referred in sorted(keys)
    ]
    constraints.append(sa.PrimaryKeyConstraint(*primary_key, name=op.f(f"pk_{name}")))
    constraints += [sa.UniqueConstraint(*c.args, name=op.f(f"uq_{name}_{'_'.join(c.args)}"))
                    for c in given if c.kind == "unique"]
    op.create_table(name, *columns, *constraints)
    for ix in (item for item in items if isinstance(item, _Index)):
        op.create_index(ix.name or op.f(f"ix_{name}_{'_'.join(ix.columns)}"), name, list(ix.columns),
                        **{"unique": False, **ix.kw})


def drop_tables(*names: str) -> None:
    """In the order given (referring tables first); their indexes go with them."""
    for name in names:
        op.drop_table(name)


@dataclass(frozen=True)
class Trigger:
    """A PostgreSQL trigger: ``CREATE TRIGGER <name> <on> FOR EACH <each> [WHEN (<when>)] EXECUTE
    FUNCTION <function>()``, where ``on`` is its timing, events and table (``BEFORE INSERT ON
    entries``, ``AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings``)."""

    name: str
    on: str
    function: str
    each: str = "ROW"
    when: str = ""

    @property
    def table(self) -> str:
        return self.on.split(" ON ", 1)[1].split()[0]

    def create(self) -> str:
        when = f" WHEN ({self.when})" if self.when else ""
        return f"CREATE TRIGGER {self.name} {self.on} FOR EACH {self.each}{when} EXECUTE FUNCTION {self.function}()"

    def drop(self) -> str:
        return f"DROP TRIGGER IF EXISTS {self.name} ON {self.table}"


def statement_trigger(name: str, on: str, rows: str, function: str) -> Trigger:
    """Once per statement, which sees the rows it inserted or updated as the transition table ``rows``."""
    return Trigger(name, f"{on} REFERENCING NEW TABLE AS {rows}", function, each="STATEMENT")


def no_truncate(table: str, function: str, *, name: str = "") -> Trigger:
    """``<table>_no_truncate`` unless named: TRUNCATE skips the row triggers, so it has its own."""
    return Trigger(name or f"{table}_no_truncate", f"BEFORE TRUNCATE ON {table}", function, each="STATEMENT")


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True)
class Guards:
    """A domain's database-side rules: on PostgreSQL its functions (``CREATE FUNCTION`` statements)
    and the triggers that run them, on SQLite its triggers (``CREATE TRIGGER`` statements, which
    carry their bodies). Installed together, removed together (triggers first)."""

    functions: Sequence[str] = ()
    triggers: Sequence[Trigger] = ()
    sqlite: Sequence[str] = ()

    def install(self) -> None:
        statements = [*self.functions, *(t.create() for t in self.triggers)] if is_postgresql() else self.sqlite
        for sql in statements:
            op.execute(sql)

    def remove(self) -> None:
        if is_postgresql():
            statements = [t.drop() for t in self.triggers]
            statements += [f"DROP FUNCTION IF EXISTS {_named(sql, 'FUNCTION')}()" for sql in self.functions]
        else:
            statements = [f"DROP TRIGGER IF EXISTS {_named(sql, 'TRIGGER')}" for sql in self.sqlite]
        for sql in statements:
            op.execute(sql)


def abort(message: str) -> str:
    """What a SQLite trigger says to refuse a change."""
    return f"SELECT RAISE(ABORT, '{message}')"


def _named(create: str, kind: str) -> str:
    found = re.search(rf"CREATE (?:OR REPLACE )?{kind} (\w+)", create)
    if found is None:
        raise ValueError(f"not a CREATE {kind} statement: {create[:80]!r}")
    return found.group(1)


@dataclass(frozen=True)
class GuardChange:
    """A change of PostgreSQL's guards that a migration makes, and undoes on downgrade (SQLite,
    without statement-level triggers, is left as it is).

    ``functions`` maps a function of migrations/sql to its version (before, after), None where it
    does not exist; ``triggers`` are (before, after) pairs, None where there is none; ``sql`` are
    (upgrade, downgrade) statements (None: nothing) run last on upgrade, first on downgrade."""

    functions: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    triggers: Sequence[tuple[Trigger | None, Trigger | None]] = ()
    sql: Sequence[tuple[str, str]] = ()

    def upgrade(self) -> None:
        if is_postgresql():
            self._apply(self.functions, self.triggers)
            for sql, _undo in self.sql:
                if sql:
                    op.execute(sql)

    def downgrade(self) -> None:
        if is_postgresql():
            for _sql, undo in reversed(self.sql):
                if undo:
                    op.execute(undo)
            self._apply({name: (after, before) for name, (before, after) in self.functions.items()},
                        [(after, before) for before, after in reversed(self.triggers)])

    @staticmethod
    def _apply(functions, triggers) -> None:
        from funding.migrate import sql_function

        for name, (_before, after) in functions.items():
            if after is not None:
                op.execute(sql_function(name, after))
        for before, after in triggers:
            if before is not None:
                op.execute(before.drop())
            if after is not None:
                op.execute(after.create())
        for name, (_before, after) in functions.items():
            if after is None:
                op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def keys_dropped(table: str, keys: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """GuardChange.sql for foreign keys (name, definition) that the change drops and its undoing adds."""
    return [(f"ALTER TABLE {table} DROP CONSTRAINT {name}", f"ALTER TABLE {table} ADD CONSTRAINT {name} {key}")
            for name, key in keys]


@contextmanager
def sqlite_rebuild(table: str, triggers: Sequence[str] = ()):
    """SQLite's way to alter a key or a check: a new table, the rows copied, the old one dropped
    (foreign keys off meanwhile, see migrations/env.py). The legacy rename leaves the triggers of
    other tables that name this one be, instead of checking them against a table that is, for that
    moment, gone; the table's own triggers go with it and are made again (``triggers``)."""
    op.execute("PRAGMA legacy_alter_table = ON")
    with op.batch_alter_table(table, recreate="always") as batch_op:
        yield batch_op
    op.execute("PRAGMA legacy_alter_table = OFF")
    for sql in triggers:
        op.execute(sql)


def revision_module(revision: str):
    """Another revision's module, for a migration that undoes what it made (call it while migrating)."""
    script = op.get_context().script
    if script is None:
        raise RuntimeError("revision_module is called from a revision, while Alembic migrates")
    return script.get_revision(revision).module


def add_accounts(accounts: Sequence[tuple[str, str]]) -> None:
    """Put these (number, label) accounts in every organisation's chart that lacks them (new
    organisations get them from funding.ledger.chart). Nothing to undo: the chart only grows."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    statement = sa.text(
        "INSERT INTO accounts (org_id, number, label, active, created_at) "
        "SELECT id, CAST(:number AS VARCHAR(20)), CAST(:label AS VARCHAR(200)), :yes, :now FROM organisations o "
        "WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = o.id AND a.number = CAST(:number AS VARCHAR(20)))"
    ).bindparams(sa.bindparam("now", type_=sa.DateTime()), sa.bindparam("yes", type_=sa.Boolean()),
                 sa.bindparam("number", type_=sa.String()), sa.bindparam("label", type_=sa.String()))
    for number, label in accounts:
        op.get_bind().execute(statement, {"number": number, "label": label, "yes": True, "now": now})

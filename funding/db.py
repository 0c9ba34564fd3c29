"""Engine, sessions and the declarative base.

One transaction per request or job: services flush, the edge (an endpoint, a CLI
command, a worker job) commits through :func:`transaction`.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Row, Select, String, Table, TypeDecorator, event, inspect, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_

from funding.textfold import register_sqlite

# A row, or a SELECT, of any columns (SQLAlchemy 2.1 types them by their columns' types).
AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]

ModelT = TypeVar("ModelT")
Sessions = async_sessionmaker[AsyncSession]  # what every job and service is handed

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    if TYPE_CHECKING:
        __table__: ClassVar[Table]  # every model is mapped to a table (SQLAlchemy types it as any FROM)

    metadata = MetaData(naming_convention=NAMING)
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    type_annotation_map: ClassVar[dict[type, TypeEngine[Any]]] = {
        int: BigInteger().with_variant(Integer(), "sqlite"), dt.datetime: DateTime()}


class EnumText(TypeDecorator):
    """A StrEnum kept as its text: the column stays ``VARCHAR(length)`` with a CHECK listing
    the values (:func:`one_of`, the database's own check); Python reads the enum, and any value
    bound to it — in an INSERT, an UPDATE or a WHERE — must be one of its members (a typo
    fails loudly instead of matching nothing)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[enum.StrEnum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum(value)


def one_of(column: str, values) -> str:
    """The SQL of a CHECK that ``column`` holds one of ``values`` (an enum, or plain values)."""
    return f"{column} IN (" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values) + ")"


ROW_ID = r"[0-9]{1,18}"  # a row id as text: digits that always fit the database's BIGINT


def row_id(value: object) -> int | None:
    """A row id from outside (a path, a form, a query string), or None: anything but 1 to 18
    digits (a BIGINT holds every such number) is no row, rather than an overflow in the driver."""
    text = str(value if value is not None else "")
    return int(text) if re.fullmatch(ROW_ID, text) else None


def digits(value: object) -> bool:
    """1 to 18 ASCII digits: what :func:`int` reads and a BIGINT holds (``str.isdigit`` also says
    yes to "²" or "①", on which ``int`` raises; and to 30 digits, on which the driver does)."""
    return row_id(value) is not None


def utcnow() -> dt.datetime:
    """Naive UTC, microsecond precision: identical on SQLite and PostgreSQL."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def is_sqlite(url_or_engine) -> bool:
    url = url_or_engine.url if hasattr(url_or_engine, "url") else make_url(str(url_or_engine))
    return url.get_backend_name() == "sqlite"


def create_engine(database_url: str, *, pool: bool = True, echo: bool = False, pool_size: int = 20, max_overflow: int = 10,
                  pool_timeout: float = 30.0, pgbouncer: bool = False) -> AsyncEngine:
    """An engine of ``database_url``. ``pool_size``/``max_overflow``/``pool_timeout``: each process's
    share of the server's connections (Settings.engine_options, README "Deployment"). ``pgbouncer``:
    PgBouncer in transaction mode is in front, so no statement is prepared under a name that
    outlives its transaction and no setting is sent at connection time (funding.ops.pgbouncer)."""
    url = make_url(database_url)
    if "pgbouncer" in url.query:  # ?pgbouncer=1, as other tools spell "PgBouncer in transaction mode in front"
        pgbouncer = pgbouncer or url.query["pgbouncer"] in ("1", "true", "yes")
        url = url.difference_update_query(["pgbouncer"])
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    # Enough steady connections for a busy web process: overflow connections are closed on
    # return and reopened on the next request, which costs more than keeping them.
    # Planning is PostgreSQL's default (a prepared statement may settle on a generic plan): a
    # lookup by key plans the same whatever the table's size, and planning it on every run is
    # a cost each short transaction pays. What depends on sizes asks for fresh plans where it
    # runs: batches (:func:`plan_each_statement`, a SET LOCAL that PgBouncer lets through).
    kwargs: dict[str, Any] = ({"pool_size": pool_size, "max_overflow": max_overflow,
                               "pool_timeout": pool_timeout} if pool else {"poolclass": NullPool})
    connect_args: dict[str, Any] = {}
    if pgbouncer:
        from funding.ops.pgbouncer import connect_args as pgbouncer_args

        connect_args, url = pgbouncer_args(), url.update_query_dict({"prepared_statement_cache_size": "0"})
    engine = create_async_engine(url, echo=echo, connect_args=connect_args, **kwargs)
    if pool:
        event.listen(engine.sync_engine, "checkout", _ping)
    if pgbouncer:
        _BEHIND_PGBOUNCER.add(engine.sync_engine)
    return engine


_BEHIND_PGBOUNCER: weakref.WeakSet = weakref.WeakSet()


def _ping(_dbapi_connection, _record, proxy) -> None:
    """A pooled connection is alive before it is handed out (pessimistic disconnect handling), at
    the cost of one round trip: ``SELECT 1`` in PostgreSQL's simple protocol (asyncpg's execute
    without arguments; it cannot read the answer to an empty query), one message that PgBouncer in
    transaction mode passes whole. SQLAlchemy's own pre-ping on asyncpg spends three
    (BEGIN, ``;`` in the extended protocol, ROLLBACK: the transaction keeps its two messages on one
    server connection behind PgBouncer), a third of a tap at the till (issue 19). A dead one is
    replaced: the pool retries with a fresh connection on DisconnectionError."""
    try:
        await_(proxy.driver_connection.execute("SELECT 1"))
    except Exception as exc:  # whatever the driver says of a connection gone (closed, reset, timed out)
        raise DisconnectionError(f"pooled connection found dead: {exc!r}") from exc


def behind_pgbouncer(engine: AsyncEngine) -> bool:
    return engine.sync_engine in _BEHIND_PGBOUNCER


@asynccontextmanager
async def statement_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one statement that is its own transaction (a database function that locks,
    writes and returns: funding.bar.till.ring_up_at_once), so that what it locks is held only for the
    statement and its commit. Directly on PostgreSQL, autocommit: one round trip. Behind PgBouncer
    in transaction mode, an explicit transaction: asyncpg prepares a statement with parameters and
    then runs it in two exchanges, which PgBouncer may hand to two server connections when no
    transaction holds them together ("prepared statement … does not exist" under a rush; two more
    round trips, BEGIN and COMMIT)."""
    if behind_pgbouncer(engine):
        async with engine.begin() as conn:
            yield conn
        return
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so concurrent writers queue instead of deadlocking."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_sqlite(dbapi_connection)  # fold(): accent-insensitive search (funding.textfold)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine, *, scope=None, keyring=None) -> async_sessionmaker[AsyncSession]:
    """Sessions of ``engine``. With a ``scope`` (funding.scoping.OrgScope) each sees only its
    organisations; with a ``keyring`` (funding.ledger.seals.Keyring) its closings are sealed."""
    info = {"scope": scope} if scope else {}
    if keyring is not None:
        info["keyring"] = keyring
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on any error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def must_get(session: AsyncSession, model: type[ModelT], ident: object) -> ModelT:
    """``session.get`` of a row that must exist (a foreign key points at it): its absence is a
    bug, said as one, not an AttributeError on None further down."""
    row = _held_now(session, model, ident) or await session.get(model, ident)
    if row is None:
        raise LookupError(f"{model.__name__} {ident!r} does not exist")
    # The session's identity map holds rows weakly: a row read for a moment is read again from the
    # database the next time (a booking looked its site, member and person up three times each).
    # Held for the session's life, the next get is answered from the map (and refreshed if expired).
    session.info.setdefault("held", {})[(model, ident)] = row
    return row


def _held_now(session: AsyncSession, model: type[ModelT], ident: object) -> ModelT | None:
    """A held row that ``session.get`` would answer from the identity map without a statement (in this
    session's map, not expired), answered here without its round trip through the async layer (a
    booking asks for its member, site and person several times each)."""
    row = session.info.get("held", {}).get((model, ident))
    if row is None:
        return None
    state = inspect(row)
    sync = session.sync_session
    if state.expired or state.session_id != sync.hash_key or state.key is None or sync.identity_map.get(state.key) is not row:
        return None
    return cast("ModelT", row)


def per_transaction(session: AsyncSession, name: str) -> dict[Any, Any]:
    """A memo of ``name`` that lives as long as the session's innermost transaction (a savepoint
    rolled back, or the next transaction, starts an empty one): for what a batch would otherwise
    read or ensure once per item (an account inserted if missing, Stripe's tax rates)."""
    sync = session.sync_session
    txn = sync.get_nested_transaction() or sync.get_transaction()
    memo = session.info.setdefault("per_transaction", {})
    held = memo.get(name)
    if held is None or held[0] is not txn:
        held = memo[name] = (txn, {})
    return cast("dict[Any, Any]", held[1])


async def get_held(session: AsyncSession, model: type[ModelT], ident: object) -> ModelT | None:
    """``session.get``, the row then held for the session's life (see :func:`must_get`)."""
    row = _held_now(session, model, ident) or await session.get(model, ident)
    if row is not None:
        session.info.setdefault("held", {})[(model, ident)] = row
    return row


def dialect_of(session: AsyncSession) -> str:
    """The database behind a session: ``"postgresql"`` or ``"sqlite"``."""
    if session.bind is None:
        raise RuntimeError("a session without an engine has no dialect")
    return session.bind.dialect.name


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT touched. SQLAlchemy types ``execute()`` as a
    plain Result; a DML statement's is a CursorResult, which counts."""
    return cast("CursorResult[Any]", result).rowcount


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The ``insert`` construct of a dialect, for ON CONFLICT: PostgreSQL's, else SQLite's."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def insert_ignore(session: AsyncSession, model: type[Any], values: dict[str, Any], conflict: list[str]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None if it existed.

    The database decides, never a read-then-write check.
    """
    insert = dialect_insert(dialect_of(session))
    stmt = insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(model.id)
    return (await session.execute(stmt)).scalar_one_or_none()


_CUSTOM_PLANS = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")


async def plan_each_statement(session: AsyncSession) -> None:
    """From here to the end of the transaction, every statement is planned for its values and
    the tables as they are (PostgreSQL). For batches: one round trip per batch, and no generic
    plan made while a table was small (or for a batch of one) serves a large one — a cached plan
    is kept until the table's statistics change, which on a server without autovacuum is never.
    A transaction of a few lookups by key does without: its plans do not depend on sizes."""
    if dialect_of(session) == "postgresql":
        await session.execute(_CUSTOM_PLANS)


# Autovacuum's rule for re-analysing a table: 50 rows plus a fifth of the table changed.
_STALE = text(
    "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:tables) "
    "AND n_mod_since_analyze > 50 + 0.2 * greatest(n_live_tup, 0) ORDER BY relname"
)


async def refresh_statistics(factory: async_sessionmaker[AsyncSession], tables: list[str]) -> list[str]:
    """ANALYZE those of ``tables`` (PostgreSQL) that changed by a fifth since their statistics.

    The planner picks indexes from statistics. A server without autovacuum never gathers
    them, and one with it gathers them a minute late: while a backlog of webhook events
    grows the ledger from nothing to tens of thousands of entries, plans made on a table
    "of a few rows" filter the whole ledger through the wrong index (seen: the source-key
    lookup reading 44,000 entries for 500 keys). Cheap: ANALYZE samples, and does not
    block writers. Returns the tables analysed."""
    if factory.kw["bind"].dialect.name != "postgresql":
        return []
    async with factory() as session:
        stale = list((await session.scalars(_STALE, {"tables": tables})).all())
        if stale:  # the service's role owns no table: the owner's function analyses them (migration 0015)
            await session.execute(text("SELECT funding_analyze(CAST(:tables AS text[]))"), {"tables": stale})
        await session.commit()
    return stale

"""The database is away (down, restarting, every connection taken): an expected refusal.

Such a request is answered 503 (try again) and logged in one line, not a traceback: during a
ten-second outage a busy service refuses thousands of requests, and each traceback used to
cost kilobytes of log (81 MB for 12,613 refusals)."""

from __future__ import annotations

import errno
import socket

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# What the app hands to funding.web.database_error (inside the app, not raised to the server).
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout, OSError)


_NETWORK = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
            errno.ENETUNREACH, errno.EPIPE}


def _network(exc: BaseException) -> bool:
    """A failure to reach a server (not a missing file or a full disk)."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and (exc.errno in _NETWORK or str(exc).startswith("Multiple exceptions"))


def _connection_error(exc: BaseException) -> bool:
    if _network(exc):
        return True
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # SQLite only
        return False
    return isinstance(exc, (pg.PostgresConnectionError, pg.CannotConnectNowError, pg.TooManyConnectionsError,
                            pg.ConnectionDoesNotExistError, pg.AdminShutdownError))


def is_outage(exc: BaseException) -> bool:
    """True for a failure to reach the database (or to get a connection from the pool in time)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeout) or _connection_error(current):
            return True
        if isinstance(current, DBAPIError) and (current.connection_invalidated or (
                current.orig is not None and _connection_error(current.orig))):
            return True
        current = current.__cause__ or current.__context__
    return False

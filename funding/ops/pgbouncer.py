"""Behind PgBouncer in transaction mode (what French PaaS put in front of PostgreSQL).

Each transaction may run on another server connection, so nothing may outlive one: no named
prepared statement kept by the driver (asyncpg's cache off, SQLAlchemy's off, and the statements
it still prepares named uniquely so two clients never collide on one server connection), no
setting sent at connection time (PgBouncer refuses unknown startup parameters: planning
settings are taken per transaction with SET LOCAL / set_config(…, true) where they matter),
no session-level advisory lock, no LISTEN. The service holds to that; tests/test_pgbouncer.py
runs the webhook, ledger and campaign paths through a real PgBouncer."""

from __future__ import annotations

import uuid
from typing import Any


def _statement_name() -> str:
    return f"__funding_{uuid.uuid4().hex}__"


def connect_args() -> dict[str, Any]:
    return {"statement_cache_size": 0, "prepared_statement_name_func": _statement_name}

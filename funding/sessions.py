"""The sessions a process of this installation works with.

Apart from funding/db.py because it needs the ledger's seal keyring, and the ledger's
modules need funding/db.py: kept there, the two would import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from funding.db import session_factory
from funding.ledger.seals import Keyring

if TYPE_CHECKING:
    from funding.scoping import OrgScope
    from funding.settings import Settings


def sessions_for(engine: AsyncEngine, settings: Settings, *, scope: OrgScope | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions of ``engine``, scoped to ``scope`` if given, whose closings are sealed with this
    installation's key."""
    return session_factory(engine, scope=scope, keyring=Keyring.from_settings(settings))

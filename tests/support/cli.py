"""``funding …`` in the tests: in-process, through click's runner (no interpreter to start).

The commands read their settings from os.environ; the runner sets it for the run. Each
command runs its own event loop (asyncio.run), so an async test calls :func:`funding`,
which runs the command in a worker thread.
"""

from __future__ import annotations

import functools

import anyio
from click.testing import CliRunner, Result

from funding.cli import cli
from tests.support.db import TEST_SEAL_KEY

# What a command of the tests runs with, besides its database.
ENVIRONMENT = {"FUNDING_ENV": "test", "SECRET_KEY": "k" * 20, "LEDGER_SEAL_KEY": TEST_SEAL_KEY,
               "BASE_URL": "http://testserver"}


def invoke(*args: str, database_url: str | None = None, input: str | None = None, **env: str | None) -> Result:
    """``funding ARGS…`` against ``database_url``; ``env`` adds variables (None removes one).
    The result has ``exit_code``, ``stdout`` and ``stderr``."""
    environ = {**ENVIRONMENT, **({"DATABASE_URL": database_url} if database_url else {}), **env}
    return CliRunner().invoke(cli, list(args), env=environ, input=input, catch_exceptions=False)


def invoke_bare(*args: str, **env: str | None) -> Result:
    """``funding ARGS…`` with the process's environment and ``env`` only (a misconfiguration's test)."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


async def funding(settings, *args: str, **env: str | None) -> Result:
    """:func:`invoke` against ``settings``' database, from an async test."""
    return await anyio.to_thread.run_sync(functools.partial(invoke, *args, database_url=settings.database_url, **env))

"""The ``funding`` command line: the entry point, and the commands on the installation itself.

Every domain registers its own commands (``funding/<domain>/cli.py``, on the groups of
``funding.commands``); this module loads them all, with ``webhooks``' (this is a composition
root, like ``funding.app``), and adds the processes and the schema. Every command prints a clear
one-line error and exits non-zero on bad input; no stack trace reaches the person typing (set
FUNDING_DEBUG=1 to see one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import click

from funding.commands import CommandError, Context, command, group, out, root, who
from funding.domains import parts

__all__ = ["CommandError", "Context", "cli", "main", "who"]


@command(root, "demo", help="run the service with demo data and the offline Stripe sandbox", serving=True,
         development=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "8000")), show_default="$PORT or 8000")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--reset", is_flag=True, help="start from an empty demo database")
def demo(settings, port: int, host: str, reset: bool) -> int:
    from funding.demo.run import run_demo

    return run_demo(settings, host=host, port=port, reset=reset)


@command(root, "worker", help="background jobs: webhooks, emails, deadlines", serving=True)
@click.option("--once", is_flag=True, help="run every job once and exit")
def worker(settings, once: bool) -> None:
    from funding.worker import run_worker

    asyncio.run(run_worker(settings, once=once))


db = group(root, "db", help="database schema")


@command(db, "upgrade", help="apply every migration")
def upgrade(settings) -> None:
    """Migrate as the schema's owner, then give the service's role what each table needs."""
    from funding.migrate import upgrade_and_grant

    role = upgrade_and_grant(settings)
    out("database is at the latest migration")
    if role:
        out(f"the service's role {role} holds exactly the privileges funding/grants.py gives it")


parts("cli")  # each domain's commands register themselves as their module is imported
import webhooks.cli  # noqa: E402,F401  `stripe sync`, `webhooks …`: wired here, as funding.app wires their routes

cli = root  # every command, loaded


def main(argv: list[str] | None = None) -> int:
    """Run ``funding`` with ``argv`` (default: the process's arguments); the exit code."""
    logging.basicConfig(level=logging.INFO if os.environ.get("FUNDING_DEBUG") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cli.main(args=argv, prog_name="funding")
    except SystemExit as exc:  # click ends every run with one, its code the command's
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

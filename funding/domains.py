"""The product's domains and the parts each one may plug in.

A domain is a package ``funding/<name>/`` that may provide any of:

- ``models``  — its tables (imported for Alembic's metadata and the drift test);
- ``routes``  — ``routes``: a list of Starlette routes;
- ``service`` — imported at start so it can register payment purposes and hooks;
- ``jobs``    — ``JOBS``: ``[(name, async fn(sessions, settings, gateway) -> int)]`` for the worker;
- ``cli``     — its ``funding …`` commands, registered as the module is imported (with
  ``funding.commands.command``, each naming the roles ``--as`` needs);
- ``integrity`` — ``async verify(conn, org_id, report)``: checks of its own chained records,
  run by ``funding ledger verify`` (problems go to ``report.problem``, totals to ``report.counts``);
- ``demo``    — ``async seed(session, demo)`` (demo data) and ``async play(settings, gateway, sessions)``
  (demo activity through the Stripe sandbox, after the server answers).

Order matters where domains build on each other.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DOMAINS = ("orgs", "auth", "mail", "limits", "ledger", "payments", "donations", "campaigns", "coworking", "bar", "exports", "ops")


def parts(kind: str) -> list[ModuleType]:
    """``funding.<domain>.<kind>`` for every domain that has one, in domain order."""
    found = []
    for domain in DOMAINS:
        name = f"funding.{domain}.{kind}"
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name not in (name, f"funding.{domain}"):
                raise  # a real import error inside the module: let it show
    return found

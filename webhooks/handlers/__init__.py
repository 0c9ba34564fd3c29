"""Event handlers, one module per Stripe object family.

A handler has two halves: ``prepare`` reads what it needs from Stripe (the event is a
notification: the current object is fetched), outside any database transaction;
``apply`` writes the effects in the caller's transaction and returns the ledger drafts
to post. Effects are keyed by Stripe ids, so applying twice, or in any order, is safe.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments.books import TxnContext
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event, StripeDict

# ``prepare`` is given the gateway as a batch sees it (processing.BatchReads, a StripeGateway to callers).
Prepare = Callable[[StripeGateway, Event], Awaitable["Prepared"]]
Apply = Callable[[AsyncSession, Event, "Prepared"], Awaitable[list[EntryDraft]]]
ApplyMany = Callable[[AsyncSession, list[tuple[Event, "Prepared"]]], Awaitable[list[EntryDraft]]]


@dataclass
class Prepared:
    contexts: list[TxnContext] = field(default_factory=list)
    objects: list[StripeDict] = field(default_factory=list)  # current objects, as fetched
    fetched_at: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True)
class Handler:
    """``apply_many``, when given, applies a batch's events of this handler at once (set-based
    statements instead of a few per event), with the same effects as ``apply`` on each."""

    prepare: Prepare
    apply: Apply
    apply_many: ApplyMany | None = None


def version(event: Event, prepared: Prepared) -> int:
    """The version of a fetched object: newer than the event that led us to fetch it."""
    return max(int(event.get("created") or 0), prepared.fetched_at)


def registry() -> dict[str, list[Handler]]:
    """Every module of this package contributes ``HANDLERS = {event type: Handler}``;
    several modules may handle the same type (e.g. the subscription mirror and the
    coworking books both act on ``invoice.paid``): all of them run, in module order."""
    import importlib
    import pkgutil

    import webhooks.handlers as package

    table: dict[str, list[Handler]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for event_type, handler in getattr(module, "HANDLERS", {}).items():
            table.setdefault(event_type, []).append(handler)
    return table

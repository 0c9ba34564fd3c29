"""Event handlers, one module per Stripe object family.

A handler has two halves: ``prepare`` reads what it needs from Stripe (the event is a
notification: the current object is fetched), outside any database transaction;
``apply`` writes the effects in the caller's transaction and returns the ledger drafts
to post. Effects are keyed by Stripe ids, so applying twice, or in any order, is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from funding.ledger.service import EntryDraft
from funding.payments.books import TxnContext

Prepare = Callable[[object, dict], Awaitable["Prepared"]]
Apply = Callable[[object, dict, "Prepared"], Awaitable[list[EntryDraft]]]


@dataclass
class Prepared:
    contexts: list[TxnContext] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)  # current objects, as fetched
    fetched_at: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True)
class Handler:
    prepare: Prepare
    apply: Apply


def version(event: dict, prepared: Prepared) -> int:
    """The version of a fetched object: newer than the event that led us to fetch it."""
    return max(int(event.get("created") or 0), prepared.fetched_at)


def registry() -> dict[str, Handler]:
    from webhooks.handlers import charges, checkout, disputes, payouts, subscriptions

    table: dict[str, Handler] = {}
    for module in (charges, checkout, disputes, payouts, subscriptions):
        table.update(module.HANDLERS)
    return table

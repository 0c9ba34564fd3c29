"""What a payment was for decides where its money goes in the books.

Every object we create in Stripe carries ``metadata.purpose`` (and our ids). Each domain
registers a purpose: given the gross amount of a balance transaction (positive for a
charge, negative for a refund or a dispute), it returns the revenue-side lines, which
must sum to ``-amount`` so that, with the Stripe balance (net) and the fee, the entry
balances. Unknown purposes land on a suspense account (467) for an accountant to sort.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.models import FundingSource
from funding.ledger.service import EntryDraft, Line


@dataclass(frozen=True)
class Allocation:
    org_id: int
    site_id: int
    funding_source: FundingSource
    label: str
    lines: list[Line]  # the revenue side; sums to -amount
    # Entries this payment's own entry must follow, posted with it (an invoice's sale before its
    # settlement): one batch, one head lock, instead of a posting of their own.
    before: list[EntryDraft] = field(default_factory=list)


Resolver = Callable[[AsyncSession, dict[str, Any], int, str], Awaitable[Allocation | None]]
_registry: dict[str, Resolver] = {}
_bills_invoices: set[str] = set()


def register(purpose: str, resolver: Resolver, *, bills_invoices: bool = False) -> None:
    """``bills_invoices``: the purpose has subscriptions of its own (metadata ``purpose`` on the
    subscription), whose invoices' charges are booked under it rather than as a member's
    invoice (``invoice``)."""
    _registry[purpose] = resolver
    if bills_invoices:
        _bills_invoices.add(purpose)


def bills_invoices(purpose: str | None) -> bool:
    load_domains()
    return (purpose or "") in _bills_invoices


def resolver(purpose: str | None) -> Resolver | None:
    load_domains()
    return _registry.get(purpose or "")


_loaded = False


def load_domains() -> None:
    """Import the domains' services, which register their purposes (once: every payment
    asks, and looking for a domain's missing module raises and catches each time)."""
    global _loaded
    if not _loaded:
        from funding.domains import parts

        parts("service")
        _loaded = True


def split_vat(amount: int, per_mille: int) -> tuple[int, int]:
    """Split a VAT-inclusive amount (any sign) into (base, VAT), the base rounded half away from zero."""
    sign = -1 if amount < 0 else 1
    gross = abs(amount)
    base = (gross * 1000 * 2 + (1000 + per_mille)) // (2 * (1000 + per_mille))
    return sign * base, sign * (gross - base)

"""French VAT rates as Stripe Tax Rates, so that every invoice states its VAT per rate.

One Tax Rate per (rate, inclusive): its row here is inserted first, then Stripe's object is
created once under a key derived from that row (``tax-rate:<id>``). Rates are per mille, as
everywhere in the product: 200 is 20 %, 55 is 5,5 %, 0 is an exempt line (membership fees).
Our prices include VAT (what the member pays is what the page says), so our rates are
inclusive; Stripe then states each line's amount before tax and the tax per rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import Sessions, insert_ignore, per_transaction, transaction, utcnow
from funding.errors import FundingError
from funding.payments.calls import create_once
from funding.payments.models import VAT_RATES, TaxRate
from funding.stripe_gateway import StripeGateway


class UnknownVatRate(FundingError):
    """A VAT rate France does not have."""


def percentage(vat_rate: int) -> str:
    """Per mille to Stripe's decimal percentage: 55 → "5.5"."""
    return f"{vat_rate // 10}.{vat_rate % 10}"


def label(vat_rate: int) -> str:
    """Per mille to the French way of writing it: 55 → "5,5 %", 200 → "20 %"."""
    whole, tenth = divmod(vat_rate, 10)
    return f"{whole},{tenth} %" if tenth else f"{whole} %"


def check_rate(vat_rate: int) -> int:
    if vat_rate not in VAT_RATES:
        raise UnknownVatRate(f"taux de TVA inconnu : {vat_rate} ‰ (connus : {', '.join(label(r) for r in VAT_RATES)})")
    return vat_rate


async def tax_rate_id(sessions: Sessions, gw: StripeGateway, vat_rate: int, *, inclusive: bool = True) -> str:
    """The Stripe Tax Rate for this VAT rate, created on first use (once, whatever the retries)."""
    check_rate(vat_rate)
    async with transaction(sessions) as session:
        row = await _row(session, vat_rate, inclusive)
        if row.stripe_id:
            return row.stripe_id
        row_id = row.id
    name = "TVA" if vat_rate else "TVA (exonéré)"
    params = {"display_name": name, "percentage": percentage(vat_rate), "inclusive": inclusive, "country": "FR",
              "jurisdiction": "FR", "tax_type": "vat", "description": f"TVA {label(vat_rate)}",
              "metadata": {"vat_rate": str(vat_rate)}}
    obj = await create_once(sessions, gw, ref=f"tax-rate:{row_id}", resource="tax_rates", params=params)
    async with transaction(sessions) as session:
        await session.execute(update(TaxRate).where(TaxRate.id == row_id, TaxRate.stripe_id.is_(None)).values(stripe_id=obj["id"]))
    return str(obj["id"])


async def tax_rate_ids(sessions: Sessions, gw: StripeGateway, vat_rates: Iterable[int], *, inclusive: bool = True) -> dict[int, str]:
    return {rate: await tax_rate_id(sessions, gw, rate, inclusive=inclusive) for rate in sorted(set(vat_rates))}


async def _row(session: AsyncSession, vat_rate: int, inclusive: bool) -> TaxRate:
    await insert_ignore(session, TaxRate, {"vat_rate": vat_rate, "inclusive": inclusive, "created_at": utcnow()},
                        ["vat_rate", "inclusive"])
    return (await session.scalars(select(TaxRate).where(TaxRate.vat_rate == vat_rate, TaxRate.inclusive == inclusive)
                                  .execution_options(populate_existing=True))).one()


async def rates_by_stripe_id(session: AsyncSession) -> dict[str, int]:
    """Stripe Tax Rate id → VAT rate per mille, for reading invoices back."""
    memo = per_transaction(session, "tax_rates")  # a batch of invoices reads them once
    if "rates" not in memo:
        rows = (await session.execute(select(TaxRate.stripe_id, TaxRate.vat_rate).where(TaxRate.stripe_id.is_not(None)))).all()
        memo["rates"] = {str(stripe_id): int(rate) for stripe_id, rate in rows}
    return dict(memo["rates"])


def stated_tax(line: dict[str, Any], rates: dict[str, int]) -> tuple[int, int, int | None] | None:
    """What Stripe states for a taxed line (of an invoice or a credit note): its base (the amount
    less any inclusive tax), its VAT, and the rate per mille if the Tax Rate is one of ours
    (``rates``: :func:`rates_by_stripe_id`). None for a line Stripe did not tax."""
    taxes = line.get("taxes") or []
    if not taxes:
        return None
    vat = sum(int(t.get("amount") or 0) for t in taxes)
    base = int(line.get("amount") or 0) - sum(int(t.get("amount") or 0) for t in taxes if t.get("tax_behavior") == "inclusive")
    stated = [rates.get(str((t.get("tax_rate_details") or {}).get("tax_rate"))) for t in taxes]
    return base, vat, next((r for r in stated if r is not None), None)


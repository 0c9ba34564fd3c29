"""French VAT rates as Stripe Tax Rates: created once per rate (the key is our row), reused
after; a rate France does not have is refused before anything is written or sent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from funding.payments.models import StripeRequest, TaxRate
from funding.payments.tax_rates import UnknownVatRate, label, percentage, tax_rate_id


async def test_a_rate_is_created_once_then_reused(sessions, gw, fake_stripe):
    first = await tax_rate_id(sessions, gw, 55)
    again = await tax_rate_id(sessions, gw, 55)
    exempt = await tax_rate_id(sessions, gw, 0)
    posted = [r for r in fake_stripe.requests if r.method == "POST" and r.url.path.endswith("/tax_rates")]
    assert first == again != exempt and len(posted) == 2
    assert posted[0].headers["idempotency-key"].startswith("entrelab-tax-rate-")
    assert fake_stripe.objects[first]["percentage"] == 5.5 and fake_stripe.objects[first]["inclusive"] is True
    async with sessions() as session:
        assert (await session.scalar(select(TaxRate.stripe_id).where(TaxRate.vat_rate == 55))) == first


@pytest.mark.parametrize("rate", [7, 196, -200, 1000])
async def test_an_unknown_rate_is_refused_and_nothing_is_written_or_sent(sessions, gw, fake_stripe, rate):
    with pytest.raises(UnknownVatRate, match="taux de TVA inconnu"):
        await tax_rate_id(sessions, gw, rate)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TaxRate)) == 0
        assert await session.scalar(select(func.count()).select_from(StripeRequest)) == 0
    assert fake_stripe.requests == []


def test_rates_are_written_the_french_way_and_stripes_way():
    assert [(label(r), percentage(r)) for r in (200, 55, 21, 0)] == [
        ("20 %", "20.0"), ("5,5 %", "5.5"), ("2,1 %", "2.1"), ("0 %", "0.0")]

"""The campaign form's limits: every contribution per client, and stricter for those that would
hold a unit of a limited reward. Refused answers keep what the backer typed."""

from __future__ import annotations

import pytest

from tests.support.campaigns import make_campaign, tiers_of
from tests.support.web import csrf, text_of


@pytest.fixture
def settings(settings):
    return settings.with_(rate_limits=(("contribute", 4, 3600), ("hold", 2, 3600)))


async def test_contributions_and_stock_holds_are_limited_per_client(client, sessions, world):
    campaign = await make_campaign(sessions, world, slug="atelier", tiers=[
        {"title": "Tablier brodé", "amount": 4000, "kind": "reward", "value": 2500, "stock": 3},
        {"title": "Merci sur le mur", "amount": 1000}])
    limited, open_tier = await tiers_of(sessions, campaign.id)

    async def contribute(tier) -> object:
        # An amount under the tier's: refused before any Checkout, but counted all the same.
        return await client.post("/campagnes/atelier/contribuer", data={
            "csrf_token": await csrf(client), "currency": "EUR", "tier": str(tier.id), "amount": "1",
            "name": "Agathe Grange", "email": "agathe@example.org", "address": "", "public_name": "", "message": ""})

    assert [(await contribute(limited)).status_code for _ in range(2)] == [400, 400]
    held = await contribute(limited)
    assert held.status_code == 429 and "Trop de demandes en peu de temps" in text_of(held.text)
    assert int(held.headers["retry-after"]) > 0 and 'value="Agathe Grange"' in held.text
    assert (await contribute(open_tier)).status_code == 400  # no unit held: only the contribution count
    assert (await contribute(open_tier)).status_code == 429  # 5th contribution of this client

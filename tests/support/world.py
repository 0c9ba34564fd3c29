"""The world every test starts from: an organisation with two sites and one user of each role,
SIRENs that pass the Luhn check, a card gift booked, the login link of an email."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from funding.auth.service import create_user
from funding.db import transaction
from funding.ledger.service import EntryDraft, credit, debit, post
from funding.orgs.service import create_organisation, create_site, luhn_ok

_counter = iter(range(10_000_000, 99_999_999))


def next_siren() -> str:
    while True:
        base = str(next(_counter))
        for digit in range(10):
            if luhn_ok(base + str(digit)):
                return base + str(digit)


@dataclass
class World:
    org_id: int
    siren: str
    site_id: int
    site_slug: str
    other_site_id: int
    users: dict[str, int]


async def make_world(sessions, *, name: str = "Association Test") -> World:
    async with transaction(sessions) as session:
        siren = next_siren()
        # The fiscal year ends this month, so the months tests close (the last few) never straddle a
        # year's end whatever the date the suite runs on (a January needs its year closed first).
        org = await create_organisation(session, name=name, siren=siren, vat_liable=True, general_interest=True,
                                        fiscal_year_start_month=dt.date.today().month % 12 + 1)
        suffix = siren[-4:]
        central = await create_site(session, org_id=org.id, slug=f"thiers-{suffix}", name="Thiers", town="Thiers", is_central=True)
        other = await create_site(session, org_id=org.id, slug=f"courpiere-{suffix}", name="Courpière", town="Courpière")
        users = {}
        for role in ("admin", "staff", "accountant", "member"):
            user = await create_user(session, email=f"{role}-{suffix}@example.org", name=f"{role.title()} {suffix}", role=role,
                                     org_id=org.id)
            users[role] = user.id
    return World(org.id, siren, central.id, central.slug, other.id, users)


def gift(world: World, amount: int = 5000, fee: int = 100, *, day: dt.date | None = None, key: str | None = None,
         site_id: int | None = None) -> EntryDraft:
    """A card gift through Stripe: D 5115 net, D 627 fee, C 75411 gross."""
    return EntryDraft(
        org_id=world.org_id, site_id=site_id or world.site_id, journal="ST", entry_date=day or dt.date.today(),
        label="Don par carte", piece_ref=key or "ch_test", funding_source="crowdfunding",
        lines=[debit("5115", amount - fee), debit("627", fee), credit("75411", amount)], source_key=key,
    )


async def post_gift(sessions, world: World, **kw):
    async with transaction(sessions) as session:
        return (await post(session, gift(world, **kw))).entries[0]


def login_token_from(body: str) -> str:
    match = re.search(r"/login/([A-Za-z0-9_\-\.]+)", body)
    assert match, body
    return match.group(1)

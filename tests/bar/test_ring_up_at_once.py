"""A tap on a member's tab in one statement (PostgreSQL's bar_ring_up, funding.bar.till.ring_up_at_once):
the same line as ring_up would write, chained with it, the same refusals worded the same way, the
same people allowed; and the till's web answer goes through it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from funding.auth.models import User
from funding.auth.service import create_user
from funding.bar.canonical import line_hash
from funding.bar.catalog import add_product, edit_product
from funding.bar.models import SaleLine, TillHead
from funding.bar.till import BarError, ring_up_at_once
from funding.db import statement_connection, transaction
from funding.ledger.verify import verify_org
from funding.scoping import OrgScope
from tests.support.bar import LIMIT, make_bar, sell, site_of
from tests.support.world import make_world

TRICKY = 'Thé « glacé » "maison" \\ 😀 </script>\u2028€'


@pytest.fixture
def database_url(pg_url):  # bar_ring_up is PostgreSQL's; SQLite keeps the ORM path (tests/bar/test_till.py)
    return pg_url


async def tap(engine, world, bar, product: str | int, *, member=None, quantity=1, orgs="world", slug=None, limit=LIMIT,
              at=None, by="Louis"):
    scope = OrgScope(frozenset({world.org_id}) if orgs == "world" else orgs, world.users["staff"])
    async with statement_connection(engine) as conn:  # as the till's web answer runs it
        return await ring_up_at_once(conn, scope, slug=slug or world.site_slug,
                                     product_id=bar.products[product] if isinstance(product, str) else product,
                                     member_id=member or bar.members[0], quantity=quantity, limit=limit, recorded_by=by,
                                     recorded_at=at)


async def lines(sessions) -> list[SaleLine]:
    async with sessions() as session:
        return list((await session.scalars(select(SaleLine).order_by(SaleLine.site_id, SaleLine.seq))).all())


async def test_lines_rung_at_once_are_the_lines_ring_up_writes_chained_with_them(sessions, world, engine):
    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        product = await add_product(session, site, name="Thé glacé", category="Chaud", price="3,20", vat_rate="5,5")
        product.name, product.category = TRICKY, 'Chaud \\ "spécial"'  # past the catalog's tidying: JSON's escapes
        bar.products[TRICKY] = product.id
    await sell(sessions, bar, "Café")  # the site's first line makes its head (the ORM way)
    at = dt.datetime(2026, 12, 6, 22, 59, 59, 123456)  # 23:59 in Paris: still the 6th
    rung = await tap(engine, world, bar, TRICKY, quantity=3, at=at, by='Zoé "la barista" \\ Élise')
    assert rung is not None
    assert (rung.line.seq, rung.line.label, rung.line.amount, rung.balance) == (2, TRICKY, 960, 150 + 960)
    third = await sell(sessions, bar, "Thé")
    await tap(engine, world, bar, "Sandwich", member=bar.members[1])

    written = await lines(sessions)
    assert [line.seq for line in written] == [1, 2, 3, 4] and third.seq == 3
    assert [line.prev_hash for line in written[1:]] == [line.hash for line in written[:-1]]
    for line in written:  # each hash is the canonical document's, whichever way it was written
        assert line.hash == line_hash(line, None)
    at_once = written[1]
    assert (at_once.id, at_once.day, at_once.recorded_at, at_once.label, at_once.category, at_once.unit_price,
            at_once.quantity, at_once.vat_rate, at_once.currency, at_once.recorded_by, at_once.reason, at_once.kind) == \
        (rung.line.id, dt.date(2026, 12, 6), at, TRICKY, 'Chaud \\ "spécial"', 320, 3, 55, "EUR",
         'Zoé "la barista" \\ Élise', "", "sale")
    async with sessions() as session:
        head = await session.get(TillHead, world.site_id)
        assert (head.last_seq, head.last_hash) == (4, written[-1].hash)
    async with engine.connect() as conn:
        assert (await verify_org(conn, world.org_id)).ok


async def test_the_till_refuses_at_once_what_ring_up_refuses_in_the_same_words(sessions, world, engine):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café")
    async with transaction(sessions) as session:
        other = await add_product(session, await session.get(type(await site_of(session, world)), world.other_site_id),
                                  name="Café", category="", price="1,50", vat_rate="10")
        await edit_product(session, await site_of(session, world), bar.products["Thé"], name="Thé",
                           category="Boissons chaudes", price="2,00", vat_rate="10", active=False)
    refusals = [
        (dict(product=other.id), f"Produit inconnu à Thiers : {other.id}."),
        (dict(product=999_999_999_999), "Produit inconnu à Thiers : 999999999999."),
        (dict(product="Thé"), "« Thé » n'est plus en vente (produit désactivé)."),
        (dict(product="Café", member=world.users["staff"]), "Membre inconnu"),
        (dict(product="Café", member=999_999_999_999), "Membre inconnu"),
        (dict(product="Sandwich", quantity=9), "Plafond d'ardoise atteint"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(BarError, match=message.replace("(", r"\(").replace(")", r"\)")):
            await tap(engine, world, bar, kwargs.pop("product"), **kwargs)
    with pytest.raises(BarError) as over:
        await tap(engine, world, bar, "Sandwich", quantity=9)
    assert "1,50\xa0€ déjà dus" in str(over.value) and "(49,50\xa0€)" in str(over.value) and "50,00\xa0€." in str(over.value)
    assert len(await lines(sessions)) == 1


async def test_only_staff_of_the_sites_organisation_with_a_live_session_may_tap(sessions, settings, world, engine, client):
    """Who may tap is require()'s answer, on the connection the tap then uses: the scope it gives
    is the one bar_ring_up looks through."""
    from tests.support.web import csrf, login_as

    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café")
    elsewhere = await make_world(sessions, name="Autre tiers-lieu")
    async with transaction(sessions) as session:
        gone = await create_user(session, email="parti@example.org", name="Parti", role="staff", org_id=world.org_id)
        network = await create_user(session, email="reseau@example.org", name="Réseau", role="admin", network=True)

    async def tap_as(user_id: int | None, *, slug: str = world.site_slug, before=None) -> int:
        if user_id is not None:
            await login_as(client, sessions, settings, user_id)
        token = await csrf(client)
        if before is not None:
            await before()
        answer = await client.post(f"/bar/{slug}/caisse/vente", headers={"accept": "application/json"},
                                   data={"csrf_token": token, "product_id": bar.products["Café"], "member_id": bar.members[0]})
        return answer.status_code if answer.status_code != 303 else answer.headers["location"]

    async def disable_gone():
        async with transaction(sessions) as session:
            (await session.get(User, gone.id)).active = False

    async def log_out_everywhere():
        async with transaction(sessions) as session:
            (await session.get(User, world.users["admin"])).session_generation += 1

    client.cookies.clear()
    assert (await tap_as(None)).startswith("/login")
    assert (await tap_as(gone.id, before=disable_gone)).startswith("/login")
    assert (await tap_as(world.users["admin"], before=log_out_everywhere)).startswith("/login")
    assert await tap_as(world.users["member"]) == 403
    assert await tap_as(world.users["accountant"]) == 403
    assert await tap_as(elsewhere.users["staff"]) == 404  # another organisation's site
    assert await tap_as(world.users["staff"], slug="nulle-part") == 404
    assert len(await lines(sessions)) == 1
    assert await tap_as(world.users["admin"]) == 200
    assert await tap_as(network.id) == 200  # a network role: every organisation
    assert [line.recorded_by for line in await lines(sessions)][1:] == [f"Admin {world.siren[-4:]}", "Réseau"]
    # The function itself sees only the scope it is given.
    assert await tap(engine, world, bar, "Café", orgs=frozenset({elsewhere.org_id})) is None
    assert await tap(engine, world, bar, "Café", slug="nulle-part") is None
    assert len(await lines(sessions)) == 3


async def test_a_sites_first_line_and_a_closed_day_are_left_to_ring_up_or_dated_as_it_dates(sessions, world, engine,
                                                                                           owner_engine):
    bar = await make_bar(sessions, world)
    assert await tap(engine, world, bar, "Café") is None  # ring_up makes the head
    assert await lines(sessions) == []
    await sell(sessions, bar, "Café")
    async with owner_engine.begin() as conn:  # the day after tomorrow closed already: a clock gone back
        await conn.execute(text("UPDATE bar_heads SET closed_through = :day WHERE site_id = :site"),
                           {"day": dt.date(2026, 12, 8), "site": world.site_id})
    assert await tap(engine, world, bar, "Café", at=dt.datetime(2026, 12, 6, 12, 0)) is not None
    written = await lines(sessions)
    assert written[-1].day == dt.date(2026, 12, 8) and written[-1].hash == line_hash(written[-1], None)


async def test_the_tills_answer_goes_through_one_statement(sessions, settings, world, client, monkeypatch):
    from funding.bar import till
    from tests.support.web import csrf_of, login_as

    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café")
    await login_as(client, sessions, settings, world.users["staff"])
    token = csrf_of((await client.get(f"/bar/{world.site_slug}/caisse")).text)

    async def orm_path(*args, **kwargs):
        raise AssertionError("a well-formed tap on a tab takes one statement")

    monkeypatch.setattr(till, "ring_up", orm_path)
    answer = await client.post(f"/bar/{world.site_slug}/caisse/vente", headers={"accept": "application/json"},
                               data={"csrf_token": token, "product_id": bar.products["Bière locale"],
                                     "member_id": bar.members[0], "quantity": "2"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] and body["line"]["seq"] == 2 and body["line"]["label"] == "Bière locale"
    assert body["balance"] == "10,50\xa0€" and "Ardoise : 10,50\xa0€" in body["message"]
    refused = await client.post(f"/bar/{world.site_slug}/caisse/vente", headers={"accept": "application/json"},
                                data={"csrf_token": token, "product_id": bar.products["Sandwich"],
                                      "member_id": bar.members[0], "quantity": "9"})
    assert refused.status_code == 400 and "Plafond d'ardoise atteint" in refused.json()["error"]

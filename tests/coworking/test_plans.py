"""Plans per site and `funding plans sync`: Stripe Products and Prices created once; a changed
price makes a new Price and archives the old one, never edits it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from funding.coworking.models import Plan, PlanPrice
from funding.coworking.plans import (
    PlanError,
    PlanSpec,
    price_ttc,
    save_plan,
    sync_plans,
    vat_of,
)
from funding.db import transaction
from funding.orgs.models import Site
from funding.payments.models import StripeRequest
from tests.support.cli import invoke


async def _plans(sessions, world, *specs):
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        for spec in specs:
            await save_plan(session, site, spec)


FLEX = PlanSpec("flex", "Poste nomade", "workspace", "150,00", "20", "706", "month")
ADHESION = PlanSpec("adhesion", "Adhésion annuelle", "membership", "30", "0", "7562", "year")
CARNET = PlanSpec("carnet-10", "Carnet de 10 journées", "pass", "150", "20", "706", pass_days=10)


def test_vat_and_prices_with_vat_are_integer_cents_rounded_half_up():
    assert (vat_of(15000, 200), price_ttc(15000, 200)) == (3000, 18000)
    assert (vat_of(1999, 55), price_ttc(1999, 55)) == (110, 2109)  # 109,945 → 110
    assert price_ttc(3000, 0) == 3000


async def test_sync_creates_products_and_prices_once_and_a_second_run_changes_nothing(sessions, world, gw, fake):
    await _plans(sessions, world, FLEX, ADHESION, CARNET)
    report = await sync_plans(sessions, gw)
    assert (report.products_created, report.prices_created, report.prices_archived) == (3, 3, 0)
    assert sorted(p[1]["unit_amount"] for p in fake.posted("prices")) == ["18000", "18000", "3000"]
    flex_price = next(p for p in fake.posted("prices") if p[1].get("recurring", {}).get("interval") == "month")
    assert flex_price[1]["unit_amount"] == "18000" and flex_price[1]["tax_behavior"] == "inclusive"
    assert flex_price[1]["metadata"]["price_ht"] == "15000" and flex_price[1]["metadata"]["entrelab_ref"].startswith("coworking-price:")
    assert flex_price[2] and flex_price[2].startswith("entrelab-coworking-price-")  # our idempotency key
    one_time = [p for p in fake.posted("prices") if "recurring" not in p[1]]
    assert len(one_time) == 1 and one_time[0][1]["unit_amount"] == "18000"  # the pass: a one-time price
    posts = len(fake.posts)

    again = await sync_plans(sessions, gw)
    assert not again.changed and len(fake.posts) == posts  # nothing created, nothing updated
    async with sessions() as session:
        rows = (await session.scalars(select(PlanPrice))).all()
        assert all(r.status == "active" and r.stripe_price_id for r in rows) and len(rows) == 3
        assert all((await session.scalars(select(Plan.stripe_product_id))).all())


async def test_a_changed_price_makes_a_new_price_and_archives_the_old_one(sessions, world, gw, fake):
    await _plans(sessions, world, FLEX)
    await sync_plans(sessions, gw)
    async with sessions() as session:
        old = await session.scalar(select(PlanPrice))
    await _plans(sessions, world, PlanSpec("flex", "Poste nomade", "workspace", "160,00", "20", "706", "month"))
    report = await sync_plans(sessions, gw)
    assert (report.prices_created, report.prices_archived, report.products_created) == (1, 1, 0)
    created = fake.posted("prices")[-2]
    archived = fake.posted("prices")[-1]
    assert created[0] == "prices" and created[1]["unit_amount"] == "19200"
    assert archived[0] == f"prices/{old.stripe_price_id}" and archived[1] == {"active": "false"}  # only retired
    assert not [p for p in fake.posts if p[0] == f"prices/{old.stripe_price_id}" and "unit_amount" in p[1]]
    async with sessions() as session:
        rows = (await session.scalars(select(PlanPrice).order_by(PlanPrice.seq))).all()
    assert [(r.seq, r.amount, r.status) for r in rows] == [(1, 18000, "archived"), (2, 19200, "active")]
    assert not (await sync_plans(sessions, gw)).changed

    # Back to the first amount: a third generation, never the archived price brought back.
    await _plans(sessions, world, FLEX)
    await sync_plans(sessions, gw)
    async with sessions() as session:
        rows = (await session.scalars(select(PlanPrice).order_by(PlanPrice.seq))).all()
    assert [(r.seq, r.amount, r.status) for r in rows] == [(1, 18000, "archived"), (2, 19200, "archived"), (3, 18000, "active")]
    assert rows[2].stripe_price_id != rows[0].stripe_price_id


async def test_a_renamed_or_withdrawn_plan_updates_its_product_only(sessions, world, gw, fake):
    await _plans(sessions, world, FLEX)
    await sync_plans(sessions, gw)
    await _plans(sessions, world, PlanSpec("flex", "Poste nomade (open space)", "workspace", "150,00", "20", "706", "month",
                                           active=False))
    report = await sync_plans(sessions, gw)
    assert (report.products_updated, report.prices_created) == (1, 0)
    path, params, _key = fake.posts[-1]
    assert path.startswith("products/prod_") and params["active"] == "false" and params["name"].startswith("Poste nomade (open space)")


async def test_a_crash_after_stripe_created_the_price_is_resumed_with_the_same_key(sessions, world, gw, fake):
    await _plans(sessions, world, FLEX)
    await sync_plans(sessions, gw)
    async with transaction(sessions) as session:  # as if our commit after Stripe's answer was lost
        row = await session.scalar(select(PlanPrice))
        row.status, row.stripe_price_id = "pending", None
    keys = [p[2] for p in fake.posted("prices")]
    await sync_plans(sessions, gw)
    async with sessions() as session:
        row = await session.scalar(select(PlanPrice))
        requests = (await session.scalars(select(StripeRequest).where(StripeRequest.resource == "prices"))).all()
    assert row.status == "active" and row.stripe_price_id and len(requests) == 1
    assert [p[2] for p in fake.posted("prices")] == keys  # no second creation: the stored answer was reused


@pytest.mark.parametrize("spec, message", [
    (PlanSpec("Flex!", "Poste", "workspace", "150", interval="month"), "code de formule invalide"),
    (PlanSpec("flex", "", "workspace", "150", interval="month"), "nom de la formule manquant"),
    (PlanSpec("flex", "Poste", "desk", "150", interval="month"), "type de formule inconnu"),
    (PlanSpec("flex", "Poste", "workspace", "150,5x", interval="month"), "montant invalide"),
    (PlanSpec("flex", "Poste", "workspace", "0", interval="month"), "doit être positif"),
    (PlanSpec("flex", "Poste", "workspace", "150", "19,6", interval="month"), "taux de TVA invalide"),
    (PlanSpec("adh", "Adhésion", "membership", "30", "20", "7561", "year"), "ne porte pas de TVA"),
    (PlanSpec("flex", "Poste", "workspace", "150", "20", "707", "month"), "compte de produit invalide"),
    (PlanSpec("flex", "Poste", "workspace", "150", interval="week"), "périodicité invalide"),
    (PlanSpec("jour", "Pass", "pass", "15", pass_days=0), "un pass compte de 1 à 366 jours"),
])
async def test_bad_plans_are_refused_with_a_french_message(sessions, world, spec, message):
    with pytest.raises(PlanError, match=message):
        await _plans(sessions, world, spec)
    async with sessions() as session:
        assert (await session.scalars(select(Plan))).all() == []


def test_the_plans_command_refuses_bad_input_in_one_line(tmp_path, sqlite_template):
    import shutil

    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)

    def cli(*args):
        return invoke(*args, database_url=f"sqlite:///{db}", FUNDING_ENV="development")

    assert cli("org", "create", "--name", "Asso", "--siren", "912345675", "--vat-liable").exit_code == 0
    assert cli("site", "create", "--slug", "thiers", "--name", "Thiers").exit_code == 0
    result = cli("plans", "set", "--site", "thiers", "--code", "flex", "--name", "Poste nomade", "--kind", "workspace",
                 "--price", "cent", "--interval", "month")
    err = result.stderr
    assert result.exit_code == 1 and err.count("\n") == 1 and "montant invalide" in err
    result = cli("plans", "set", "--site", "nulle-part", "--code", "flex", "--name", "Poste", "--kind", "workspace",
                 "--price", "150", "--interval", "month")
    assert result.exit_code == 1
    assert "site inconnu" in result.stderr
    assert cli("plans", "set", "--site", "thiers", "--code", "flex", "--name", "Poste nomade", "--kind", "workspace",
               "--price", "150,00", "--interval", "month").exit_code == 0
    result = cli("plans", "list")
    assert result.exit_code == 0
    out = result.stdout
    assert "thiers/flex  Poste nomade  workspace  month  HT 150,00  TVA 20 %  TTC 180,00 EUR  706  not synced" in out


async def test_subscriptions_from_before_tax_rates_get_their_plans_rate_once_without_proration(sessions, world, catalogue, gw, fake):
    from funding.coworking.billing import tax_untaxed_subscriptions
    from tests.support.coworking import active_member

    _member, sub, _row, _inv = await active_member(sessions, world, catalogue, fake)
    assert sub["items"]["data"][0]["tax_rates"] == []
    assert await tax_untaxed_subscriptions(sessions, gw) == [sub["id"]]
    (_path, params, key), = fake.posted(f"subscriptions/{sub['id']}")
    assert params["proration_behavior"] == "none" and params["items"][0]["id"] == sub["items"]["data"][0]["id"]
    [rate] = params["items"][0]["tax_rates"]
    assert fake.objects[rate]["percentage"] == 20.0 and key.startswith("entrelab-coworking-tax-")
    assert await tax_untaxed_subscriptions(sessions, gw) == []  # taxed now: left alone
    assert len(fake.posted(f"subscriptions/{sub['id']}")) == 1

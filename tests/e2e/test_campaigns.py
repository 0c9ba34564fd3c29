"""Campaigns end to end: the live app, the offline Stripe sandbox's hosted pages and webhooks,
the deadline job, and the books checked against the sandbox's balance transactions."""

from __future__ import annotations

import datetime as dt
import re
import threading

import httpx
from sqlalchemy import select

from funding.campaigns import deadline
from funding.campaigns.models import Campaign, CampaignEntry, Match, Pledge
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.stripe_gateway import StripeGateway
from stripe_sandbox.visitor import form_action
from tests.support.campaigns import make_campaign
from tests.support.e2e import db_call, pay_on_hosted_page, sandbox_get, wait_for
from tests.support.web import csrf_of
from tests.support.world import make_world


def contribute(client: httpx.Client, slug: str, **fields) -> str:
    """Fill the campaign page's form; returns the sandbox Checkout address it leads to."""
    page = client.get(f"/campagnes/{slug}")
    data = {"csrf_token": csrf_of(page.text), "currency": "EUR", "tier": "", "amount": "", "name": "Ana Martin",
            "email": "ana@example.org", "street": "3 rue Durolle", "postcode": "63300", "town": "Thiers",
            "country": "France", "show_name": "1", "public_name": "", "message": ""}
    data.update(fields)
    response = client.post(f"/campagnes/{slug}/contribuer", data=data)
    assert response.status_code == 303, response.text[:500]
    assert "/_sandbox/stripe/checkout/cs_" in response.headers["location"]
    return response.headers["location"]


def back_and_thanked(client: httpx.Client, paid: httpx.Response) -> httpx.Response:
    assert paid.status_code in (302, 303), paid.text[:300]
    thanks = client.get(paid.headers["location"])
    assert thanks.status_code == 200
    return thanks


def close(server, moment: dt.datetime) -> int:
    async def go(sessions):
        gw = StripeGateway(server.settings)
        try:
            return await deadline.run(sessions, server.settings, gw, now=moment)
        finally:
            await gw.aclose()

    return db_call(server.settings, go)


def pledges_of(server, campaign_id: int) -> list[Pledge]:
    async def go(sessions):
        async with sessions() as session:
            return list((await session.scalars(select(Pledge).where(Pledge.campaign_id == campaign_id).order_by(Pledge.id))).all())

    return db_call(server.settings, go)


def campaign_of(server, campaign_id: int) -> Campaign:
    async def go(sessions):
        async with sessions() as session:
            return await session.get(Campaign, campaign_id)

    return db_call(server.settings, go)


def campaign_entries(server, campaign_id: int) -> list[tuple[Entry, list[tuple[str, int]]]]:
    async def go(sessions):
        async with sessions() as session:
            rows = (await session.scalars(select(Entry).join(CampaignEntry, CampaignEntry.source_key == Entry.source_key)
                                          .where(CampaignEntry.campaign_id == campaign_id, Entry.number.is_not(None))
                                          .order_by(Entry.number))).all()
            out = []
            for entry in rows:
                postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id)
                                                  .order_by(Posting.line_no))).all()
                out.append((entry, [(p.account_number, p.amount) for p in postings]))
            return out

    return db_call(server.settings, go)


def email_keys(server) -> set[str]:
    async def go(sessions):
        async with sessions() as session:
            return set((await session.scalars(select(Email.dedupe_key))).all())

    return db_call(server.settings, go)


def assert_matches_the_sandbox(server, entry: Entry, lines: list[tuple[str, int]], revenue: list[tuple[str, int]]) -> dict:
    """A Stripe entry is the sandbox's balance transaction: net on 5115, fee on 627, gross on revenue."""
    assert entry.source_key.startswith("stripe:txn_")
    txn = sandbox_get(server, f"/v1/balance_transactions/{entry.source_key.removeprefix('stripe:')}")
    expected = [("5115", txn["net"])] + ([("627", txn["fee"])] if txn["fee"] else []) + revenue
    assert lines == expected and sum(amount for _account, amount in lines) == 0
    assert txn["fee"] > 0 and txn["amount"] == -sum(amount for _account, amount in revenue)
    return txn


def sandbox_payment_intents(server, campaign_id: int) -> list[dict]:
    data = sandbox_get(server, "/v1/payment_intents?limit=100")["data"]
    return [pi for pi in data if (pi.get("metadata") or {}).get("campaign_id") == str(campaign_id)]


def test_a_keep_it_all_gift_from_the_page_to_the_books(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(s, world, slug="fablab", goal=100_000))
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        checkout = contribute(client, "fablab", amount="50", name="Martine Chabrier", message="Pour le FabLab !")
        thanks = back_and_thanked(client, pay_on_hosted_page(client, checkout, "4242 4242 4242 4242"))
        assert "Merci !" in thanks.text and "50,00" in thanks.text
        assert "Voir ma contribution" in thanks.text
        # Observed: the Checkout session id alone (a URL, a referrer, a log) revealed the pledge's link.
        with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as stranger:
            seen = stranger.get(str(thanks.url).replace(e2e.url, ""))
        assert seen.status_code == 200 and "Merci !" in seen.text
        assert "Voir ma contribution" not in seen.text
        assert not re.search(r"/contributions/(?!renvoyer)", seen.text)  # only the page to ask for one's links
        assert "ana@example.org" in thanks.text and "ana@example.org" not in seen.text
        page = client.get("/campagnes/fablab")
        assert 'data-percent="5"' in page.text and "Martine Chabrier" in page.text and "Pour le FabLab !" in page.text

    (entry, lines), = wait_for(lambda: campaign_entries(e2e, campaign.id), what="the gift's ledger entry")
    assert_matches_the_sandbox(e2e, entry, lines, [("75411", -5000)])
    assert (entry.funding_source, entry.site_id, entry.journal_code) == ("crowdfunding", world.site_id, "ST")
    (paid,) = pledges_of(e2e, campaign.id)
    assert (paid.status, paid.nature) == ("paid", "gift")
    row = campaign_of(e2e, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (5000, 5000, 1)
    assert f"campaign-pledge:{paid.id}:paid" in email_keys(e2e)


def test_an_all_or_nothing_campaign_that_succeeds_with_one_card_to_authenticate_and_one_declined(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(s, world, slug="atelier", mode="all_or_nothing", goal=10_000))
    backers = [("Paul Mercier", "60", "4242 4242 4242 4242"), ("Jeanne Roux", "30", "4000 0027 6000 3184"),
               ("Inès Fabre", "40", "4000 0000 0000 0341"), ("Léo Vidal", "25", "4000 0000 0000 0341")]
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        for name, amount, card in backers:
            checkout = contribute(client, "atelier", amount=amount, name=name,
                                  email=f"{name.split()[0].lower()}@example.org")
            thanks = back_and_thanked(client, pay_on_hosted_page(client, checkout, card, name=name))
            assert "votre promesse est enregistrée" in thanks.text
    paul, jeanne, ines, leo = pledges_of(e2e, campaign.id)
    assert {p.status for p in (paul, jeanne, ines, leo)} == {"active"}
    assert sandbox_payment_intents(e2e, campaign.id) == []  # nothing is charged before the deadline
    assert campaign_of(e2e, campaign.id).crowd_total == 15_500

    # The deadline: two workers run the job at the same moment.
    moment = campaign.ends_at + dt.timedelta(seconds=1)
    runs = [threading.Thread(target=close, args=(e2e, moment)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    close(e2e, moment + dt.timedelta(minutes=1))  # and once more, later
    paul, jeanne, ines, leo = pledges_of(e2e, campaign.id)
    assert (campaign_of(e2e, campaign.id).status, paul.status, jeanne.status, ines.status, leo.status) == (
        "succeeded", "paid", "action_required", "card_declined", "card_declined")
    intents = sandbox_payment_intents(e2e, campaign.id)
    assert sorted(pi["metadata"]["pledge_id"] for pi in intents) == sorted(str(p.id) for p in (paul, jeanne, ines, leo))
    keys = email_keys(e2e)
    assert {f"campaign-pledge:{jeanne.id}:auth-1", f"campaign-pledge:{ines.id}:declined-1"} <= keys

    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        # Jeanne follows the link of her email and confirms with her bank (3-D Secure).
        mine = client.get(f"/contributions/{jeanne.access_token}")
        assert "Confirmer le paiement de 30,00" in mine.text
        to_bank = client.post(f"/contributions/{jeanne.access_token}/confirmer", data={"csrf_token": csrf_of(mine.text)})
        assert to_bank.status_code == 303 and "/_sandbox/stripe/authenticate/pi_" in to_bank.headers["location"]
        challenge = client.get(to_bank.headers["location"])
        back = client.post(form_action(challenge.text), data={"action": "authenticate"})
        assert back.status_code == 303
        assert back.headers["location"].startswith(f"{e2e.url}/contributions/{jeanne.access_token}/confirmer")
        done = client.get(back.headers["location"])
        assert done.status_code == 303
        assert 'data-status="paid"' in client.get(done.headers["location"]).text

        # Ines gives another card within the grace window, through the link of her email.
        hers = client.get(f"/contributions/{ines.access_token}")
        assert "Enregistrer une autre carte" in hers.text
        to_checkout = client.post(f"/contributions/{ines.access_token}/carte", data={"csrf_token": csrf_of(hers.text)})
        assert to_checkout.status_code == 303 and "/_sandbox/stripe/checkout/cs_" in to_checkout.headers["location"]
        saved = pay_on_hosted_page(client, to_checkout.headers["location"], "4242 4242 4242 4242", name="Inès Fabre")
        assert saved.status_code == 303 and "/carte?session_id=cs_" in saved.headers["location"]
        assert client.get(saved.headers["location"]).status_code == 303
    assert pledges_of(e2e, campaign.id)[2].status == "retry"
    close(e2e, moment + dt.timedelta(days=2))  # the next round charges her new card (second attempt, new key)

    # Léo never gives another card: seven days later his promise fails, and nothing was taken from him.
    close(e2e, moment + dt.timedelta(days=7, minutes=5))
    paul, jeanne, ines, leo = pledges_of(e2e, campaign.id)
    assert (paul.status, jeanne.status, ines.status, leo.status) == ("paid", "paid", "paid", "failed")
    assert ines.charge_attempt == 2
    row = campaign_of(e2e, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (13_000, 13_000, 3)
    succeeded = [pi for pi in sandbox_payment_intents(e2e, campaign.id) if pi["status"] == "succeeded"]
    assert sorted(pi["metadata"]["pledge_id"] for pi in succeeded) == sorted([str(paul.id), str(jeanne.id), str(ines.id)])

    def three_charges_booked():
        found = campaign_entries(e2e, campaign.id)
        return found if len(found) == 3 else None

    found = wait_for(three_charges_booked, what="three charges in the books")
    amounts = []
    for entry, lines in found:
        txn = assert_matches_the_sandbox(e2e, entry, lines, [("75411", lines[-1][1])])
        amounts.append(txn["amount"])
    assert sorted(amounts) == [3000, 4000, 6000]


def test_an_all_or_nothing_campaign_that_fails_charges_nobody(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(s, world, slug="residence", mode="all_or_nothing", goal=1_000_000))
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        for name in ("Karim Benali", "Élodie Vernet"):
            checkout = contribute(client, "residence", amount="80", name=name, email=f"{name.split()[0].lower()}@example.org")
            back_and_thanked(client, pay_on_hosted_page(client, checkout, "4242 4242 4242 4242", name=name))
    close(e2e, campaign.ends_at + dt.timedelta(seconds=1))
    close(e2e, campaign.ends_at + dt.timedelta(days=8))
    assert campaign_of(e2e, campaign.id).status == "failed"
    pledges = pledges_of(e2e, campaign.id)
    assert [p.status for p in pledges] == ["void", "void"]
    assert sandbox_payment_intents(e2e, campaign.id) == []
    assert all(txn["type"] != "charge" for txn in sandbox_get(e2e, "/v1/balance_transactions?limit=100")["data"])
    assert campaign_entries(e2e, campaign.id) == []
    assert {f"campaign-pledge:{p.id}:campaign-failed" for p in pledges} <= email_keys(e2e)


def test_matchfunding_capped_at_its_total_is_booked_as_a_public_grant(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(
        s, world, slug="cuisine", goal=10_000, match={"cap": 5000, "total": 6000, "reference": "TDM-DEL-2026-112"}))
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        for name, amount in (("Sophie Dumas", "50"), ("Louis Bernard", "40")):
            checkout = contribute(client, "cuisine", amount=amount, name=name, email=f"{name.split()[0].lower()}@example.org")
            back_and_thanked(client, pay_on_hosted_page(client, checkout, "4242 4242 4242 4242", name=name))
        page = client.get("/campagnes/cuisine")
        # crowd 90 €, match 50 + 40 = 90 € capped at 60 €: 150 € of 100 €
        assert "Contributions : 90,00" in page.text and "Abondement public : 60,00" in page.text
        assert 'data-percent="150"' in page.text
    wait_for(lambda: len(campaign_entries(e2e, campaign.id)) == 2, what="the two gifts in the books")
    close(e2e, campaign.ends_at + dt.timedelta(seconds=1))
    assert campaign_of(e2e, campaign.id).status == "succeeded"
    found = campaign_entries(e2e, campaign.id)
    stripe = [(e, lines) for e, lines in found if e.journal_code == "ST"]
    (match_entry, match_lines), = [(e, lines) for e, lines in found if e.journal_code == "OD"]
    for entry, lines in stripe:
        assert_matches_the_sandbox(e2e, entry, lines, [("75411", lines[-1][1])])
    assert sorted(-lines[-1][1] for _e, lines in stripe) == [4000, 5000]
    assert match_lines == [("441", 6000), ("741", -6000)] and match_entry.funding_source == "public"

    async def match_row(sessions):
        async with sessions() as session:
            return await session.scalar(select(Match).where(Match.campaign_id == campaign.id))

    match = db_call(e2e.settings, match_row)
    assert (match.status, match.released_amount) == ("released", 6000) and match.grant_id == match_entry.grant_id

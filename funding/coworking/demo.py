"""Coworking demo: plans per site (seed), then members who join and live through the Stripe
sandbox (play, first run only): they pay on the hosted Checkout page (by card, two by SEPA
Direct Debit, one of whose first debit fails days later), a card starts failing
(past due, then unpaid), someone upgrades with proration, someone cancels at period end,
passes are bought and used; two months of renewals happen. Everything reaches the books
through webhooks, as in production. People and companies are made up.

Their history is played on Stripe Test Clocks, as one would on a Stripe test account: each
subscriber's customer lives on a clock frozen two months ago (``HISTORY``), which the demo
then advances to today (passes are bought today, on the global clock). The sandbox's global clock never moves, so the dates of the app and of
Stripe agree: nobody has joined, been invoiced or paid later than today.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import httpx
from sqlalchemy import func, select

from funding.clock import paris_today
from funding.coworking import billing
from funding.coworking.credit_notes import issue_pending
from funding.coworking.members import check_details, enrol, ensure_customer
from funding.coworking.models import (
    Checkout,
    CreditNote,
    Interval,
    Invoice,
    InvoiceStatus,
    Member,
    Pass,
    Plan,
    PlanKind,
    Subscription,
)
from funding.coworking.plans import PlanSpec, save_plan, sync_plans
from funding.coworking.service import use_pass_day
from funding.db import must_get, transaction
from funding.orgs.models import Site
from funding.settings import Settings
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from stripe_sandbox.visitor import pay, pay_by_debit

log = logging.getLogger("funding.demo")

DESK = "Poste en open space, wifi fibre, café, salle de réunion sur réservation."
PLANS = {
    "thiers": [
        PlanSpec("flex", "Poste nomade", PlanKind.WORKSPACE, "150,00", "20", "706", Interval.MONTH, description=DESK, position=1),
        PlanSpec("fixe", "Poste fixe", PlanKind.WORKSPACE, "220,00", "20", "706", Interval.MONTH,
                 description="Votre bureau attitré avec caisson, accès 24 h/24.", position=2),
        PlanSpec("bureau", "Bureau privatif (entreprises incubées)", PlanKind.WORKSPACE, "390,00", "20", "706", Interval.MONTH,
                 description="Bureau fermé de 12 m² pour les entreprises accompagnées par l'incubateur.",
                 company_only=True, position=3),
        PlanSpec("adhesion", "Adhésion annuelle à l'association", PlanKind.MEMBERSHIP, "30,00", "0", "7562", Interval.YEAR,
                 description="Voix à l'assemblée générale, accès aux ateliers du FabLab au tarif adhérent.", position=4),
        PlanSpec("journee", "Pass journée", PlanKind.PASS, "18,00", "20", "706", pass_days=1, position=5),
        PlanSpec("carnet-10", "Carnet de 10 journées", PlanKind.PASS, "150,00", "20", "706", pass_days=10, position=6),
    ],
    "courpiere": [
        PlanSpec("flex", "Poste nomade", PlanKind.WORKSPACE, "120,00", "20", "706", Interval.MONTH, description=DESK, position=1),
        PlanSpec("adhesion", "Adhésion annuelle à l'association", PlanKind.MEMBERSHIP, "30,00", "0", "7562", Interval.YEAR, position=2),
        PlanSpec("journee", "Pass journée", PlanKind.PASS, "15,00", "20", "706", pass_days=1, position=3),
    ],
    "la-monnerie": [
        PlanSpec("flex", "Poste nomade", PlanKind.WORKSPACE, "120,00", "20", "706", Interval.MONTH, description=DESK, position=1),
        PlanSpec("fixe", "Poste fixe atelier", PlanKind.WORKSPACE, "180,00", "20", "706", Interval.MONTH,
                 description="Établi attitré dans l'atelier partagé.", position=2),
    ],
    "puy-guillaume": [
        PlanSpec("flex", "Poste nomade", PlanKind.WORKSPACE, "110,00", "20", "706", Interval.MONTH, description=DESK, position=1),
        PlanSpec("journee", "Pass journée", PlanKind.PASS, "15,00", "20", "706", pass_days=1, position=2),
        PlanSpec("carnet-10", "Carnet de 10 journées", PlanKind.PASS, "130,00", "20", "706", pass_days=10, position=3),
    ],
}

GOOD, FAILS = "4242 4242 4242 4242", "4000 0000 0000 0341"  # 0341: set up fine, every charge declined
# (site, plan, name, email, company, siren, vat, story)
MEMBERS = [
    ("thiers", "flex", "Julie Fayolle", "julie.fayolle@example.fr", "", "", "", "renews"),
    ("thiers", "fixe", "Thomas Granet", "thomas.granet@example.fr", "", "", "", "renews"),
    ("thiers", "bureau", "Nadia Chassaing", "contact@atelier-numerique-livradois.example.fr",
     "Atelier Numérique du Livradois SAS", "918734021", "FR37918734021", "renews"),
    ("courpiere", "flex", "Marc Vidal", "marc.vidal@example.fr", "", "", "", "cancels"),
    ("thiers", "flex", "Claire Bouchet", "claire.bouchet@example.fr", "", "", "", "past_due"),
    ("la-monnerie", "flex", "Sébastien Roche", "sebastien.roche@example.fr", "", "", "", "upgrades"),
    ("la-monnerie", "fixe", "Damien Rivière", "d.riviere@coop-dore-bois.example.fr", "Coopérative Dore Bois SCOP",
     "934561200", "FR74934561200", "renews"),
    ("puy-guillaume", "flex", "Kévin Lopez", "kevin.lopez@example.fr", "", "", "", "unpaid"),
    ("thiers", "adhesion", "Amandine Brun", "amandine.brun@example.fr", "", "", "", "renews"),
    ("thiers", "fixe", "Élise Montagnon", "elise.montagnon@example.fr", "", "", "", "leaving"),
    ("thiers", "carnet-10", "Hugo Morel", "hugo.morel@example.fr", "", "", "", "pass"),
    ("puy-guillaume", "journee", "Léa Perrin", "lea.perrin@example.fr", "", "", "", "pass"),
    # By SEPA Direct Debit: Mathilde's debits settle days after each renewal; Yanis's first one is refused by his
    # bank after days of processing (insufficient funds): his subscription never starts, he is told why.
    ("courpiere", "flex", "Mathilde Rougier", "mathilde.rougier@example.fr", "", "", "", "sepa"),
    ("thiers", "adhesion", "Yanis Chabrier", "yanis.chabrier@example.fr", "", "", "", "sepa_fails"),
]
# Stripe's test IBANs: succeeds; fails after processing (insufficient_funds)
IBANS = {"sepa": "FR1420041010050500013M02606", "sepa_fails": "FR8420041010050500013M02607"}
DAY = 86_400
# The demo's story, in days after joining: an upgrade after 10, the renewals after 32 and 41,
# Claire's second renewal after 64. Members join this long ago, on their clocks.
STEPS = (10, 22, 9, 23)
HISTORY = sum(STEPS) * DAY
# Where the members live or work (made up, in the Thiers area): printed on their invoices.
ADDRESSES = {
    "julie.fayolle@example.fr": "5 rue Durolle\n63300 Thiers",
    "thomas.granet@example.fr": "4 place du Pirou\n63300 Thiers",
    "contact@atelier-numerique-livradois.example.fr": "Zone du Felet, 18 rue des Forges\n63300 Thiers",
    "marc.vidal@example.fr": "9 avenue de la Gare\n63120 Courpière",
    "claire.bouchet@example.fr": "27 rue Conchette\n63300 Thiers",
    "sebastien.roche@example.fr": "3 chemin des Rivaux\n63650 La Monnerie-le-Montel",
    "d.riviere@coop-dore-bois.example.fr": "Moulin de la Dore, 2 route de Vichy\n63650 La Monnerie-le-Montel",
    "kevin.lopez@example.fr": "15 rue de la République\n63290 Puy-Guillaume",
    "amandine.brun@example.fr": "6 rue Mancel-Chabot\n63300 Thiers",
    "elise.montagnon@example.fr": "21 boulevard Gambetta\n63300 Thiers",
    "hugo.morel@example.fr": "8 rue du Bourg\n63300 Thiers",
    "lea.perrin@example.fr": "1 place Jean-Jaurès\n63290 Puy-Guillaume",
    "mathilde.rougier@example.fr": "12 rue du Château\n63120 Courpière",
    "yanis.chabrier@example.fr": "30 rue de Lyon\n63300 Thiers",
}


async def seed(session, demo) -> None:
    for slug, specs in PLANS.items():
        site = demo.sites.get(slug)
        if site is None:
            continue
        for spec in specs:
            await save_plan(session, site, spec)


async def _pay(http: httpx.AsyncClient, url: str, name: str, card: str, iban: str | None = None) -> bool:
    result = await (pay_by_debit(http, url, name=name, iban=iban) if iban else pay(http, url, name=name, card=card))
    if result.status_code not in (302, 303):
        return False
    await http.get(result.headers["location"])  # back to our return page, which applies the result now
    return True


async def _portal_card(sessions, gw, http: httpx.AsyncClient, settings: Settings, member_id: int, name: str, card: str) -> None:
    """The member replaces their card on the Billing Portal, as a person would."""
    url = await billing.portal_url(sessions, gw, member_id=member_id, return_url=f"{settings.base_url}/membre")
    await http.post(url.split("?", 1)[0], data={"action": "update-card", "cardholder-name": name, "card-number": card,
                                                  "card-expiry": "09/31", "card-cvc": "314"})


async def _on_a_clock(sessions, gw: StripeGateway, member_id: int, name: str, frozen_time: int) -> str:
    """The member's Stripe customer, attached to a new Test Clock frozen at ``frozen_time``."""
    customer = await ensure_customer(sessions, gw, member_id)
    clock = await gw.create("test_helpers.test_clocks", {"frozen_time": frozen_time, "name": f"Démo : {name}"[:300],
                                                         "customer": customer}, key=f"demo-clock-member-{member_id}")
    return str(clock["id"])


async def _advance(http: httpx.AsyncClient, settings: Settings, gw: StripeGateway, clocks: dict[str, int], seconds: int) -> None:
    """Every member's clock moves ``seconds`` on (Stripe advances a clock asynchronously: wait
    until it is ``ready``), then the sandbox delivers what happened."""
    for clock_id in clocks:
        clocks[clock_id] += seconds
        await gw.call("test_helpers.test_clocks", "advance", clock_id, params={"frozen_time": clocks[clock_id]},
                      key=f"demo-advance-{clock_id}-{clocks[clock_id]}")
        for _ in range(300):
            if (await gw.retrieve("test_helpers.test_clocks", clock_id))["status"] == "ready":
                break
            await asyncio.sleep(0.1)
    await http.post(f"{settings.base_url}{SANDBOX_PATH}/_admin/deliver")


async def _subscription(sessions, member_id: int) -> Subscription:
    """The member's latest subscription: the return page from Checkout recorded it."""
    async with sessions() as session:
        sub = await session.scalar(select(Subscription).where(Subscription.member_id == member_id)
                                   .order_by(Subscription.id.desc()).limit(1))
    if sub is None:
        raise LookupError(f"member {member_id} has no subscription")
    return sub


async def _invoices_afterlife(sessions, gw: StripeGateway, http: httpx.AsyncClient, settings: Settings,
                              by_story: dict[str, list[tuple[int, str]]]) -> None:
    """What becomes of invoices: Thomas is refunded 40 € of his first month (the heating failed for
    a week): Stripe issues a credit note, booked as the sale's mirror. Kévin's unpaid invoice is
    written off (uncollectible): a loss on 654, its VAT recovered."""
    for member_id, _name in by_story.get("renews", [])[1:2]:
        async with sessions() as session:
            first = await session.scalar(select(Invoice).where(Invoice.member_id == member_id, Invoice.status == InvoiceStatus.PAID)
                                         .order_by(Invoice.id).limit(1))
        if first is None:
            continue
        payments = await gw.list("invoice_payments", {"invoice": first.stripe_invoice_id, "limit": 1})
        for record in payments.get("data") or []:
            await gw.create("refunds", {"payment_intent": record["payment"]["payment_intent"], "amount": 4000,
                                        "reason": "requested_by_customer", "metadata": {"motif": "chauffage en panne une semaine"}},
                            key=f"demo-refund-{first.stripe_invoice_id}")
    for member_id, _name in by_story.get("unpaid", []):
        async with sessions() as session:
            unpaid = (await session.scalars(select(Invoice.stripe_invoice_id).where(
                Invoice.member_id == member_id, Invoice.status == InvoiceStatus.OPEN))).all()
        for invoice_id in unpaid:
            await gw.call("invoices", "mark_uncollectible", invoice_id)
    await http.post(f"{settings.base_url}{SANDBOX_PATH}/_admin/deliver")
    for _ in range(100):  # the refund's events call for the credit note (the server applies them), the worker issues it
        async with sessions() as session:
            if await session.scalar(select(func.count(CreditNote.id))):
                break
        await asyncio.sleep(0.1)
    await issue_pending(sessions, settings, gw)
    await http.post(f"{settings.base_url}{SANDBOX_PATH}/_admin/deliver")


async def play(settings: Settings, gw: StripeGateway, sessions) -> None:
    try:
        async with sessions() as session:
            if await session.scalar(select(func.count(Checkout.id))) or not await session.scalar(select(func.count(Plan.id))):
                return
            sites = {s.slug: s for s in (await session.scalars(select(Site))).all()}
            plans = {(p.site_id, p.code): p for p in (await session.scalars(select(Plan))).all()}
        await sync_plans(sessions, gw)
        members: dict[str, tuple[int, str]] = {}
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
            # Everyone joins HISTORY ago, on their own clock; the clocks then catch up with today.
            today = int((await http.get(f"{settings.base_url}{SANDBOX_PATH}/_admin/clock")).json()["now"])
            clocks: dict[str, int] = {}
            for slug, code, name, email, company, siren, vat, story in MEMBERS:
                site = sites.get(slug)
                plan = plans.get((site.id, code)) if site else None
                if site is None or plan is None:
                    continue
                details = check_details(name=name, email=email, company_name=company, siren=siren, vat_number=vat,
                                        address=ADDRESSES.get(email))
                async with transaction(sessions) as session:
                    member, _created = await enrol(session, site, details)
                    member.address = details.address or ""
                if plan.kind != PlanKind.PASS:  # a pass is bought today: its Checkout expires_at is real time
                    clocks[await _on_a_clock(sessions, gw, member.id, name, today - HISTORY)] = today - HISTORY
                urls = {"success_url": f"{settings.base_url}/coworking/bienvenue?session_id={{CHECKOUT_SESSION_ID}}",
                        "cancel_url": f"{settings.base_url}/coworking/{slug}"}
                if plan.kind == PlanKind.PASS:
                    urls["success_url"] = f"{settings.base_url}/coworking/pass/merci?session_id={{CHECKOUT_SESSION_ID}}"
                    url = await billing.start_pass(sessions, gw, member_id=member.id, plan_id=plan.id, **urls)
                else:
                    url = await billing.start_subscription(sessions, gw, member_id=member.id, plan_id=plan.id, **urls)
                if await _pay(http, url, name, GOOD, IBANS.get(story)):
                    members[story + ":" + email] = (member.id, name)
            by_story: dict[str, list[tuple[int, str]]] = {}
            for key, value in members.items():
                by_story.setdefault(key.split(":", 1)[0], []).append(value)

            # Hugo spends three days of his 10-day pass.
            async with transaction(sessions) as session:
                for member_id, _name in by_story.get("pass", []):
                    holder = await must_get(session, Member, member_id)
                    if await session.scalar(select(Pass.id).where(Pass.member_id == member_id, Pass.days_total > 1)):
                        for back in (3, 2, 1):
                            await use_pass_day(session, holder, day=paris_today() - dt.timedelta(days=back),
                                               recorded_by="accueil@entre-lab.fr")
            # Marc leaves at the end of his first month; Kévin's card starts failing.
            for member_id, _name in by_story.get("cancels", []):
                sub = await _subscription(sessions, member_id)
                await billing.set_cancel_at_period_end(sessions, gw, member_id=member_id, sub_id=sub.id, cancel=True)
            for member_id, name in by_story.get("unpaid", []):
                await _portal_card(sessions, gw, http, settings, member_id, name, FAILS)
            # Ten days later Sébastien moves from the nomad desk to a fixed bench (prorated, paid now).
            ten, twenty_two, nine, twenty_three = (n * DAY for n in STEPS)
            await _advance(http, settings, gw, clocks, ten)
            for member_id, _name in by_story.get("upgrades", []):
                sub = await _subscription(sessions, member_id)
                async with sessions() as session:
                    target = await session.scalar(select(Plan).where(Plan.site_id == sub.site_id, Plan.code == "fixe"))
                if target is None:
                    raise LookupError(f"site {sub.site_id} sells no fixed desk")
                preview = await billing.preview_change(sessions, gw, settings, member_id=member_id, sub_id=sub.id,
                                                       plan_id=target.id)
                await billing.confirm_change(sessions, gw, settings, member_id=member_id, token=preview.token)
            # First renewals (Kévin's fails and is retried), then Kévin's last retry: unpaid.
            await _advance(http, settings, gw, clocks, twenty_two)
            await _advance(http, settings, gw, clocks, nine)
            # Claire's card expires before her second renewal: past due, in the grace period.
            for member_id, name in by_story.get("past_due", []):
                await _portal_card(sessions, gw, http, settings, member_id, name, FAILS)
            await _advance(http, settings, gw, clocks, twenty_three)
            # Élise has given notice: she stays until the end of the month she paid.
            for member_id, _name in by_story.get("leaving", []):
                sub = await _subscription(sessions, member_id)
                await billing.set_cancel_at_period_end(sessions, gw, member_id=member_id, sub_id=sub.id, cancel=True)
            await _invoices_afterlife(sessions, gw, http, settings, by_story)
        log.info("demo: %s coworking members joined through the sandbox", len(members))
    except Exception:  # the demo must start even if this goes wrong
        log.exception("demo: could not play the coworking members")

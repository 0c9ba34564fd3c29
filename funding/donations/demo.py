"""Demo donations through the offline Stripe sandbox, the way people and Stripe produce them.

Played once, after the demo server answers: donors (a company among them, each with the
postal address their tax receipt states) pay on the sandbox's hosted Checkout page (a
declined card among them), a refund is made as from Stripe's dashboard, a chargeback is
lost. Everything then flows through webhooks into the books like in production: receipts
issued, then voided. The sandbox's clock is not moved (the app and Stripe keep one date):
the gifts are paid out the way Stripe does it, at the daily payout once they are available.
One donor gives monthly (a recurring gift, Checkout in subscription mode): its first
instalment is paid today, the next ones as the sandbox's clock moves on. Another gives monthly by
SEPA Direct Debit: its first debit is processing (the gift shows "en cours de prélèvement").
"""

from __future__ import annotations

import logging

import httpx
from sqlalchemy import func, select

from funding.campaigns.demo import demo_address
from funding.campaigns.donors import DonorDetails, check_donor
from funding.donations import recurring
from funding.donations.models import RecurringGift
from funding.donations.service import donor_token
from funding.orgs.models import Site
from funding.payments.models import Payment, PaymentPurpose
from funding.payments.service import start_checkout
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway
from stripe_sandbox.visitor import pay, pay_by_debit

log = logging.getLogger("funding.demo")

DONATIONS = [
    ("thiers", 5000, "Martine Chabrier", "martine.chabrier@example.fr", "4242 4242 4242 4242"),
    ("thiers", 2000, "Karim Benali", "karim.benali@example.fr", "4242 4242 4242 4242"),
    ("courpiere", 3500, "Élodie Vernet", "elodie.vernet@example.fr", "4242 4242 4242 4242"),
    ("la-monnerie", 10000, "Jean Dumas", "contact@coutellerie-dumas.example.fr", "4242 4242 4242 4242"),
    ("puy-guillaume", 1500, "Jeanne Roux", "jeanne.roux@example.fr", "4242 4242 4242 4242"),
    ("thiers", 8000, "Paul Mercier", "paul.mercier@example.fr", "4000 0000 0000 0259"),  # disputed later
    ("courpiere", 2500, "Inès Fabre", "ines.fabre@example.fr", "4000 0000 0000 9995"),  # declined
]

# A company gives as a company: its receipt is the one for companies (article 238 bis, 60 %).
COMPANIES = {"Jean Dumas": DonorDetails(street="14 rue de la Coutellerie", postcode="63650", town="La Monnerie-le-Montel",
                                        country="France", company=True, company_name="Coutellerie Dumas SARL",
                                        siren="812345676")}


# A monthly gift to the central site, by card; another by SEPA Direct Debit (its first debit processing: the sandbox's
# clock is not moved, so the backer space shows it "en cours de prélèvement" until the clock moves on 5 business days).
RECURRING = ("thiers", 1500, "Sylvie Gauthier", "sylvie.gauthier@example.fr", "4242 4242 4242 4242")
RECURRING_SEPA = ("courpiere", 2000, "Hélène Bardin", "helene.bardin@example.fr", "FR1420041010050500013M02606")


async def play_recurring(settings: Settings, gw: StripeGateway, sessions) -> None:
    try:
        async with sessions() as session:
            if await session.scalar(select(func.count(RecurringGift.id))):
                return
            sites = {s.slug: s for s in (await session.scalars(select(Site))).all()}
        for (slug, amount, name, email, means), by_debit in ((RECURRING, False), (RECURRING_SEPA, True)):
            site = sites.get(slug)
            if site is None:
                continue
            donor = check_donor(demo_address(name), required=True)
            if donor is None:
                raise ValueError(name)
            _gift, url = await recurring.start_recurring(
                sessions, gw, site=site, amount=amount, interval="month", email=email, name=name,
                donor={"donor_address": donor.address, "company_name": donor.company_name, "company_siren": donor.siren},
                success_url=f"{settings.base_url}/soutenir/regulier/merci?session_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{settings.base_url}/soutenir?annule=1")
            async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
                if by_debit:
                    await pay_by_debit(http, url, name=name, iban=means)
                else:
                    await pay(http, url, name=name, card=means)
            log.info("demo: a monthly gift of %s cents to %s%s", amount, slug, " by SEPA Direct Debit" if by_debit else "")
    except Exception:  # the demo must start even if this goes wrong
        log.exception("demo: could not play the recurring gift")


async def play(settings: Settings, gw: StripeGateway, sessions) -> None:
    await play_one_off(settings, gw, sessions)
    await play_recurring(settings, gw, sessions)


async def play_one_off(settings: Settings, gw: StripeGateway, sessions) -> None:
    try:
        async with sessions() as session:
            if await session.scalar(select(func.count(Payment.id))):
                return
            sites = {s.slug: s for s in (await session.scalars(select(Site))).all()}
        paid: list[Payment] = []
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
            for slug, amount, name, email, card in DONATIONS:
                site = sites.get(slug)
                if site is None:
                    continue
                details = COMPANIES.get(name) or demo_address(name)
                donor = check_donor(details, required=True)
                if donor is None:  # required: a donor or a refusal
                    raise ValueError(name)
                payment, url = await start_checkout(
                    sessions, gw, purpose=PaymentPurpose.DONATION, org_id=site.org_id, site_id=site.id, amount=amount, currency="EUR",
                    description=f"Don à {site.name}", email=email, name=name,
                    donor={"donor_address": donor.address, "company_name": donor.company_name, "company_siren": donor.siren},
                    donor_link=lambda payment_id: f"{settings.base_url}/soutenir/recu/{donor_token(settings.secret_key, payment_id)}",
                    success_url=f"{settings.base_url}/soutenir/merci?session_id={{CHECKOUT_SESSION_ID}}",
                    cancel_url=f"{settings.base_url}/soutenir?annule=1",
                )
                result = await pay(http, url, name=name, card=card)
                if result.status_code in (302, 303):
                    paid.append(payment)
            # A refund made from Stripe's dashboard: 10,00 € of Karim's gift.
            refunded = paid[1].checkout_session_id
            if refunded is None:  # start_checkout sets it before it returns
                raise ValueError(f"payment {paid[1].id} has no Checkout session")
            checkout = await gw.retrieve("checkout.sessions", refunded)
            await gw.create("refunds", {"payment_intent": checkout["payment_intent"], "amount": 1000,
                                        "reason": "requested_by_customer"}, key="demo-dashboard-refund-1")
            # Paul's bank disputes his gift; the association accepts the loss.
            disputes = await gw.list("disputes", {"limit": 10})
            for dispute in disputes["data"]:
                await gw.call("disputes", "close", dispute["id"])
        log.info("demo: %s donations paid through the sandbox", len(paid))
    except Exception:  # the demo must start even if this goes wrong
        log.exception("demo: could not play the donations")

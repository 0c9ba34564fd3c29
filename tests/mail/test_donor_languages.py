"""Issue 17, donors and backers: a gift's thanks and receipt, a recurring gift's refused
instalment and a campaign contribution's receipt reach the donor in their language (the
address's user's, French when the address is no user's), with an HTML part; the French text
is the one these emails always had."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date
from sqlalchemy import select

from funding.campaigns.models import TaxReceipt
from funding.campaigns.receipts import receipt_code
from funding.clock import local_day
from funding.db import transaction, utcnow
from funding.donations import recurring
from funding.donations.models import GiftInterval, GiftStatus, RecurringGift
from funding.donations.service import thank
from funding.mail.compose import recipient_locales
from funding.money import format_money
from funding.orgs.models import Site
from funding.payments.models import Payment, PaymentStatus
from tests.support.campaigns import make_campaign, paid_pledge
from tests.support.mail import TRICKY_NAME, assert_html_part, donor_row, links_in, mails_to, speaks

LINK = "http://testserver/soutenir/recu/tok.en?a=1&b=2"  # an & to escape in the HTML part
INDIVIDUAL_FR = ("Vous pouvez déduire de votre impôt sur le revenu 66 % du montant de ce don (article 200 du CGI), dans la "
                 "limite de 20 % de votre revenu imposable.")
INDIVIDUAL_EN = ("You may deduct 66 % of this gift from your income tax (article 200 of the French tax code, CGI), up to "
                 "20 % of your taxable income.")


def eur(amount: int, locale: str) -> str:
    return format_money(amount, "EUR", locale)


# --- a one-off gift's thanks, with its tax receipt ------------------------------------------


async def gift_thanks(sessions, world, locale: str):
    donor = await speaks(sessions, world.users["member"], locale, name=TRICKY_NAME)
    payment = await donor_row(sessions, Payment(
        org_id=world.org_id, site_id=world.site_id, purpose="donation", amount=5000, currency="EUR", description="Don",
        email=donor.email, name=TRICKY_NAME, donor_address="3 rue Durolle\n63300 Thiers\nFrance", donor_link=LINK,
        status=PaymentStatus.PAID, paid_at=utcnow()))
    async with transaction(sessions) as session:
        await thank(session, await session.get(Payment, payment.id))
    async with sessions() as session:
        receipt = await session.scalar(select(TaxReceipt).where(TaxReceipt.payment_id == payment.id))
        site = await session.get(Site, world.site_id)
    [mail] = await mails_to(sessions, donor.email, key_like=f"payment:{payment.id}:receipt")
    return mail, payment, receipt_code(receipt), site.name


async def test_an_english_speaking_donor_gets_the_thanks_and_receipt_in_english(sessions, world):
    mail, payment, code, site = await gift_thanks(sessions, world, "en")
    assert mail.subject == "Thank you for your gift to Entre-Lab — your tax receipt"
    assert mail.body_text == (
        f"Hello {TRICKY_NAME},\n\nWe have received your gift of €50.00 to {site}.\nReference: gift no. {payment.id}.\n\n"
        f"Your tax receipt no. {code} is attached to this message (PDF). {INDIVIDUAL_EN}\n"
        f"You can download it again here: {LINK}\n\n"
        "Thank you for keeping the third places of the Thiers area alive.\n\nThe Entre-Lab team")
    assert mail.attachments  # the receipt's PDF still goes with it
    assert_html_part(mail, name=TRICKY_NAME, links=[LINK], lang="en")
    assert "Bonjour" not in mail.body_html and "66 %" in mail.body_html


async def test_a_french_speaking_donor_gets_the_thanks_and_receipt_as_before(sessions, world):
    mail, payment, code, site = await gift_thanks(sessions, world, "fr")
    assert mail.subject == "Merci pour votre don à Entre-Lab — votre reçu fiscal"
    assert mail.body_text == (
        f"Bonjour {TRICKY_NAME},\n\nNous avons bien reçu votre don de {eur(5000, 'fr')} pour {site}.\n"
        f"Référence : don n° {payment.id}.\n\nVotre reçu fiscal n° {code} est joint à ce message (PDF). {INDIVIDUAL_FR}\n"
        f"Vous pouvez le télécharger à nouveau ici : {LINK}\n\n"
        "Merci de faire vivre les tiers-lieux du bassin thiernois.\n\nL'équipe Entre-Lab")
    assert mail.attachments
    assert_html_part(mail, name=TRICKY_NAME, links=[LINK], lang="fr")


# --- a recurring gift's refused instalment --------------------------------------------------


PAY_URL = "https://invoice.stripe.test/i/acct_1/test_x?s=ap&t=1"


async def refused_instalment(sessions, world, locale: str):
    donor = await speaks(sessions, world.users["member"], locale, name=TRICKY_NAME)
    gift = await donor_row(sessions, RecurringGift(
        org_id=world.org_id, site_id=world.site_id, amount=2000, currency="EUR", interval=GiftInterval.MONTH,
        email=donor.email, name=TRICKY_NAME, status=GiftStatus.PAST_DUE, stripe_subscription_id=f"sub_lang_{locale}"))
    retry = dt.datetime(2025, 3, 5, 12, tzinfo=dt.UTC)
    invoice = {"id": f"in_lang_{locale}", "object": "invoice", "status": "open", "amount_due": 2000, "amount_remaining": 2000,
               "currency": "eur", "next_payment_attempt": int(retry.timestamp()), "hosted_invoice_url": PAY_URL,
               "parent": {"subscription_details": {"subscription": gift.stripe_subscription_id,
                                                   "metadata": {"purpose": "recurring_gift", "recurring_gift_id": str(gift.id)}}}}
    async with transaction(sessions) as session:
        await recurring.apply_invoice(session, "invoice.payment_failed", invoice, 1)
        site = await session.get(Site, world.site_id)
    [mail] = await mails_to(sessions, donor.email, key_like=f"recurring-gift:{invoice['id']}:failed:1")
    return mail, gift, site.name, local_day(retry.replace(tzinfo=None))


async def test_an_english_speaking_donor_hears_of_the_refused_instalment_in_english(sessions, world):
    mail, gift, site, retry = await refused_instalment(sessions, world, "en")
    assert mail.subject == "Your recurring gift could not be taken"
    assert mail.body_text == (
        f"Hello {TRICKY_NAME},\n\nThe €20.00 instalment of your recurring gift no. {gift.id} to {site} was declined by your bank.\n"
        f"We will try again automatically on {format_date(retry, 'd MMMM y', locale='en_GB')}. To pay it now or change your payment method:\n"
        f"{PAY_URL}\n\nTo stop this gift, go to your donor space (“My contributions”).\n\nThe Entre-Lab team")
    assert_html_part(mail, name=TRICKY_NAME, links=[PAY_URL], lang="en")


async def test_a_french_speaking_donor_hears_of_the_refused_instalment_as_before(sessions, world):
    mail, gift, site, retry = await refused_instalment(sessions, world, "fr")
    assert mail.subject == "Votre don régulier n'a pas pu être prélevé"
    assert mail.body_text == (
        f"Bonjour {TRICKY_NAME},\n\nLe versement de {eur(2000, 'fr')} de votre don régulier n° {gift.id} pour {site} a été "
        f"refusé par votre banque.\nNous réessaierons automatiquement le {retry:%d/%m/%Y}. Pour le régler maintenant ou "
        f"changer de moyen de paiement :\n{PAY_URL}\n\nPour arrêter ce don, rendez-vous dans votre espace donateur (« Mes contributions »)."
        "\n\nL'équipe Entre-Lab")
    assert_html_part(mail, name=TRICKY_NAME, links=[PAY_URL], lang="fr")


# --- a campaign contribution's receipt ------------------------------------------------------


async def paid_contribution(sessions, world, locale: str):
    backer = await speaks(sessions, world.users["member"], locale, name=TRICKY_NAME)
    campaign = await make_campaign(sessions, world)
    pledge = await paid_pledge(sessions, campaign.id, name=TRICKY_NAME, email=backer.email)
    async with sessions() as session:
        receipt = await session.scalar(select(TaxReceipt).where(TaxReceipt.pledge_id == pledge.id))
    [mail] = await mails_to(sessions, backer.email, key_like=f"campaign-pledge:{pledge.id}:paid")
    manage = f"http://testserver/contributions/{pledge.access_token}"
    return mail, campaign, pledge, receipt_code(receipt), manage, local_day(pledge.paid_at)


async def test_an_english_speaking_backer_gets_the_contribution_receipt_in_english(sessions, world):
    mail, campaign, pledge, code, manage, paid = await paid_contribution(sessions, world, "en")
    assert mail.subject == f"Receipt: your contribution to “{campaign.title}”"
    assert mail.body_text == (
        f"Hello {TRICKY_NAME},\n\nWe have received your contribution of €50.00 (free contribution) to the campaign "
        f"“{campaign.title}”.\n\nReference: contribution no. {pledge.id}, paid on {format_date(paid, 'd MMMM y', locale='en_GB')}."
        f"\n\nIt is a gift.\n\nYour tax receipt no. {code} is attached to this message (PDF); you can also download it here: "
        f"{manage}/recu\n{INDIVIDUAL_EN}\n\nYour contribution online: {manage}\n\n"
        "Thank you for keeping the third places of the Thiers area alive.\nThe Entre-Lab team")
    assert mail.attachments
    assert_html_part(mail, name=TRICKY_NAME, links=[f"{manage}/recu", manage], lang="en")


async def test_a_french_speaking_backer_gets_the_contribution_receipt_as_before(sessions, world):
    mail, campaign, pledge, code, manage, paid = await paid_contribution(sessions, world, "fr")
    assert mail.subject == f"Reçu : votre contribution à « {campaign.title} »"
    assert mail.body_text == (
        f"Bonjour {TRICKY_NAME},\n\nNous avons bien reçu votre contribution de {eur(5000, 'fr')} (contribution libre) à la "
        f"campagne « {campaign.title} ».\n\nRéférence : contribution n° {pledge.id}, payée le "
        f"{format_date(paid, 'long', locale='fr_FR')}.\n\nC'est un don.\n\nVotre reçu fiscal n° {code} est joint à ce message "
        f"(PDF) ; vous pouvez aussi le télécharger ici : {manage}/recu\n{INDIVIDUAL_FR}\n\nVotre contribution en ligne : "
        f"{manage}\n\nMerci de faire vivre les tiers-lieux du bassin thiernois.\nL'équipe Entre-Lab")
    assert_html_part(mail, name=TRICKY_NAME, links=[f"{manage}/recu", manage], lang="fr")
    assert links_in(mail.body_text) == [f"{manage}/recu", manage]


# --- a batch's languages --------------------------------------------------------------------


async def test_a_batch_of_addresses_gets_each_its_user_s_language_and_french_for_strangers(sessions, world):
    english = await speaks(sessions, world.users["member"], "en")
    french = await speaks(sessions, world.users["staff"], "fr")
    async with sessions() as session:
        found = await recipient_locales(session, [english.email.upper(), french.email, "stranger@example.org", ""])
    assert found == {english.email.lower(): "en", french.email.lower(): "fr", "stranger@example.org": "fr"}

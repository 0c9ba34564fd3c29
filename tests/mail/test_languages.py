"""Issue 17: an email speaks its recipient's language (users.locale), in the text part and an
HTML part: English words and formats for an English-speaking user, the French text as it has
always been for a French one (and for anyone who is not a user)."""

from __future__ import annotations

import datetime as dt
import html

from funding.db import transaction
from funding.mail.compose import recipient_locale, render
from tests.support.mail import TRICKY_NAME, assert_html_part, links_in, mails_to, speaks

# --- the login link -------------------------------------------------------------------------


async def login_mail(sessions, settings, world, locale: str):
    from funding.auth.service import request_login

    user = await speaks(sessions, world.users["member"], locale, name=TRICKY_NAME)
    async with transaction(sessions) as session:
        await request_login(session, user.email, settings)
    [mail] = await mails_to(sessions, user.email, key_like="login:%")
    return mail


async def test_an_english_speaking_user_gets_the_login_link_in_english(sessions, settings, world):
    mail = await login_mail(sessions, settings, world, "en")
    [link] = links_in(mail.body_text)
    minutes = settings.login_link_max_age // 60
    assert mail.subject == "Your Entre-Lab login link"
    assert mail.body_text == (f"Hello {TRICKY_NAME},\n\nTo log in, open this link (valid for {minutes} minutes, single use):\n"
                              f"{link}\n\nIf you did not request it, you can ignore this message.\n\nEntre-Lab")
    assert_html_part(mail, name=TRICKY_NAME, links=[link], lang="en")
    assert "Bonjour" not in mail.body_html


async def test_a_french_speaking_user_gets_the_login_link_as_before(sessions, settings, world):
    mail = await login_mail(sessions, settings, world, "fr")
    [link] = links_in(mail.body_text)
    minutes = settings.login_link_max_age // 60
    assert mail.subject == "Votre lien de connexion à Entre-Lab"
    assert mail.body_text == (f"Bonjour {TRICKY_NAME},\n\nPour vous connecter, ouvrez ce lien (valable {minutes} minutes, une "
                              f"seule fois) :\n{link}\n\nSi vous n'avez rien demandé, ignorez ce message.\n\nEntre-Lab")
    assert_html_part(mail, name=TRICKY_NAME, links=[link], lang="fr")


async def test_a_backer_s_first_login_from_an_english_page_makes_an_english_account(sessions, settings, world):
    """Found by the English backer of tests/browser/test_personas.py: the account made at a
    backer's first login spoke French, so the link and then the backer space came in French."""
    from sqlalchemy import select

    from funding.auth.models import User
    from funding.auth.service import request_login
    from funding.campaigns import backers  # noqa: F401  (registers backers as accounts a link can open)
    from funding.i18n import reset_locale, set_locale
    from tests.support.campaigns import make_campaign, pledge

    campaign = await make_campaign(sessions, world)
    await pledge(sessions, campaign.id, email="backer.en@example.org", name="Kim Backer")
    token = set_locale("en")  # the language of the /login page the backer filled
    try:
        async with transaction(sessions) as session:
            await request_login(session, "backer.en@example.org", settings)
    finally:
        reset_locale(token)
    [mail] = await mails_to(sessions, "backer.en@example.org", key_like="login:%")
    assert mail.subject == "Your Entre-Lab login link"
    async with sessions() as session:
        assert await session.scalar(select(User.locale).where(User.email == "backer.en@example.org")) == "en"


# --- a bar tab ------------------------------------------------------------------------------


async def paid_tab_mail(sessions, world, fake_stripe, locale: str):
    from funding.bar import service  # noqa: F401  (registers the purposes and paid hooks)
    from funding.bar.settlement import apply_payment_intent
    from tests.support.bar import a_batch, make_bar
    from tests.support.stripe_objects import payment_intent

    user = await speaks(sessions, world.users["member"], locale, name=TRICKY_NAME)
    batch = await a_batch(sessions, world, await make_bar(sessions, world))
    pi = payment_intent(amount=batch.amount, metadata={"purpose": "bar_tab", "bar_batch_id": str(batch.id)})
    fake_stripe.add(pi)
    assert await apply_payment_intent(sessions, pi) == "paid"
    [mail] = await mails_to(sessions, user.email, key_like="bar-batch:%")
    return mail, batch


async def test_an_english_speaking_member_hears_of_the_settled_tab_in_english_with_english_amounts(sessions, world,
                                                                                                fake_stripe):
    mail, batch = await paid_tab_mail(sessions, world, fake_stripe, "en")
    amount = f"€{batch.amount // 100:,}.{batch.amount % 100:02d}"
    assert mail.subject == f"Your bar tab at Thiers is settled: {amount}"
    assert mail.body_text == (f"Hello {TRICKY_NAME},\n\nYour bar tab at Thiers ({amount}, {batch.line_count} items) is settled, "
                              "charged to your saved card. The details stay visible in your account, under “My bar tab”."
                              "\n\nThank you!\nThe Entre-Lab team")
    assert_html_part(mail, name=TRICKY_NAME, links=[], lang="en")


async def test_a_french_speaking_member_hears_of_the_settled_tab_as_before(sessions, world, fake_stripe):
    from funding.money import format_money

    mail, batch = await paid_tab_mail(sessions, world, fake_stripe, "fr")
    amount = format_money(batch.amount, batch.currency, "fr")
    assert mail.subject == f"Votre ardoise du bar de Thiers est réglée : {amount}"
    assert mail.body_text == (f"Bonjour {TRICKY_NAME},\n\nVotre ardoise du bar de Thiers ({amount}, {batch.line_count} "
                              "consommation(s)) est réglée, prélevée sur votre carte enregistrée. Le détail reste visible dans "
                              "votre espace, rubrique « Mon ardoise du bar ».\n\nMerci !\nL'équipe Entre-Lab")
    assert_html_part(mail, name=TRICKY_NAME, links=[], lang="fr")


# --- the month's exports --------------------------------------------------------------------


LAST_MONTH_END = dt.date.today().replace(day=1) - dt.timedelta(days=1)
PERIOD = f"{LAST_MONTH_END:%Y-%m}"


async def export_mails(sessions, settings, world, locale: str):
    from funding.exports.service import queue_period
    from funding.ledger.service import EntryDraft, Line, close_month, post
    from funding.orgs.models import Organisation

    accountant = await speaks(sessions, world.users["accountant"], locale, name=TRICKY_NAME)
    async with transaction(sessions) as session:
        await post(session, [EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=LAST_MONTH_END,
                                        label="Mécénat", piece_ref="VIR-1", funding_source="private",
                                        lines=[Line("512", 250000), Line("7542", -250000)])])
        await close_month(session, world.org_id, PERIOD)
    async with transaction(sessions) as session:
        org = await session.get(Organisation, world.org_id)
        await queue_period(session, settings, org, PERIOD)
    mails = await mails_to(sessions, accountant.email)
    assert len(mails) == 3  # one per format, as before
    [journal] = [m for m in mails if m.subject.endswith(("General journal (CSV)", "Journal général (CSV)"))]
    return journal, org


async def test_an_english_speaking_accountant_gets_the_exports_in_english(sessions, settings, world):
    mail, org = await export_mails(sessions, settings, world, "en")
    assert mail.subject == f"Accounting exports {PERIOD} — {org.name} — General journal (CSV)"
    assert mail.body_text.startswith(f"Hello {TRICKY_NAME},\n\nPlease find attached the “General journal (CSV)” export of "
                                     f"{org.name} for the closed period {PERIOD}: ")
    assert "\nSHA-256 hash: " in mail.body_text and "\nKeep this: the seal of this closing." in mail.body_text
    assert mail.attachments  # the file still goes with it
    assert_html_part(mail, name=TRICKY_NAME, links=links_in(mail.body_text), lang="en")


async def test_a_french_speaking_accountant_gets_the_exports_as_before(sessions, settings, world):
    mail, org = await export_mails(sessions, settings, world, "fr")
    assert mail.subject == f"Exports comptables {PERIOD} — {org.name} — Journal général (CSV)"
    assert mail.body_text.startswith(f"Bonjour {TRICKY_NAME},\n\nVoici l'export « Journal général (CSV) » de {org.name} pour "
                                     f"la période close {PERIOD}, en pièce jointe : ")
    assert "\nEmpreinte SHA-256 : " in mail.body_text and "\n\nÀ conserver : le sceau de cette clôture." in mail.body_text
    assert_html_part(mail, name=TRICKY_NAME, links=links_in(mail.body_text), lang="fr")


# --- the language of a recipient, and rendering ---------------------------------------------


async def test_the_recipient_s_language_is_the_user_s_else_french(sessions, world):
    await speaks(sessions, world.users["staff"], "en")
    async with sessions() as session:
        staff_email = f"staff-{world.siren[-4:]}@example.org"
        assert await recipient_locale(session, user_id=world.users["staff"]) == "en"
        assert await recipient_locale(session, email=staff_email.upper()) == "en"
        assert await recipient_locale(session, user_id=world.users["admin"]) == "fr"
        assert await recipient_locale(session, email="nobody@example.org") == "fr"
        assert await recipient_locale(session) == "fr"


def test_english_days_and_amounts_and_french_ones_as_the_emails_always_wrote_them():
    about = {"name": "Zoé", "number": "F-12", "due": 123456, "currency": "EUR", "link": "https://pay.example/i?a=1&b=2",
             "retry": dt.date(2025, 3, 5)}
    en, fr = render("coworking/payment_failed", "en", **about), render("coworking/payment_failed", "fr", **about)
    assert "(€1,234.56)" in en["body_text"] and "on 5 March 2025." in en["body_text"]
    assert "(1\u202f234,56\xa0€)" in fr["body_text"] and "le 05/03/2025." in fr["body_text"]
    assert html.escape(about["link"]) in en["body_html"] and "&amp;b=2" in en["body_html"]
    assert render("coworking/payment_failed", "de", **about) == fr  # not one of ours: French

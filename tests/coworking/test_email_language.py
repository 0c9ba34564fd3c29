"""Issue 17: the coworking lifecycle emails speak the member's language (users.locale): an
English-speaking member reads English words, days and amounts; a French one the text as before."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date

from funding.clock import local_day
from funding.coworking.lifecycle import apply_subscription
from funding.db import transaction
from tests.support.coworking import MONTH, Story
from tests.support.mail import TRICKY_NAME, assert_html_part, links_in, mails_to, speaks
from tests.support.stripe_objects import now


async def cancellation_mail(sessions, member, catalogue, fake, locale: str):
    user = await speaks(sessions, member.user_id, locale, name=TRICKY_NAME)
    story = Story(fake, member, catalogue)
    async with transaction(sessions) as session:
        await apply_subscription(session, dict(story.sub), now())
    story.set(cancel_at_period_end=True, cancel_at=story.start + MONTH, canceled_at=now())
    async with transaction(sessions) as session:
        await apply_subscription(session, dict(story.sub), now() + 5)
    welcome, cancel = await mails_to(sessions, user.email)
    assert welcome.dedupe_key.endswith(":welcome") and ":cancel:" in cancel.dedupe_key
    end = local_day(dt.datetime.fromtimestamp(story.start + MONTH, dt.UTC).replace(tzinfo=None))
    return welcome, cancel, story.plan.name, end


async def test_an_english_speaking_member_reads_the_cancellation_in_english_with_an_english_date(sessions, member, catalogue,
                                                                                                 fake):
    welcome, cancel, plan, end = await cancellation_mail(sessions, member, catalogue, fake, "en")
    assert welcome.subject == "Welcome — Thiers" and welcome.body_text.startswith(f"Hello {TRICKY_NAME},\n\n")
    assert cancel.subject == "Cancellation recorded — Thiers"
    assert cancel.body_text == (
        f"Hello {TRICKY_NAME},\n\nYour “{plan}” subscription (Thiers) will end on {format_date(end, 'd MMMM y', locale='en_GB')}: you keep your access "
        "until then, with no further charge.\nYou can undo this cancellation from your member area before that date.\n\n"
        "The Entre-Lab team")
    for mail in (welcome, cancel):
        assert_html_part(mail, name=TRICKY_NAME, links=links_in(mail.body_text), lang="en")


async def test_a_french_speaking_member_reads_the_cancellation_as_before(sessions, member, catalogue, fake):
    welcome, cancel, plan, end = await cancellation_mail(sessions, member, catalogue, fake, "fr")
    assert welcome.subject == "Bienvenue — Thiers"
    assert cancel.subject == "Résiliation enregistrée — Thiers"
    assert cancel.body_text == (
        f"Bonjour {TRICKY_NAME},\n\nVotre abonnement « {plan} » (Thiers) prendra fin le {end:%d/%m/%Y} : vous gardez l'accès "
        "jusque-là, sans autre prélèvement.\nVous pouvez annuler cette résiliation depuis votre espace membre avant cette "
        "date.\n\nL'équipe Entre-Lab")
    for mail in (welcome, cancel):
        assert_html_part(mail, name=TRICKY_NAME, links=links_in(mail.body_text), lang="fr")

"""One valid address per field, everywhere an address enters, and never a list handed to SMTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.emails import InvalidEmail, check_email
from funding.exports.models import ExportRecipient
from funding.mail.models import Email
from funding.mail.service import enqueue
from tests.support.web import login_as, text_of

TWO = "mallory@example.org,eve"


@pytest.mark.parametrize("text, expected", [
    ("ana@example.org", "ana@example.org"),
    ("  Ana.Martin@Example.ORG ", "ana.martin@example.org"),
    ("élodie@café.fr", "élodie@café.fr"),
])
def test_one_address_is_accepted_and_normalised(text, expected):
    assert check_email(text) == expected


@pytest.mark.parametrize("text", [
    TWO, "mallory@example.org;eve@example.org", "mallory@example.org, eve@example.org", "mallory@example.org\neve@example.org",
    "mallory@example.org\r\nBcc: eve@example.org", "Mallory <mallory@example.org>", "mallory@example.org eve@example.org",
    "pas-un-email", "@example.org", "mallory@", "mallory@localhost", "mallory@machine.local", "", "   ", "a" * 250 + "@example.org",
])
def test_anything_but_one_address_is_refused_with_a_clear_french_message(text):
    with pytest.raises(InvalidEmail, match="une seule adresse"):
        check_email(text)


async def test_the_outbox_never_queues_a_list_of_recipients(sessions):
    with pytest.raises(InvalidEmail):
        async with transaction(sessions) as session:
            await enqueue(session, to=TWO, subject="Reçu", body_text="…", dedupe_key="test:two")
    async with sessions() as session:
        assert await session.scalar(select(func.count(Email.id))) == 0


async def test_the_export_recipients_form_refuses_two_addresses_in_one_field(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["admin"])
    page = await client.get("/admin/exports")
    from tests.support.web import csrf_of

    response = await client.post("/admin/exports/recipients", data={
        "csrf_token": csrf_of(page.text), "org": world.siren, "email": TWO, "name": "Mallory", "format-fec": "1"},
        follow_redirects=True)
    assert "une seule adresse" in text_of(response.text)
    async with sessions() as session:
        assert await session.scalar(select(func.count(ExportRecipient.id))) == 0
        assert await session.scalar(select(func.count(Email.id))) == 0

"""Helpers for the tests of emails in the recipient's language (issue 17)."""

from __future__ import annotations

import html
import re

from sqlalchemy import select, update

from funding.auth.models import User
from funding.db import transaction
from funding.mail.models import Email

TRICKY_NAME = "<b>Zoé & Co</b>"  # must reach the HTML part escaped, the text part as typed


async def speaks(sessions, user_id: int, locale: str, *, name: str | None = None) -> User:
    """Give the user a language (and a name); returns the user as now stored."""
    values: dict = {"locale": locale} | ({"name": name} if name is not None else {})
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == user_id).values(**values))
    async with sessions() as session:
        return await session.get(User, user_id)


async def mails_to(sessions, address: str, *, key_like: str = "%") -> list[Email]:
    async with sessions() as session:
        return list((await session.scalars(select(Email).where(Email.to_addr == address, Email.dedupe_key.like(key_like))
                                           .order_by(Email.id))).all())


def links_in(text: str) -> list[str]:
    """The addresses in a text part (without the sentence's closing stop)."""
    return [link.rstrip(".,;:)") for link in re.findall(r"https?://\S+", text)]


def assert_html_part(mail: Email, *, name: str, links: list[str], lang: str) -> None:
    """The HTML part exists, in the mail's language, with the name escaped and the text part's links."""
    body = mail.body_html
    assert body and body.startswith("<!doctype html>") and f'<html lang="{lang}">' in body
    assert html.escape(name, quote=False) in body and name not in body
    for link in links:
        assert f'href="{html.escape(link)}"' in body


async def donor_row(sessions, row):
    """Insert a donor's row (a gift, a payment) as the form would have recorded it; returns it as stored."""
    async with transaction(sessions) as session:
        session.add(row)
    async with sessions() as session:
        return await session.get(type(row), row.id)

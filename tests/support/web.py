"""Pages in the tests: the CSRF token of a form, a signed-in client, a page's text without its markup."""

from __future__ import annotations

import re

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import transaction


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def csrf(client, path: str = "/login") -> str:
    return csrf_of((await client.get(path)).text)


async def login_as(client, sessions, settings, user_id: int) -> None:
    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        link = await issue_link(session, user, settings)
    path = link.replace(settings.base_url, "")
    page = await client.get(path)
    response = await client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303, response.text


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace folded (what a person reads)."""
    import html as markup

    return markup.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)))


async def join_by_email(client, sessions, path: str, data: dict):
    """An anonymous join: the form's "we wrote to you" page, then the link of the email, its
    button, and what that answers (Checkout's address, normally)."""
    from sqlalchemy import select

    from funding.mail.models import Email

    sent = await client.post(path, data=data)
    assert sent.status_code == 200 and "Nous venons d'écrire à" in text_of(sent.text), text_of(sent.text)[:500]
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.to_addr == data["email"].strip().lower(),
                                                        Email.dedupe_key.like("join:%")).order_by(Email.id.desc()))
    assert mail is not None, "no join email"
    link = re.search(r"https?://[^/\s]+(/coworking/\S+/confirmer/\S+)", mail.body_text).group(1)
    page = await client.get(link)
    assert page.status_code == 200, text_of(page.text)[:500]
    return await client.post(link, data={"csrf_token": csrf_of(page.text)})
